// A scenario feature (VFIO today) as the run pipeline sees it: modules for the guest image,
// host-side set-up for the whole run, and hooks into every kernel row. run-file.ts iterates the
// registry (features.ts) and never calls a feature by name.
import type { Accelerator } from "../qemu/accel.ts";
import type { RunResult, Scenario } from "../types.ts";
import type { QemuExtras, RowHooks } from "./row-hooks.ts";
import type { RowKernel } from "./run-env.ts";

/** What a feature set up on this host for the whole run (VFIO: preflight and binding). */
export interface FeatureRun {
  /** For every guest of the run. */
  qemuExtras?: QemuExtras;
  /** Writes what it set up into results.json's record, before any guest boots. */
  record(result: RunResult): void;
  /**
   * Puts the host back and completes its record in `result`: after the rows (interrupted or not),
   * or without a result when a later feature refused the run before it started.
   */
  finish(result?: RunResult, runDir?: string): Promise<void>;
}

/** A scenario feature as the run pipeline (run-file.ts) sees it; registered in run/features.ts. */
export interface ScenarioFeature {
  name: string;
  /** Kernel modules the guest image needs beyond vmrig's own. */
  guestModules?(s: Scenario): string[];
  /** Host-side set-up before anything boots (may refuse the run); undefined: nothing to set up. */
  prepare?(s: Scenario, accel: Accelerator, log: (line: string) => void): Promise<FeatureRun | undefined>;
  /** What it adds to one kernel row (its entry and QEMU build); undefined: nothing. */
  rowHooks?(s: Scenario, k: RowKernel): RowHooks | undefined;
}
