// What a configuration bisect has done, in its results directory: state.json (the differing
// options as first resolved, every step with the options it applied, its resolved config and
// verdict, the answer), bisect.log (one line per verdict) and configs/ (every resolved config).
// Rerun, the same command finds them and redoes no finished step.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../util/atomic-fs.ts";
import { type OptionChange, setKey } from "./config-split.ts";
import type { BisectResult, StepPhase, StepRecord } from "./state.ts";
import type { BadRefIdentity, Verdict } from "./verdict.ts";

export const CONFIG_STATE_FORMAT = 1;

export interface ConfigBisectParams {
  /** GOOD and BAD as absolute paths, and the sha256 of their text (an edited file is a new question). */
  good: string;
  bad: string;
  goodSha256: string;
  badSha256: string;
  scenario: string;
  kernel: string;
  workload: string;
  repeat: number;
}

export interface ConfigStepRecord extends StepRecord {
  /** The differing options set to GOOD's values on top of BAD (empty: BAD itself; all: GOOD). */
  applied: string[];
  /** configKey of the resolved config, and its file relative to the bisect directory. */
  configKey: string;
  config: string;
  /** The earlier step whose resolved config was the same, so its verdict was reused (no build). */
  reusedFrom?: number;
}

export interface ConfigAnswer {
  /** The option the search ended at, with its values. */
  option: OptionChange;
  /** Every option the resolved configs of the last bad and first good probe differ in. */
  together: OptionChange[];
  lastBad: string;
  firstGood: string;
}

export interface ConfigStateFile {
  format: number;
  params: ConfigBisectParams;
  /** What the ends were resolved in: the row's source and patches. */
  tree: string;
  /** The options whose values differ between the resolved ends, by name. */
  diff: OptionChange[];
  identity?: BadRefIdentity;
  steps: ConfigStepRecord[];
  result?: BisectResult & { answer?: ConfigAnswer; applied?: string[] };
}

/** results/bisect/<scenario>/config-<kernel>-<workload>-<hash>: one per question. */
export function configBisectDirName(p: ConfigBisectParams): string {
  const h = createHash("sha256")
    .update(JSON.stringify([p.goodSha256, p.badSha256, p.scenario, p.kernel, p.workload, p.repeat]))
    .digest("hex")
    .slice(0, 10);
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "_");
  return `config-${safe(p.kernel)}-${safe(p.workload)}-${h}`;
}

const stateFile = (dir: string) => path.join(dir, "state.json");
export const configLogFile = (dir: string) => path.join(dir, "bisect.log");

/** The earlier run's state when it asked the same question, else `fresh`. */
export function resumeConfigState(previous: ConfigStateFile | undefined, fresh: ConfigStateFile): ConfigStateFile {
  const same =
    previous?.format === CONFIG_STATE_FORMAT &&
    configBisectDirName(previous.params) === configBisectDirName(fresh.params) &&
    previous.tree === fresh.tree &&
    JSON.stringify(previous.diff) === JSON.stringify(fresh.diff);
  return same ? { ...previous, params: fresh.params } : fresh;
}

export async function readConfigState(dir: string): Promise<ConfigStateFile | undefined> {
  return fs
    .readFile(stateFile(dir), "utf8")
    .then((t) => JSON.parse(t) as ConfigStateFile)
    .catch(() => undefined);
}

/** Where the ends' resolved configs are kept, relative to the bisect directory. */
export const endFile = (end: "good" | "bad") => path.join("configs", `${end}-end.config`);

/** The ends an earlier run of the same question resolved in the same tree, else undefined. */
export async function savedEnds(
  dir: string,
  params: ConfigBisectParams,
  tree: string,
): Promise<{ good: string; bad: string } | undefined> {
  const previous = await readConfigState(dir);
  if (previous?.format !== CONFIG_STATE_FORMAT || previous.tree !== tree) return undefined;
  if (configBisectDirName(previous.params) !== configBisectDirName(params)) return undefined;
  const read = (end: "good" | "bad") => fs.readFile(path.join(dir, endFile(end)), "utf8");
  return Promise.all([read("good"), read("bad")]).then(
    ([good, bad]) => ({ good, bad }),
    () => undefined,
  );
}

export async function openConfigState(dir: string, fresh: ConfigStateFile): Promise<ConfigStateFile> {
  const state = resumeConfigState(await readConfigState(dir), fresh);
  await fs.mkdir(dir, { recursive: true });
  await writeConfigState(dir, state);
  return state;
}

export async function writeConfigState(dir: string, s: ConfigStateFile): Promise<void> {
  await writeFileAtomic(stateFile(dir), JSON.stringify(s, null, 2) + "\n");
  await writeFileAtomic(configLogFile(dir), configBisectLog(s));
}

/** bisect.log: "# <question>", then "<verdict> <config key> +<n applied>  # <phase>: <reason>" per step. */
export function configBisectLog(s: ConfigStateFile): string {
  const p = s.params;
  const head = `# vmrig bisect --config ${p.good} ${p.bad}: ${p.kernel} x ${p.workload}, ${s.diff.length} options differ`;
  const lines = s.steps.map(
    (r) =>
      `${r.verdict} ${r.configKey} +${r.applied.length}  # ${r.phase}: ${r.reason}; applied: ${r.applied.join(" ")}`,
  );
  return [head, ...lines].join("\n") + "\n";
}

/** Verdicts by the applied options (setKey), for nextProbe; the ends included. */
export function verdictsByApplied(steps: readonly ConfigStepRecord[]): Map<string, Verdict> {
  return new Map(steps.map((r) => [setKey(r.applied), r.verdict]));
}

/** A finished step for this phase and these applied options. */
export function findConfigStep(
  s: ConfigStateFile,
  phase: StepPhase,
  applied: readonly string[],
): ConfigStepRecord | undefined {
  const key = setKey(applied);
  return s.steps.find((r) => r.phase === phase && setKey(r.applied) === key);
}

/** A step already run on the same resolved config, whose verdict stands for it. */
export function sameResolvedConfig(s: ConfigStateFile, configKey: string): ConfigStepRecord | undefined {
  return s.steps.find((r) => r.configKey === configKey && r.reusedFrom === undefined);
}
