// `vmrig run a.yaml b.yaml ... --jobs auto|N`: every (scenario, kernel) guest of the whole
// command on one scheduler. Each scenario still gets its own run directory, results.json,
// results.md, junit.xml and report.html, exactly as a serial run writes them.
//
// Order of work: every spec is loaded first (a typo in the last file stops the command before a
// guest boots); then scenarios are prepared one at a time (kernel downloads, image builds and
// the accelerator probe share caches) while the guests of those already prepared run; tables
// are printed in the order the files were given, once all are done.
import path from "node:path";
import type { Scenario } from "../../types.ts";
import { loadScenario } from "../../scenario/load.ts";
import { runScenarioFile, type RunOptions, type RunOutcome } from "../run-file.ts";
import { createProgress, type Progress } from "../progress.ts";
import { ExitCode, VmrigError } from "../../util/errors.ts";
import { GuestScheduler, guestDemand, type Jobs, type SchedulerStats } from "./scheduler.ts";
import { rowKey, scenarioKeyPrefix } from "./rows.ts";

export interface ManyOptions extends Omit<RunOptions, "scheduler" | "onPrepared"> {
  jobs: Jobs;
  /** A scheduler to use instead of one sized for this host (tests, bench). */
  scheduler?: GuestScheduler;
}

export interface FileOutcome {
  file: string;
  outcome?: RunOutcome;
  error?: Error;
}

export interface ManyOutcome {
  files: FileOutcome[];
  exitCode: number;
  stats: SchedulerStats;
  limits: GuestScheduler["limits"];
}

/** Progress lines name the scenario too when several run at once ("smoke/debian-7.3"). */
function prefixed(p: Progress, name: string): Progress {
  const k = (kernel: string) => `${name}/${kernel}`;
  return {
    info: (line) => p.info(`[${name}] ${line}`),
    stage: (kernel, what) => p.stage(k(kernel), what),
    cell: (kernel, w, o) => p.cell(k(kernel), w, o),
    done: (kernel, row) => p.done(k(kernel), row),
  };
}

function buffer(): NodeJS.WritableStream & { text: string } {
  const b = { text: "", isTTY: false, write: (chunk: string | Uint8Array) => ((b.text += String(chunk)), true) };
  return b as unknown as NodeJS.WritableStream & { text: string };
}

export async function runScenarioFiles(files: string[], opts: ManyOptions): Promise<ManyOutcome> {
  const abs = files.map((f) => path.resolve(f));
  const scenarios: Scenario[] = [];
  for (const f of abs) scenarios.push(await loadScenario(f));
  const byName = new Map<string, string>();
  for (const s of scenarios) {
    const other = byName.get(s.name);
    if (other)
      throw new VmrigError(
        `scenario name "${s.name}" is in both ${other} and ${s.file}: ` +
          `their runs would share results/${s.name}/; rename one`,
      );
    byName.set(s.name, s.file);
  }

  const scheduler = opts.scheduler ?? GuestScheduler.forHost(opts.jobs);
  for (const s of scenarios) {
    const only = opts.shard?.rowsOf(s.name) ?? opts.kernels;
    const rows = only?.length ? s.kernels.filter((k) => only.includes(k.label)) : s.kernels;
    scheduler.plan(rows.map((k) => guestDemand(rowKey(s.file, k.label), s.machine.cpus, s.machine.memoryBytes)));
  }
  const base = opts.progress ?? createProgress();
  const l = scheduler.limits;
  base.info(
    `jobs ${opts.jobs}: up to ${l.maxGuests === Infinity ? "any number of" : l.maxGuests} guests, ` +
      `${l.maxVcpus === Infinity ? "vCPUs unbounded" : `${l.maxVcpus} vCPUs`} on ${l.cores} cores, ` +
      `${(l.memoryBytes / 2 ** 30).toFixed(1)} GiB for guests`,
  );

  const outs = scenarios.map(() => buffer());
  const tasks: Array<Promise<FileOutcome>> = [];
  for (const [i, s] of scenarios.entries()) {
    if (opts.signal?.aborted) break;
    let prepared!: () => void;
    const ready = new Promise<void>((r) => (prepared = r));
    const task = runScenarioFile(s.file, {
      ...opts,
      scheduler,
      onPrepared: prepared,
      out: outs[i],
      color: opts.color ?? Boolean(((opts.out as NodeJS.WriteStream | undefined) ?? process.stdout).isTTY),
      progress: scenarios.length > 1 ? prefixed(base, s.name) : base,
    }).then(
      (outcome): FileOutcome => ({ file: s.file, outcome }),
      (error: Error): FileOutcome => ({ file: s.file, error }),
    );
    const settled = task.finally(() => {
      scheduler.unplan(scenarioKeyPrefix(s.file));
      prepared();
    });
    tasks.push(settled);
    // Prepare one scenario at a time; its guests queue on the scheduler meanwhile.
    await Promise.race([ready, settled]);
  }
  const results = await Promise.all(tasks);

  const out = opts.out ?? process.stdout;
  let exitCode: number = ExitCode.ok;
  for (const [i, r] of results.entries()) {
    if (outs[i]!.text) out.write(outs[i]!.text);
    if (r.outcome) exitCode = Math.max(exitCode, r.outcome.exitCode);
    else exitCode = Math.max(exitCode, r.error instanceof VmrigError ? r.error.exitCode : ExitCode.usage);
  }
  if (opts.signal?.aborted) exitCode = ExitCode.interrupted;
  return { files: results, exitCode, stats: scheduler.stats, limits: scheduler.limits };
}
