// The question a bisect answers, resolved and checked before anything is written: the user's
// tree, one cell of a scenario (a kernel built from that tree, one workload), and a good..bad
// range in the tree.
import { realpathSync } from "node:fs";
import path from "node:path";
import type { BuildSpec, KernelEntry, Scenario, WorkloadSpec } from "../types.ts";
import { loadScenario } from "../scenario/load.ts";
import { checkBuildFiles, sourceName } from "../kernels/from-source/spec.ts";
import { VmrigError } from "../util/errors.ts";
import { countBetween, isAncestor, isWorkTree, resolveCommit } from "./git.ts";
import type { BisectParams } from "./state.ts";

/** The question as the user asked it. */
export interface BisectQuestionArgs {
  tree: string;
  good: string;
  bad: string;
  scenario: string;
  kernel: string;
  workload: string;
  /** Runs per commit, each a fresh guest (default 1). */
  repeat?: number;
}

export interface BisectQuestion {
  /** What identifies the question (its results directory hashes it), with the refs resolved to commits. */
  params: BisectParams;
  scenario: Scenario;
  entry: KernelEntry;
  /** The entry's build, from the tree. */
  spec: BuildSpec;
  workload: WorkloadSpec;
  /** Commits in good..bad. */
  commits: number;
}

function realpath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

export async function resolveQuestion(a: BisectQuestionArgs): Promise<BisectQuestion> {
  const repeat = a.repeat ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 100)
    throw new VmrigError(`--repeat: expected a whole number from 1 to 100, got ${a.repeat}`);
  const tree = realpath(path.resolve(a.tree));
  if (!(await isWorkTree(tree))) throw new VmrigError(`--tree ${a.tree}: not a git repository`);
  const scenario = await loadScenario(path.resolve(a.scenario));
  const { entry, spec } = kernelBuiltFrom(tree, scenario, a.kernel);
  await checkBuildFiles(spec);
  const workload = scenario.workloads.find((w) => w.id === a.workload);
  if (!workload) {
    const ids = scenario.workloads.map((w) => w.id).join(", ");
    throw new VmrigError(`--workload ${a.workload}: ${scenario.file} has no such workload (workloads: ${ids})`);
  }
  const { good, bad, commits } = await resolveRange(tree, a.good, a.bad);
  const params: BisectParams = {
    tree,
    good,
    bad,
    goodRef: a.good,
    badRef: a.bad,
    scenario: scenario.file,
    kernel: entry.label,
    workload: workload.id,
    repeat,
  };
  return { params, scenario, entry, spec, workload, commits };
}

/** The scenario's kernel `label`, which must be built from `tree`: bisect builds the tree at every step. */
function kernelBuiltFrom(tree: string, scenario: Scenario, label: string): { entry: KernelEntry; spec: BuildSpec } {
  const entry = scenario.kernels.find((k) => k.label === label);
  if (!entry) {
    const labels = scenario.kernels.map((k) => k.label).join(", ");
    throw new VmrigError(`--kernel ${label}: ${scenario.file} has no such kernel (kernels: ${labels})`);
  }
  if (entry.source.kind !== "build") {
    throw new VmrigError(
      `--kernel ${label}: a ${entry.source.kind} kernel; bisect builds the tree at every step, so the kernel must be ` +
        `\`build: { source: { git: ${tree}, ref: <any> }, config: [...] }\``,
    );
  }
  const spec = entry.source.spec;
  if (spec.source.kind !== "git" || realpath(spec.source.repo) !== tree) {
    throw new VmrigError(
      `--kernel ${label}: builds from ${sourceName(spec.source)}, not from --tree ${tree}: ` +
        `its build.source must be { git: ${tree}, ref: ... }`,
    );
  }
  return { entry, spec };
}

/** good and bad as commits, good an ancestor of bad, and how many commits lie between. */
async function resolveRange(
  tree: string,
  goodRef: string,
  badRef: string,
): Promise<{ good: string; bad: string; commits: number }> {
  const good = await resolveCommit(tree, goodRef, "--good");
  const bad = await resolveCommit(tree, badRef, "--bad");
  if (good === bad) throw new VmrigError(`--good and --bad are the same commit (${good.slice(0, 12)})`);
  if (!(await isAncestor(tree, good, bad)))
    throw new VmrigError(
      `--good ${goodRef} is not an ancestor of --bad ${badRef}: bisect looks for the first bad commit after good`,
    );
  return { good, bad, commits: await countBetween(tree, good, bad) };
}
