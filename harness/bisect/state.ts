// What a bisect has done so far, in its results directory: state.json (every step's build,
// runs and verdict; the chased identity) beside bisect.log (git's own log, replayable). A
// rerun of the same command finds both and resumes without redoing a finished step.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { CellOutcome } from "../types.ts";
import { writeFileAtomic } from "../util/atomic-fs.ts";
import { type BadRefIdentity, type RevertCheck, type Verdict, confidence } from "./verdict.ts";

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
  verify?: RevertCheck;
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

/**
 * What an earlier run left for the same question (the directory name hashes it), with the refs
 * as spelled this time; a fresh state when there is none.
 */
export function resumeState(previous: BisectStateFile | undefined, params: BisectParams): BisectStateFile {
  return previous && bisectDirName(previous.params) === bisectDirName(params)
    ? { ...previous, params }
    : { format: STATE_FORMAT, params, steps: [] };
}

/** The state to go on from, written back to `dir`; `restart` forgets an earlier one first. */
export async function openState(dir: string, params: BisectParams, restart: boolean): Promise<BisectStateFile> {
  if (restart) await fs.rm(dir, { recursive: true, force: true });
  const state = resumeState(await readState(dir), params);
  await fs.mkdir(dir, { recursive: true });
  await writeState(dir, state);
  return state;
}

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

/** A step's results directory under <bisect dir>/steps: "04-step2-5d3e1c2a9f01", `ordinal` counting every step. */
export function stepRunName(ordinal: number, phase: StepPhase, index: number, commit: string): string {
  return `${String(ordinal).padStart(2, "0")}-${phase === "step" ? `step${index}` : phase}-${commit.slice(0, 12)}`;
}

/** Where git bisect stopped: the culprit (with its subject), or the candidates skips left. */
export type BisectEnd =
  { kind: "found"; culprit: string; subject: string } | { kind: "ambiguous"; candidates: string[] };

/**
 * The answer from where git bisect stopped and the steps recorded: how many bisect steps and
 * skips, and the confidence from the bad ref's reproduction rate and every good verdict's clean
 * runs (the good ref's check included). --verify adds its outcome afterwards.
 */
export function bisectResult(
  end: BisectEnd,
  steps: readonly StepRecord[],
  bad: { reproduced: number; runs: number },
): BisectResult {
  const bisectSteps = steps.filter((s) => s.phase === "step");
  const skips = bisectSteps.filter((s) => s.verdict === "skip").length;
  if (end.kind === "ambiguous")
    return { kind: "ambiguous", candidates: end.candidates, steps: bisectSteps.length, skips, confidence: 0 };
  const goodClean = steps
    .filter((s) => (s.phase === "check-good" || s.phase === "step") && s.verdict === "good")
    .map((s) => s.runs.filter((r) => r.outcome.kind === "pass").length);
  return {
    kind: "found",
    culprit: end.culprit,
    subject: end.subject,
    steps: bisectSteps.length,
    skips,
    confidence: confidence(bad, goodClean),
  };
}
