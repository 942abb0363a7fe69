// The whole of `vmrig run`: spec -> kernels -> images -> accelerator -> rows -> reports.
// Everything that can fail for the user's input or the host fails before results/ is touched.
import { mkdir, rename, writeFile, copyFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { RunResult, Scenario } from "../types.ts";
import { loadScenario } from "../spec/load.ts";
import { resolveKernel } from "../kernels/provider.ts";
import { buildGuestImage } from "../image/build.ts";
import { chooseAccelerator } from "../qemu/accel.ts";
import { READY_MARKER } from "../guest/boot.ts";
import { renderJUnit, renderMarkdown, renderTerminalTable, summarise } from "../report/index.ts";
import { killAllChildren } from "../util/children.ts";
import { ExitCode } from "../util/errors.ts";
import { repoRoot } from "../util/paths.ts";
import { requireHostTools } from "../host/tools.ts";
import { createProgress, type Progress } from "./progress.ts";
import { runScenario, type PreparedKernel } from "./runner.ts";

export interface RunOptions {
  resultsRoot?: string;
  /** Only these kernel labels (default: all). */
  kernels?: string[];
  progress?: Progress;
  signal?: AbortSignal;
  color?: boolean;
  out?: NodeJS.WritableStream;
}

export interface RunOutcome {
  result: RunResult;
  runDir: string;
  exitCode: number;
}

export async function runScenarioFile(file: string, opts: RunOptions = {}): Promise<RunOutcome> {
  const progress = opts.progress ?? createProgress();
  const signal = opts.signal ?? new AbortController().signal;
  const scenario = await loadScenario(file);
  const selected = selectKernels(scenario, opts.kernels);
  const tools = await requireHostTools(scenario, signal);

  const prepared: PreparedKernel[] = [];
  for (const entry of selected) {
    progress.stage(entry.label, "resolving kernel");
    const artifact = await resolveKernel(entry, { arch: scenario.machine.arch, signal, log: (l: string) => progress.stage(entry.label, l) });
    progress.stage(entry.label, "building guest image");
    const image = await buildGuestImage({ arch: scenario.machine.arch, kernel: artifact, signal, log: (l: string) => progress.stage(entry.label, l) });
    prepared.push({ entry, artifact, image });
  }
  const first = prepared[0]!;
  const accel = await chooseAccelerator(scenario.machine.accel, scenario.machine.arch, {
    kernel: first.artifact.image,
    initrd: first.image.initrd,
    readyMarker: READY_MARKER,
  }, { signal });
  progress.info(accel.note);

  const resultsRoot = opts.resultsRoot ?? process.env.VMRIG_RESULTS ?? path.join(repoRoot, "results");
  const stamp = new Date().toISOString().replace(/[:]/g, "-").replace(/\..+$/, "Z");
  const runDir = path.join(resultsRoot, scenario.name, stamp);
  await mkdir(runDir, { recursive: true });
  await copyFile(scenario.file, path.join(runDir, "scenario.yaml"));

  const result: RunResult = {
    scenario: scenario.name,
    scenarioFile: path.relative(repoRoot, scenario.file),
    startedAt: new Date().toISOString(),
    complete: false,
    host: { hostname: os.hostname(), qemu: tools.qemuVersion, virtiofsd: tools.virtiofsd.version, accel: accel.name, accelNote: accel.note },
    workloads: scenario.workloads.map((w) => w.id),
    rows: [],
  };
  const writeJson = (r: RunResult) => writeAtomic(path.join(runDir, "results.json"), JSON.stringify(r, null, 2) + "\n");
  await writeJson(result);

  await runScenario(scenario, prepared, {
    accel,
    virtiofsd: tools.virtiofsd,
    relay: tools.relay,
    virtiofsdLogLevel: tools.virtiofsdLogLevel,
    runDir,
    progress,
    signal,
    onUpdate: writeJson,
  }, result);

  if (signal.aborted) await killAllChildren();
  result.complete = !signal.aborted;
  result.finishedAt = new Date().toISOString();
  await writeJson(result);
  await writeAtomic(path.join(runDir, "results.md"), renderMarkdown(result));
  await writeAtomic(path.join(runDir, "junit.xml"), renderJUnit(result));
  const out = opts.out ?? process.stdout;
  out.write("\n" + renderTerminalTable(result, { color: opts.color ?? Boolean((out as NodeJS.WriteStream).isTTY) }) + "\n");
  out.write(`results: ${path.relative(process.cwd(), runDir) || runDir}\n`);
  const exitCode = signal.aborted ? ExitCode.interrupted : summarise(result).exitCode;
  return { result, runDir, exitCode };
}

function selectKernels(s: Scenario, labels?: string[]) {
  if (!labels?.length) return s.kernels;
  const unknown = labels.filter((l) => !s.kernels.some((k) => k.label === l));
  if (unknown.length) throw new (class extends Error {})(`unknown kernel label(s) ${unknown.join(", ")}; the scenario has ${s.kernels.map((k) => k.label).join(", ")}`);
  return s.kernels.filter((k) => labels.includes(k.label));
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}
