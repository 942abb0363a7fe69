// The whole of `vmrig run`: spec -> kernels -> images -> accelerator -> rows -> reports.
// Everything that can fail for the user's input or the host fails before results/ is touched.
import { copyFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { CellOutcome, KernelEntry, KernelRowResult, RunResult, Scenario } from "../types.ts";
import { expectationMet } from "../classify/expect.ts";
import { loadScenario } from "../scenario/load.ts";
import { resolveKernel } from "../kernels/provider.ts";
import { checkPathKernels } from "../kernels/path.ts";
import { buildGuestImage } from "../image/build.ts";
import { summarise } from "../report/index.ts";
import { killAllChildren } from "../util/children.ts";
import { ExitCode, VmrigError } from "../util/errors.ts";
import { repoRoot, resultsRoot as defaultResultsRoot } from "../util/paths.ts";
import { createRunDir } from "../util/run-dir.ts";
import { writeFileAtomic } from "../util/atomic-fs.ts";
import { requireHostTools, type HostTools } from "./host-tools.ts";
import { createProgress, type Progress } from "./progress.ts";
import { rowQemu, runScenario } from "./runner.ts";
import type { PreparedKernel } from "./run-env.ts";
import { featureGuestModules, featureRowHooks, prepareFeatures } from "./features.ts";
import { chooseAccelerators } from "./accels.ts";
import { GuestKeeper, type KeepPolicy } from "./keep-failed.ts";
import { kernelArch } from "../scenario/platform.ts";
import type { GuestScheduler } from "./schedule/scheduler.ts";
import { printRun, writeResultsJson, writeRunFiles } from "./outputs.ts";
import { SHARD_FILE, type ShardPlan } from "./shard/manifest.ts";
import { hostQemu, provideQemu } from "../qemu/provision.ts";
import { scenarioKselftests } from "../workloads/ktap.ts";

export interface RunOptions {
  resultsRoot?: string;
  /** Only these kernel labels (default: all). */
  kernels?: string[];
  progress?: Progress;
  signal?: AbortSignal;
  /** `--jobs`: run the rows as guests on this scheduler (shared by every scenario of the run). */
  scheduler?: GuestScheduler;
  /** Called once kernels, images and the accelerator are ready, before any guest boots. */
  onPrepared?: () => void;
  color?: boolean;
  out?: NodeJS.WritableStream;
  /** Run this (already loaded, possibly narrowed) scenario instead of loading `file` (vmrig bisect). */
  scenario?: Scenario;
  /** `--keep-failed`: keep the scenario's first guest whose cell ends as the policy says. */
  keep?: KeepPolicy;
  /** `--shard K/N`: only this shard's rows of the scenario, and a shard.json beside results.json. */
  shard?: ShardPlan;
}

export interface RunOutcome {
  result: RunResult;
  runDir: string;
  exitCode: number;
  /** The guests kept for a debugger (`keep`), still running: the caller holds, then releases them. */
  keeper?: GuestKeeper;
}

export async function runScenarioFile(file: string, opts: RunOptions = {}): Promise<RunOutcome> {
  const progress = opts.progress ?? createProgress();
  const signal = opts.signal ?? new AbortController().signal;
  const scenario = opts.scenario ?? (await loadScenario(file));
  const shardRows = opts.shard?.rowsOf(scenario.name);
  // An empty selection means every row to selectKernels: a shard without rows here must not get them all.
  if (shardRows?.length === 0)
    throw new VmrigError(`${scenario.name}: shard ${opts.shard!.manifest.shard} has no rows`);
  const selected = selectKernels(scenario, shardRows ?? opts.kernels);
  const tools = await requireHostTools(scenario, signal);

  const prepared = await prepareKernels(scenario, selected, tools, progress, signal);
  const accels = await chooseAccelerators(scenario.machine.accel, prepared, signal);
  const accel = accels.get(prepared[0]!.artifact.arch)!;
  for (const [arch, a] of accels) progress.info(accels.size > 1 ? `${arch}: ${a.note}` : a.note);
  // The scenario's features set up the host (VFIO: preflight, a refusal exits 2 with nothing changed; then binding).
  const features = await prepareFeatures(scenario, accel, (l) => progress.info(l));

  const resultsRoot = opts.resultsRoot ?? defaultResultsRoot();
  const runDir = await createRunDir(path.join(resultsRoot, scenario.name));
  await copyFile(scenario.file, path.join(runDir, "scenario.yaml"));

  const result: RunResult = {
    scenario: scenario.name,
    scenarioFile: path.relative(repoRoot, scenario.file),
    startedAt: new Date().toISOString(),
    complete: false,
    host: {
      hostname: os.hostname(),
      qemu: tools.qemuVersion,
      virtiofsd: tools.virtiofsd.version,
      accel: accel.name,
      accelNote: accel.note,
      cpu: os.cpus()[0]?.model,
    },
    workloads: scenario.workloads.map((w) => w.id),
    rows: [],
  };
  features.record(result);
  if (opts.shard) {
    const manifest = { ...opts.shard.manifest, host: result.host };
    await writeFileAtomic(path.join(runDir, SHARD_FILE), JSON.stringify(manifest, null, 2) + "\n");
  }
  const writeJson = (r: RunResult) => writeResultsJson(runDir, r);
  await writeJson(result);
  opts.onPrepared?.();

  const keeper = opts.keep ? new GuestKeeper(opts.keep) : undefined;
  await runScenario(
    scenario,
    prepared,
    {
      accel,
      virtiofsd: tools.virtiofsd,
      relay: tools.relay,
      virtiofsdLogLevel: tools.virtiofsdLogLevel,
      runDir,
      progress,
      signal,
      onUpdate: writeJson,
      scheduler: opts.scheduler,
      qemuExtras: features.qemuExtras,
      rowHooks: featureRowHooks(),
      keeper,
    },
    result,
  )
    .catch(async (e: unknown) => {
      await keeper?.releaseAll();
      throw e;
    })
    .finally(() => features.finish(result, runDir));

  if (signal.aborted) {
    await killAllChildren();
    await keeper?.releaseAll();
    result.rows.push(...unstartedRows(scenario, prepared, result));
  }
  result.complete = !signal.aborted;
  result.finishedAt = new Date().toISOString();
  await writeRunFiles(result, runDir, resultsRoot, (l) => progress.info(l));
  printRun(result, runDir, opts);
  const exitCode = signal.aborted ? ExitCode.interrupted : summarise(result).exitCode;
  return { result, runDir, exitCode, ...(keeper ? { keeper } : {}) };
}

/** Each selected kernel with its guest image and, when the row asks for one, its own QEMU. */
export async function prepareKernels(
  scenario: Scenario,
  selected: KernelEntry[],
  tools: HostTools,
  progress: Progress,
  signal: AbortSignal,
): Promise<PreparedKernel[]> {
  await checkPathKernels(selected.map((entry) => ({ entry, arch: kernelArch(scenario, entry) })));
  const prepared: PreparedKernel[] = [];
  const extraModules = featureGuestModules(scenario);
  const kselftests = scenarioKselftests(scenario);
  for (const entry of selected) {
    progress.stage(entry.label, "resolving kernel");
    // A row may be of another architecture than the machine (kernels.X.arch).
    const arch = kernelArch(scenario, entry);
    const artifact = await resolveKernel(entry, { arch, signal, log: (l: string) => progress.stage(entry.label, l) });
    progress.stage(entry.label, "building guest image");
    const log = (l: string) => progress.stage(entry.label, l);
    const image = await buildGuestImage({ arch, kernel: artifact, signal, log, extraModules, kselftests });
    // QEMU builds as rows: a Debian QEMU is provisioned once (a version Debian lost is exit 2, naming the nearest).
    const qemu = entry.qemu
      ? await provideQemu(entry.qemu, arch, hostQemu(arch, tools.qemuVersion), {
          signal,
          log: (l: string) => progress.stage(entry.label, l),
        })
      : undefined;
    prepared.push({ entry, artifact, image, ...(qemu ? { qemu } : {}) });
  }
  return prepared;
}

/** An interrupted run's rows that never started, every cell NOT RUN, so each report shows and counts them. */
export function unstartedRows(s: Scenario, prepared: PreparedKernel[], run: RunResult): KernelRowResult[] {
  return prepared
    .filter((k) => !run.rows.some((r) => r.label === k.entry.label))
    .map((k) => ({
      label: k.entry.label,
      description: k.artifact.description + rowQemu(k).suffix,
      arch: k.artifact.arch,
      artifacts: {},
      evidence: { kernel: k.artifact.identity },
      cells: s.workloads.map((w) => {
        const expected = k.entry.expect[w.id] ?? s.expectDefault;
        const outcome: CellOutcome = { kind: "not-run", reason: "run interrupted before this kernel" };
        return {
          kernel: k.entry.label,
          workload: w.id,
          outcome,
          expected,
          met: expectationMet(outcome, expected),
          durationMs: 0,
          evidence: {},
        };
      }),
    }));
}

export function selectKernels(s: Scenario, labels?: string[]): KernelEntry[] {
  if (!labels?.length) return s.kernels;
  const unknown = labels.filter((l) => !s.kernels.some((k) => k.label === l));
  if (unknown.length)
    throw new VmrigError(
      `--kernel: unknown kernel label(s) ${unknown.join(", ")}; ` +
        `the scenario has ${s.kernels.map((k) => k.label).join(", ")}`,
    );
  return s.kernels.filter((k) => labels.includes(k.label));
}
