// What a bisect has done so far, in its results directory: state.json (every step's build,
// runs and verdict; the chased identity) beside bisect.log (git's own log, replayable). A
// rerun of the same command finds both and resumes without redoing a finished step.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { CellOutcome } from "../types.ts";
import { writeFileAtomic } from "../util/atomic-fs.ts";
import type { BadRefIdentity, Verdict } from "./verdict.ts";

export const STATE_FORMAT = 1;

export interface BisectParams {
  /** Absolute path of the user's tree. */
  tree: string;
  good: string;
  bad: string;
  /** The refs as the user wrote them. */
  goodRef: string;
  badRef: string;
  scenario: string;
  kernel: string;
  workload: string;
  repeat: number;
}

export type StepPhase = "check-bad" | "check-good" | "step" | "verify";

export interface BuildInfo {
  how: "cached" | "cached-after-config" | "built" | "failed";
  /** Wall time of the build stage (checkout, configure, make, install). */
  ms: number;
  /** make's own time, when make ran. */
  makeMs?: number;
  key?: string;
  compiled?: number;
  /** Why the build failed (first lines), and where its log was kept (relative to the bisect dir). */
  error?: string;
  log?: string;
}

export interface RunInfo {
  outcome: CellOutcome;
  bootMs?: number;
  workloadMs: number;
  /** The run's results directory, relative to the bisect directory. */
  runDir?: string;
}

export interface StepRecord {
  phase: StepPhase;
  /** 1-based among the bisect steps (phase "step"); 0 for checks and verify. */
  index: number;
  commit: string;
  subject: string;
  /** For phase "verify": the commit reverted on top of `commit`. */
  reverted?: string;
  build: BuildInfo;
  runs: RunInfo[];
  verdict: Verdict;
  reason: string;
  startedAt: string;
  ms: number;
}

export interface BisectResult {
  kind: "found" | "ambiguous";
  culprit?: string;
  subject?: string;
  candidates?: string[];
  steps: number;
  skips: number;
  confidence: number;
  verify?: {
    outcome: "passes" | "still-fails" | "inconclusive" | "revert-does-not-apply" | "build-failed";
    detail: string;
  };
}

export interface BisectStateFile {
  format: number;
  params: BisectParams;
  identity?: BadRefIdentity;
  steps: StepRecord[];
  result?: BisectResult;
}

/** results/bisect/<scenario name>/<kernel>-<workload>-<hash of the parameters>: one per question asked. */
export function bisectDirName(p: BisectParams): string {
  const h = createHash("sha256")
    .update(JSON.stringify([p.tree, p.good, p.bad, p.scenario, p.kernel, p.workload, p.repeat]))
    .digest("hex")
    .slice(0, 10);
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "_");
  return `${safe(p.kernel)}-${safe(p.workload)}-${h}`;
}

export const stateFile = (dir: string) => path.join(dir, "state.json");
export const logFile = (dir: string) => path.join(dir, "bisect.log");

export async function readState(dir: string): Promise<BisectStateFile | undefined> {
  try {
    const s = JSON.parse(await fs.readFile(stateFile(dir), "utf8")) as BisectStateFile;
    return s.format === STATE_FORMAT ? s : undefined;
  } catch {
    return undefined;
  }
}

export async function writeState(dir: string, s: BisectStateFile): Promise<void> {
  await writeFileAtomic(stateFile(dir), JSON.stringify(s, null, 2) + "\n");
}

/** The recorded step for `phase` at `commit` (and revert), if it finished. */
export function findStep(
  s: BisectStateFile,
  phase: StepPhase,
  commit: string,
  reverted?: string,
): StepRecord | undefined {
  return s.steps.find((x) => x.phase === phase && x.commit === commit && x.reverted === reverted);
}
