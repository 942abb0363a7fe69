// npm run bench -- matrix: a 4-kernel x 3-workload matrix run serially and with --jobs auto (and
// --jobs 4, oversubscribed, as a third point) in the same process, alternated per round so host
// drift hits every mode; wall times, speed-ups, the host's cores, and the vmrig process's own
// memory (peak RSS sampled while each mode ran, and the process's lifetime high-water mark).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { runScenarioFile } from "../harness/run/run-file.ts";
import { runScenarioFiles } from "../harness/run/schedule/run-many.ts";
import { GuestScheduler, hostCores, type Jobs } from "../harness/run/schedule/scheduler.ts";
import { renderTerminalTable } from "../harness/report/table.ts";
import { silentProgress, discardOutput, type Progress } from "../harness/run/progress.ts";
import type { RunResult } from "../harness/types.ts";

const quiet: Progress = silentProgress;
const sink = discardOutput;
const fmt = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

export const MATRIX_SCENARIO = `name: bench-matrix
machine: { arch: x86_64, memory: 512M, cpus: 1 }
kernels:
  debian-6.12: { debian: { version: "6.12", flavour: cloud-amd64 } }
  debian-7.3: { debian: { version: "7.3", flavour: cloud-amd64 } }
  debian-6.12-nosmt: { debian: { version: "6.12", flavour: cloud-amd64 }, cmdline: [nosmt] }
  debian-7.3-nosmt: { debian: { version: "7.3", flavour: cloud-amd64 }, cmdline: [nosmt] }
shares:
  - { tag: share }
workloads:
  - { id: getdents-64K, readdir: { share: share, entries: 1000, bufferSize: 64K } }
  - { id: read-1M, read: { share: share, size: 8M, blockSize: 1M } }
  - { id: uname, shell: { command: "uname -r", expectExit: 0 } }
expect: { default: PASS }
`;

async function highWaterMark(): Promise<number> {
  const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(await readFile("/proc/self/status", "utf8"))?.[1];
  return Number(kb ?? 0) * 1024;
}

async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; peakRss: number }> {
  let peakRss = process.memoryUsage().rss;
  const timer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  const t0 = Date.now();
  try {
    const value = await fn();
    return { value, ms: Date.now() - t0, peakRss: Math.max(peakRss, process.memoryUsage().rss) };
  } finally {
    clearInterval(timer);
  }
}

export async function matrixBench(rounds: number): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), "vmrig-bench-matrix-"));
  const file = path.join(work, "matrix.yaml");
  await writeFile(file, MATRIX_SCENARIO);
  const resultsRoot = path.join(work, "results");
  const table = (r: RunResult) => renderTerminalTable(r, { color: false });

  // Warm-up: kernels, images and the accelerator verdict are cached before anything is timed.
  await runScenarioFile(file, { progress: quiet, out: sink, resultsRoot, kernels: ["debian-6.12"] });

  const modes: Array<{ name: string; jobs?: Jobs }> = [
    { name: "serial" },
    { name: "--jobs auto", jobs: "auto" },
    { name: "--jobs 4", jobs: 4 },
  ];
  const times: Record<string, number[]> = {};
  const rss: Record<string, number> = {};
  const peaks: Record<string, number> = {};
  const tables = new Set<string>();
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? modes : [...modes].reverse();
    for (const m of order) {
      const r = await measured(async () => {
        if (!m.jobs) return (await runScenarioFile(file, { progress: quiet, out: sink, resultsRoot })).result;
        const scheduler = GuestScheduler.forHost(m.jobs);
        const many = await runScenarioFiles([file], {
          jobs: m.jobs,
          scheduler,
          progress: quiet,
          out: sink,
          resultsRoot,
        });
        peaks[m.name] = Math.max(peaks[m.name] ?? 0, many.stats.peakGuests);
        const f = many.files[0]!;
        // A file without an outcome has its error by construction; the fallback only keeps the throw an Error.
        if (!f.outcome) throw f.error ?? new Error(`${file}: no outcome`);
        return f.outcome.result;
      });
      (times[m.name] ??= []).push(r.ms);
      rss[m.name] = Math.max(rss[m.name] ?? 0, r.peakRss);
      tables.add(table(r.value));
      process.stderr.write(`round ${round + 1}/${rounds}: ${m.name} ${fmt(r.ms)}\n`);
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const serial = med(times.serial!);
  console.log(
    `\n## matrix: 4 kernels x 3 workloads (1 vCPU, 512M guests), ${hostCores()} host cores, ${rounds} round(s), TCG`,
  );
  for (const m of modes) {
    const t = med(times[m.name]!);
    const speed = m.jobs ? `  speed-up x${(serial / t).toFixed(2)}` : "";
    const peak = m.jobs ? `  (at most ${peaks[m.name]} guests at once)` : "";
    console.log(`${m.name.padEnd(12)} ${fmt(t).padStart(8)}${speed}${peak}  vmrig RSS peak ${mib(rss[m.name]!)}`);
  }
  console.log(`vmrig process high-water mark (VmHWM, whole bench): ${mib(await highWaterMark())}`);
  console.log(
    `tables identical across modes and rounds: ${tables.size === 1 ? "yes" : `NO (${tables.size} different)`}`,
  );
  await rm(work, { recursive: true, force: true });
}
