// The scenario features the run pipeline (run-file.ts) consults, in this order: each may add
// guest modules, set up the host for the run, and add to every kernel row (scenario-feature.ts).
// A new feature is one line here; run-file.ts names none of them.
import type { Accelerator } from "../qemu/accel.ts";
import type { Scenario } from "../types.ts";
import { vfioFeature } from "../vfio/feature.ts";
import { composeRowHooks, mergeQemuExtras, type QemuExtras, type RowHooks } from "./row-hooks.ts";
import type { RowKernel } from "./run-env.ts";
import type { FeatureRun, ScenarioFeature } from "./scenario-feature.ts";

export const scenarioFeatures: readonly ScenarioFeature[] = [vfioFeature];

/** Every feature's modules for the guest image. */
export function featureGuestModules(s: Scenario, features = scenarioFeatures): string[] {
  return features.flatMap((f) => f.guestModules?.(s) ?? []);
}

/** The features' host-side set-up for a run, as one: refusals throw before anything boots. */
export interface FeatureRuns {
  qemuExtras?: QemuExtras;
  record: FeatureRun["record"];
  finish: FeatureRun["finish"];
}

/** Sets up each feature the scenario uses; one that refuses puts back what the earlier ones set up. */
export async function prepareFeatures(
  s: Scenario,
  accel: Accelerator,
  log: (line: string) => void,
  features = scenarioFeatures,
): Promise<FeatureRuns> {
  const runs: FeatureRun[] = [];
  for (const f of features) {
    const run = await f.prepare?.(s, accel, log).catch(async (e: unknown) => {
      for (const earlier of runs.reverse()) await earlier.finish().catch(() => undefined);
      throw e;
    });
    if (run) runs.push(run);
  }
  const qemuExtras = mergeQemuExtras(...runs.map((r) => r.qemuExtras));
  return {
    ...(qemuExtras ? { qemuExtras } : {}),
    record: (result) => runs.forEach((r) => r.record(result)),
    finish: async (result, runDir) => {
      for (const r of runs) await r.finish(result, runDir);
    },
  };
}

/** Per row: every feature's hooks as one. */
export function featureRowHooks(features = scenarioFeatures): (s: Scenario, k: RowKernel) => RowHooks {
  return (s, k) => composeRowHooks(features.flatMap((f) => f.rowHooks?.(s, k) ?? []));
}
