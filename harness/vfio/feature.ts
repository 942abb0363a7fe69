// VFIO as a scenario feature of the run pipeline (run/features.ts registers it): the guest
// image's modules, the preflight and binding on this host for the whole run (host-run.ts), and,
// for vfio.nested, what each kernel row's level-1 guests add (nested.ts).
import type { ScenarioFeature } from "../run/scenario-feature.ts";
import { prepareVfioRun, vfioGuestModules } from "./host-run.ts";
import { nestedRowHooks } from "./nested.ts";

export const vfioFeature: ScenarioFeature = {
  name: "vfio",
  guestModules: (s) => vfioGuestModules(s),
  async prepare(s, accel, log) {
    const run = await prepareVfioRun(s, accel, { log });
    if (!run) return undefined;
    return {
      qemuExtras: run.qemuExtras,
      record(result) {
        result.vfio = run.record;
      },
      async finish(result, runDir) {
        const record = await run.finish(result, runDir);
        if (result) result.vfio = record;
      },
    };
  },
  rowHooks: (s, k) => nestedRowHooks(s, k),
};
