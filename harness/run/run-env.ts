// What a kernel row runs with: the prepared kernel (artifact, image, accelerator, QEMU) and the
// run's environment. Its own file so the runner and the scheduled rows (schedule/rows.ts) share
// these types without importing each other.
import type { GuestImage, KernelArtifact, KernelEntry, RunResult, Scenario } from "../types.ts";
import type { Accelerator } from "../qemu/accel.ts";
import type { QemuCommand } from "../qemu/argv.ts";
import type { BootRequest } from "../guest/boot.ts";
import type { DaemonCommand } from "../virtiofs/daemon.ts";
import type { LoadSnapshot } from "./schedule/load.ts";
import type { GuestScheduler } from "./schedule/scheduler.ts";
import type { Progress } from "./progress.ts";
import type { RowHooks } from "./row-hooks.ts";
import type { GuestKeeper } from "./keep-failed.ts";

export interface PreparedKernel {
  entry: KernelEntry;
  artifact: KernelArtifact;
  image: GuestImage;
  /** This row's accelerator when the scenario mixes architectures; default env.accel. */
  accel?: Accelerator;
  /** The QEMU build this row runs (`qemu:`); absent: the host's. */
  qemu?: QemuCommand;
}

/** What a row's hooks depend on: the kernel entry and the QEMU build, not the built image. */
export type RowKernel = Pick<PreparedKernel, "entry" | "qemu">;

export interface RunEnv {
  /** VFIO devices, virtio-mem and the memory backend for every guest (harness/vfio/host-run.ts). */
  qemuExtras?: BootRequest["qemuExtras"];
  accel: Accelerator;
  virtiofsd: DaemonCommand;
  relay?: BootRequest["relay"];
  virtiofsdLogLevel?: string;
  runDir: string;
  progress: Progress;
  signal: AbortSignal;
  /** Called after every cell so an interrupted run keeps what it gathered. */
  onUpdate: (r: RunResult) => Promise<void>;
  /** `--jobs`: rows run as guests on this shared scheduler instead of one after another. */
  scheduler?: GuestScheduler;
  /** The host load this row's guest may see (set per row by the scheduler): scales timeouts. */
  load?: () => LoadSnapshot;
  /** What the scenario's features (run/features.ts) add to this row; default: nothing. */
  rowHooks?: (s: Scenario, k: RowKernel) => RowHooks;
  /** `--keep-failed`: the scenario's first guest with a kept outcome is paused, not destroyed. */
  keeper?: GuestKeeper;
}
