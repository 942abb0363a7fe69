// nestedQemu: in the level-1 guest of `vfio.nested`, start the level-2 QEMU with the scenario's
// VFIO devices and memory, and judge its start. It needs several steps in level 1 (preflight,
// binding, the level-2 QEMU, restore), so vfio/nested.ts runs it; a scenario without
// vfio.nested cannot declare one, so the generic path only says where it belongs.
import { z } from "zod";
import { defineWorkloadKind } from "./kind.ts";
import { isMapping, strict } from "./fields.ts";

/** The largest value vfio_iommu_type1's u32 dma_entry_limit takes. */
export const DMA_ENTRY_LIMIT_MAX = 2 ** 32 - 1;

export const nestedQemu = defineWorkloadKind({
  name: "nestedQemu",
  schema: strict({
    dmaEntryLimit: z
      .number()
      .int()
      .min(1)
      .max(DMA_ENTRY_LIMIT_MAX)
      .optional()
      .meta({ description: "dma_entry_limit for this level-2 start; default vfio.dmaEntryLimit, else the kernel's." }),
    runSeconds: z
      .number()
      .positive()
      .max(600)
      .default(3)
      .meta({ description: "How long level 2 runs its firmware before vmrig reads its PCI view and stops it." }),
    mappingWarning: z
      .enum(["fail", "pass"])
      .default("fail")
      .meta({
        description:
          "What QEMU's 'possibly running out of DMA mappings' warning makes the cell when the VM runs on: " +
          "fail (default), or pass, so that only a QEMU that refuses the device (10.2 and later) fails.",
      }),
  }).meta({
    description:
      "Start the level-2 QEMU of vfio.nested with the scenario's VFIO devices and memory; " +
      "PASS when it starts clean, FAIL when QEMU warns or refuses.",
  }),
  toSpec: ({
    runSeconds,
    dmaEntryLimit,
    mappingWarning,
  }): { runSeconds: number; dmaEntryLimit?: number; mappingWarning: "fail" | "pass" } => ({
    runSeconds,
    mappingWarning,
    ...(dmaEntryLimit !== undefined ? { dmaEntryLimit } : {}),
  }),
  checkInFile({ written, file, problem }) {
    const vfio = isMapping(file) ? file.vfio : undefined;
    if (!isMapping(vfio) || !isMapping(vfio.nested)) {
      problem([], written, "needs vfio.nested (the level-1 guest that runs the level-2 QEMU)");
    }
  },
  guestCommand: () => "true",
  judge: () => ({
    kind: "outcome",
    outcome: {
      kind: "infra",
      reason: "nestedQemu runs only in a vfio.nested scenario's level-1 guest (harness/vfio/nested.ts)",
    },
    evidence: {},
  }),
});
