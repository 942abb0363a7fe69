// What a bisect over Debian packages has done, in its results directory: state.json (the list
// of versions as first resolved, every step's runs and verdict, the answer) and bisect.log (one
// line per verdict). Rerun, the same command finds them and redoes no finished step.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../util/atomic-fs.ts";
import type { PackageFamily } from "./debian-range.ts";
import type { BisectResult, StepPhase, StepRecord } from "./state.ts";
import type { BadRefIdentity } from "./verdict.ts";

export const DEBIAN_STATE_FORMAT = 1;

export interface DebianBisectParams {
  family: PackageFamily;
  /** The kernel flavour, or the QEMU package. */
  what: string;
  /** The ends as exact Debian versions, and as the user wrote them. */
  good: string;
  bad: string;
  goodSpec: string;
  badSpec: string;
  scenario: string;
  kernel: string;
  workload: string;
  repeat: number;
}

/** One version of the list: a step runs the package from its first suite. */
export interface ListedVersion {
  version: string;
  name: string;
  suites: string[];
}

export interface DebianAnswer {
  lastGood: ListedVersion;
  firstBad: ListedVersion;
  lastGoodTag?: string;
  firstBadTag?: string;
  changelog: { from?: string; entries: number; file?: string; problem?: string };
  continueCommand?: string;
}

export interface DebianStateFile {
  format: number;
  params: DebianBisectParams;
  suites: string[];
  versions: ListedVersion[];
  /** Versions in the range the archive no longer has whole: not in the list. */
  gaps?: string[];
  identity?: BadRefIdentity;
  steps: StepRecord[];
  result?: BisectResult & { answer?: DebianAnswer };
}

/** results/bisect/<scenario>/debian-<family>-<kernel>-<workload>-<hash>: one per question. */
export function debianBisectDirName(p: DebianBisectParams): string {
  const h = createHash("sha256")
    .update(JSON.stringify([p.family, p.what, p.good, p.bad, p.scenario, p.kernel, p.workload, p.repeat]))
    .digest("hex")
    .slice(0, 10);
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "_");
  return `debian-${p.family}-${safe(p.kernel)}-${safe(p.workload)}-${h}`;
}

const stateFile = (dir: string) => path.join(dir, "state.json");
export const debianLogFile = (dir: string) => path.join(dir, "bisect.log");

/** The state an earlier run of the same question left (its list and steps kept), else a fresh one. */
export async function openDebianState(
  dir: string,
  fresh: Omit<DebianStateFile, "format" | "steps">,
  restart: boolean,
): Promise<DebianStateFile> {
  if (restart) await fs.rm(dir, { recursive: true, force: true });
  const previous = await fs
    .readFile(stateFile(dir), "utf8")
    .then((t) => JSON.parse(t) as DebianStateFile)
    .catch(() => undefined);
  const state: DebianStateFile =
    previous?.format === DEBIAN_STATE_FORMAT &&
    debianBisectDirName(previous.params) === debianBisectDirName(fresh.params)
      ? { ...previous, params: fresh.params }
      : { format: DEBIAN_STATE_FORMAT, ...fresh, steps: [] };
  await fs.mkdir(dir, { recursive: true });
  await writeDebianState(dir, state);
  return state;
}

export async function writeDebianState(dir: string, s: DebianStateFile): Promise<void> {
  await writeFileAtomic(stateFile(dir), JSON.stringify(s, null, 2) + "\n");
  await writeFileAtomic(debianLogFile(dir), debianBisectLog(s));
}

/** bisect.log: "# <params>", then "<verdict> <version>  # <phase>: <reason>" per finished step. */
export function debianBisectLog(s: DebianStateFile): string {
  const p = s.params;
  const question = `--debian-${p.family} ${p.goodSpec}..${p.badSpec} (${p.what})`;
  const head = `# vmrig bisect ${question}: ${p.kernel} x ${p.workload}`;
  const lines = s.steps.map((r) => `${r.verdict} ${r.commit}  # ${r.phase}: ${r.reason}`);
  return [head, ...lines].join("\n") + "\n";
}

export function findVersionStep(s: DebianStateFile, phase: StepPhase, version: string): StepRecord | undefined {
  return s.steps.find((x) => x.phase === phase && x.commit === version);
}

/** Guest boots so far: one per run of every step. */
export const bootsOf = (s: Pick<DebianStateFile, "steps">): number => s.steps.reduce((n, r) => n + r.runs.length, 0);
