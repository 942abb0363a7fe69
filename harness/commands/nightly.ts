// The nightly commands of the CLI: `run --jobs`, `compare`, `summary`, `gc`, `baseline`.
// Exit codes (docs/nightly.md): compare and summary exit 1 when a cell regressed (met its
// expectation before, not now), 0 otherwise; gc and baseline 0; 2 for usage errors.
import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { ExitCode, VmrigError } from "../util/errors.ts";
import { resultsRoot } from "../util/paths.ts";
import { existingDir, wholeNumber } from "../util/cli-values.ts";
import { summarise } from "../report/summary.ts";
import { writeIndex, writeRunReport } from "../report/html/write.ts";
import { parseJobs } from "../run/schedule/scheduler.ts";
import { runScenarioFiles } from "../run/schedule/run-many.ts";
import { holdKeptGuests, type KeepPolicy } from "../run/keep-failed.ts";
import { listRunDirs, listRuns, listScenarios, loadRun, previousComplete, type RunRecord } from "../history/history.ts";
import { compareWithHistory, type Comparison } from "../history/compare.ts";
import { renderComparison, renderSummary, type SummaryEntry } from "../history/render.ts";
import { isPinned, readBaselines, writeBaselines } from "../history/baselines.ts";
import {
  compressRun,
  DEFAULT_POLICY,
  deleteRun,
  planRetention,
  pruneRun,
  type PlannedAction,
  type RetentionPolicy,
  type RunFacts,
} from "../history/retention.ts";
import { resolveArtifact } from "../report/html/write.ts";
import type { ShardPlan } from "../run/shard/manifest.ts";

export const nightlyUsage =
  "  run ... --jobs auto|N                         run every (scenario, kernel) guest in parallel: auto fits\n" +
  `                                                guests into the host's cores and memory, N runs N at once
  compare <run-a> <run-b> [--json|--markdown]   per cell: regression, fix, flaky, still failing, with what changed
  compare <run> [--baseline]                    a run against the run before it (or its scenario's baseline)
  summary [--baseline] [--window N] [--json]    the nightly summary: every scenario's newest run against the one before;
                                                writes summary.md and summary.json to the results root
  gc [--keep N] [--compress-after N] [--max-runs N] [--dry-run]
                                                retention: gzip logs of older runs, prune artifacts beyond the newest N
  baseline <run> | --list | --clear SCENARIO    pin a run as its scenario's baseline (gc never deletes it)
  (summary, gc and baseline take --results DIR; default $VMRIG_RESULTS, else results/)`;

const defaultRoot = () => path.resolve(resultsRoot());

/** `--results DIR` must exist (a typo must not read as "no runs"); the default root may not exist yet. */
const resultsOption = (dir: string | undefined) =>
  dir === undefined ? defaultRoot() : existingDir("results", path.resolve(dir));

const pinnedList = (baselines: Record<string, string>) =>
  Object.keys(baselines).length ? `pinned: ${Object.keys(baselines).join(", ")}` : "none is pinned";

export async function runJobs(
  files: string[],
  jobsText: string,
  opts: { kernels?: string[]; signal: AbortSignal; keep?: KeepPolicy; shard?: ShardPlan },
): Promise<number> {
  const jobs = parseJobs(jobsText);
  if (jobs === undefined) throw new VmrigError(`--jobs takes "auto" or a positive number, got "${jobsText}"`);
  const r = await runScenarioFiles(files, { jobs, ...opts });
  // Each scenario kept its own first failing guest (`--keep-failed`): held once every table is printed.
  const keepers = r.files.flatMap((f) => (f.outcome?.keeper ? [f.outcome.keeper] : []));
  await holdKeptGuests(keepers, opts.signal, (t) => process.stdout.write(t));
  for (const f of r.files) {
    if (!f.error) continue;
    const known = f.error instanceof VmrigError;
    process.stderr.write(
      `vmrig: ${path.relative(process.cwd(), f.file)}: ` +
        `${known ? f.error.message : `internal error (a bug; please report it):\n${f.error.stack}`}\n`,
    );
  }
  process.stderr.write(
    `vmrig: ${r.stats.admitted} guests, at most ${r.stats.peakGuests} at once ` +
      `(${r.stats.peakVcpus} vCPUs on ${r.limits.cores} cores)\n`,
  );
  return r.exitCode;
}

