// The `nestedQemu` workload as the generic runner sees it. It needs several steps in the
// level-1 guest (preflight, binding, the level-2 QEMU, restore), so vfio/nested.ts runs it; a
// scenario without vfio.nested cannot declare one (scenario/vfio.ts), so the generic path only
// says where it belongs.
import type { WorkloadSpec } from "../types.ts";
import type { WorkloadKind } from "./kinds-types.ts";

export const nestedQemuKind: WorkloadKind<Extract<WorkloadSpec, { kind: "nestedQemu" }>> = {
  prepare: async () => ({}),
  command: () => "true",
  judge: async () => ({
    kind: "outcome",
    outcome: { kind: "infra", reason: "nestedQemu runs only in a vfio.nested scenario's level-1 guest (harness/vfio/nested.ts)" },
    evidence: {},
  }),
};
