// What this host can give a scenario: values beyond it cannot work and are refused at load, before
// anything is downloaded or booted. Read once per process; a scenario checked here runs here.
import { statfsSync } from "node:fs";
import os from "node:os";

export interface HostLimits {
  memoryBytes: number;
  cores: number;
  /** Free bytes where guests' shares live (the temp directory). */
  freeTempBytes: number;
}

let cached: HostLimits | undefined;

export function hostLimits(): HostLimits {
  if (cached) return cached;
  const fs = statfsSync(os.tmpdir());
  cached = { memoryBytes: os.totalmem(), cores: os.cpus().length, freeTempBytes: fs.bavail * fs.bsize };
  return cached;
}

/** vCPUs per host core vmrig allows: TCG runs guests' vCPUs as threads, a few per core still make progress. */
export const VCPUS_PER_CORE = 4;