/** A run directory, a results.json, or a scenario directory (its newest run). */
export async function resolveRun(where: string): Promise<RunRecord> {
  const p = path.resolve(where);
  if (!existsSync(p)) throw new VmrigError(`${where}: no such run directory`);
  if ((await stat(p)).isDirectory() && !existsSync(path.join(p, "results.json"))) {
    const dirs = await listRunDirs(p);
    if (!dirs.length)
      throw new VmrigError(`${where} is neither a vmrig run directory nor a scenario directory with runs`);
    return loadRun(dirs.at(-1)!);
  }
  return loadRun(p).catch((e: Error) => {
    throw new VmrigError(e.message);
  });
}

const rootOf = (run: RunRecord) => path.dirname(path.dirname(run.dir));

async function baselineOf(root: string, scenario: string): Promise<RunRecord | undefined> {
  const id = (await readBaselines(root)).baselines[scenario];
  return id ? loadRun(path.join(root, id)).catch(() => undefined) : undefined;
}

const regressed = (c: Comparison | undefined) => (c ? c.counts.regression > 0 : false);

export async function compareCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: "boolean" },
      markdown: { type: "boolean" },
      baseline: { type: "boolean" },
      window: { type: "string" },
    },
  });
  if (positionals.length < 1 || positionals.length > 2)
    throw new VmrigError(`usage: vmrig compare <run-a> <run-b> | vmrig compare <run> [--baseline]`);
  const window = wholeNumber("window", values.window, 7, 2);
  let a: RunRecord | undefined;
  const b = await resolveRun(positionals.at(-1)!);
  const history = await listRuns(rootOf(b), b.scenario);
  if (positionals.length === 2) a = await resolveRun(positionals[0]!);
  else if (values.baseline) {
    a = await baselineOf(rootOf(b), b.scenario);
    if (!a) throw new VmrigError(`scenario ${b.scenario} has no baseline (pin one with: vmrig baseline <run>)`);
  } else {
    a = previousComplete(history, b);
    if (!a) throw new VmrigError(`${b.id} has no earlier complete run to compare with`);
  }
  // Flakiness over history only when both runs are of one scenario's history.
  const sameHistory = a.scenario === b.scenario && rootOf(a) === rootOf(b);
  const c = compareWithHistory(a, b, sameHistory ? history : [a, b], window);
  process.stdout.write(
    values.json ? JSON.stringify(c, null, 2) + "\n" : renderComparison(c, { markdown: values.markdown }),
  );
  return regressed(c) ? ExitCode.expectationFailed : ExitCode.ok;
}

export async function summaryCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      results: { type: "string" },
      baseline: { type: "boolean" },
      window: { type: "string" },
      json: { type: "boolean" },
      markdown: { type: "boolean" },
    },
  });
  const root = resultsOption(values.results);
  const window = wholeNumber("window", values.window, 7, 2);
  const { entries, generatedAt, against } = await writeNightlySummary(root, { baseline: values.baseline, window });
  process.stdout.write(
    values.json
      ? JSON.stringify({ generatedAt, against, entries }, null, 2) + "\n"
      : renderSummary(entries, { markdown: values.markdown, generatedAt, against }),
  );
  return entries.some((e) => regressed(e.comparison)) ? ExitCode.expectationFailed : ExitCode.ok;
}

export interface NightlySummary {
  entries: SummaryEntry[];
  generatedAt: string;
  against: string;
}

/** Every scenario's newest run against the one before (or its baseline): summary.md, summary.json, index.html. */
export async function writeNightlySummary(
  root: string,
  opts: { baseline?: boolean; window: number },
): Promise<NightlySummary> {
  const { window } = opts;
  const entries: SummaryEntry[] = [];
  for (const scenario of await listScenarios(root)) {
    const history = await listRuns(root, scenario);
    const latest = history.at(-1);
    if (!latest) continue;
    const base = opts.baseline ? await baselineOf(root, scenario) : previousComplete(history, latest);
    if (base && base.dir !== latest.dir)
      entries.push({ scenario, comparison: compareWithHistory(base, latest, history, window) });
    else {
      const s = summarise(latest.result);
      entries.push({ scenario, only: { id: latest.id, met: s.met, cells: s.cells, complete: latest.result.complete } });
    }
  }
  const generatedAt = new Date().toISOString();
  const against = opts.baseline ? "its pinned baseline" : "the run before it";
  await writeFile(
    path.join(root, "summary.md"),
    renderSummary(entries, { markdown: true, generatedAt, against }),
  ).catch(() => undefined);
  await writeFile(
    path.join(root, "summary.json"),
    JSON.stringify({ generatedAt, against, entries }, null, 2) + "\n",
  ).catch(() => undefined);
  if (existsSync(root)) await writeIndex(root).catch(() => undefined);
  return { entries, generatedAt, against };
}

const IN_PROGRESS_MS = 6 * 3600_000;

export async function gcCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      results: { type: "string" },
      keep: { type: "string" },
      "compress-after": { type: "string" },
      "max-runs": { type: "string" },
      "dry-run": { type: "boolean" },
    },
  });
  const policy = gcPolicy(values);
  const dryRun = Boolean(values["dry-run"]);
  const root = resultsOption(values.results);
  const baselines = await readBaselines(root);
  const { runs, facts } = await gatherRunFacts(root, baselines);
  const plan = planRetention(facts, policy);
  const done = await carryOutPlan(plan, runs, dryRun);
  if (!dryRun) {
    for (const r of done.touched) await writeRunReport(r, root, undefined, baselines).catch(() => undefined);
    if (existsSync(root)) await writeIndex(root);
  }
  process.stdout.write(gcSummary(plan, facts.length, done, policy, dryRun));
  return ExitCode.ok;
}

/** --keep, --compress-after and --max-runs over the defaults; a usage error when not whole numbers. */
export function gcPolicy(values: { keep?: string; "compress-after"?: string; "max-runs"?: string }): RetentionPolicy {
  const num = wholeNumber;
  const policy = {
    keep: num("keep", values.keep, DEFAULT_POLICY.keep),
    compressAfter: num("compress-after", values["compress-after"], DEFAULT_POLICY.compressAfter),
    maxRuns: num("max-runs", values["max-runs"], DEFAULT_POLICY.maxRuns),
  };
  if (policy.maxRuns < policy.keep)
    throw new VmrigError(`--max-runs (${policy.maxRuns}) must be at least --keep (${policy.keep})`);
  return policy;
}

/** Every run under the results root, by id, and what retention needs to know about each. */
async function gatherRunFacts(
  root: string,
  baselines: Awaited<ReturnType<typeof readBaselines>>,
): Promise<{ runs: Map<string, RunRecord>; facts: RunFacts[] }> {
  const runs = new Map<string, RunRecord>();
  const facts: RunFacts[] = [];
  for (const scenario of await listScenarios(root)) {
    for (const r of await listRuns(root, scenario)) {
      runs.set(r.id, r);
      const links = r.result.rows
        .flatMap((row) => Object.values(row.artifacts))
        .map((rel) => resolveArtifact(r.dir, rel));
      const mtime = (await stat(path.join(r.dir, "results.json"))).mtimeMs;
      facts.push({
        id: r.id,
        scenario,
        startedAt: r.result.startedAt,
        pinned: isPinned(r.id, r.dir, baselines),
        inProgress: !r.result.finishedAt && Date.now() - mtime < IN_PROGRESS_MS,
        state: artifactState(links),
      });
    }
  }
  return { runs, facts };
}

/** A run whose artifacts are all gone was pruned; one with any gzipped was compressed. */
export function artifactState(links: Array<{ state: "plain" | "gz" | "missing" }>): RunFacts["state"] {
  return links.length && links.every((l) => l.state === "missing")
    ? "pruned"
    : links.some((l) => l.state === "gz")
      ? "compressed"
      : "kept";
}

interface GcDone {
  /** Bytes of the compressed logs before and after gzip. */
  before: number;
  after: number;
  /** Bytes pruned or deleted. */
  freed: number;
  /** Runs still there whose report must be rewritten. */
  touched: RunRecord[];
}

/** Says each action that is not "keep" and, unless a dry run, does it. */
async function carryOutPlan(plan: PlannedAction[], runs: Map<string, RunRecord>, dryRun: boolean): Promise<GcDone> {
  const done: GcDone = { before: 0, after: 0, freed: 0, touched: [] };
  for (const p of plan) {
    if (p.action === "keep") continue;
    const r = runs.get(p.id)!;
    process.stdout.write(`${dryRun ? "would " : ""}${p.action} ${p.id}: ${p.why}\n`);
    if (dryRun) continue;
    if (p.action === "compress") {
      const c = await compressRun(r.dir);
      done.before += c.before;
      done.after += c.after;
      done.touched.push(r);
    } else if (p.action === "prune") {
      done.freed += await pruneRun(r.dir);
      done.touched.push(r);
    } else done.freed += await deleteRun(r.dir);
  }
  return done;
}

/** gc's last line: what the plan does to how many runs, and with which policy. */
export function gcSummary(
  plan: PlannedAction[],
  runCount: number,
  done: Pick<GcDone, "before" | "after" | "freed">,
  policy: RetentionPolicy,
  dryRun: boolean,
): string {
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const n = (a: string) => plan.filter((p) => p.action === a).length;
  return (
    `gc${dryRun ? " (dry run)" : ""}: ${runCount} runs; ` +
    `compress ${n("compress")} (${mb(done.before)} -> ${mb(done.after)}), prune ${n("prune")}, ` +
    `delete ${n("delete")} (${mb(done.freed)} freed); ` +
    `keep --keep ${policy.keep}, --compress-after ${policy.compressAfter}\n`
  );
}

export async function baselineCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { results: { type: "string" }, list: { type: "boolean" }, clear: { type: "string" } },
  });
  if (values.list || values.clear) {
    const root = resultsOption(values.results);
    const b = await readBaselines(root);
    if (values.clear) {
      if (!(values.clear in b.baselines))
        throw new VmrigError(`--clear ${values.clear}: no baseline is pinned for it; ${pinnedList(b.baselines)}`);
      delete b.baselines[values.clear];
      await writeBaselines(root, b);
    }
    for (const [s, id] of Object.entries(b.baselines)) process.stdout.write(`${s}: ${id}\n`);
    return ExitCode.ok;
  }
  if (positionals.length !== 1) throw new VmrigError("usage: vmrig baseline <run-dir> | --list | --clear SCENARIO");
  const run = await resolveRun(positionals[0]!);
  const root = values.results ? path.resolve(values.results) : rootOf(run);
  const b = await readBaselines(root);
  b.baselines[run.scenario] = run.id;
  await writeBaselines(root, b);
  await writeRunReport(run, root, undefined, b).catch(() => undefined);
  await writeIndex(root).catch(() => undefined);
  process.stdout.write(`baseline of ${run.scenario}: ${run.id}\n`);
  return ExitCode.ok;
}

/** Dispatch for the CLI: undefined when `command` is not one of these. */
export function nightlyCommand(command: string, args: string[]): Promise<number> | undefined {
  switch (command) {
    case "compare":
      return compareCommand(args);
    case "summary":
      return summaryCommand(args);
    case "gc":
      return gcCommand(args);
    case "baseline":
      return baselineCommand(args);
    default:
      return undefined;
  }
}
