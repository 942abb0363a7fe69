// npm run bench: figures as ratios against a baseline measured in the same run.
//   1. boot to first SSH command (bench/boot.ts): vmrig's bootGuest vs a hand-written QEMU + `ssh`
//      loop and virtme-ng, same kernel, alternated, with where the seconds go.
//   2. the default scenario's wall time, split into prepare / boot / workloads / teardown.
//   3. (arm64) boot to SSH of arm64 guests with 4K, 16K and 64K pages beside x86 (bench/arm64.ts).
//   4. matrix: 4 kernels x 3 workloads, serial vs --jobs auto in the same run (bench/matrix.ts).
//   5. relay: the ACCESS_PLATFORM relay's cost; qemu: a row's Debian QEMU 11.1 against the host's.
//   6. shard: `--shard K/N` balance (max/mean), predicted and measured, for 16 rows (bench/shard.ts).
// Select with `npm run bench -- boot`, `-- scenario`, `-- relay`, `-- qemu`, `-- arm64`, `-- matrix` or
// `-- shard`; default all.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadScenario } from "../harness/scenario/load.ts";
import { runScenarioFile } from "../harness/run/run-file.ts";
import { silentProgress, discardOutput, type Progress } from "../harness/run/progress.ts";
import { repoRoot } from "../harness/util/paths.ts";
import { benchRounds } from "../harness/util/env.ts";
import { arm64BootBench } from "./arm64.ts";
import { runBisect } from "../harness/bisect/bisect.ts";
import { preparePristineSource } from "../harness/kernels/from-source/source.ts";
import { bisectScenarioYaml, makeKernelHistory } from "../test/helpers/kernel-history.ts";
import { matrixBench } from "./matrix.ts";
import { bootBench } from "./boot.ts";
import { shardBench } from "./shard.ts";

const signal = new AbortController().signal;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function scenarioBench(file: string): Promise<void> {
  const marks: Array<{ t: number; kernel: string; what: string }> = [];
  const progress: Progress = {
    info: () => undefined,
    stage: (kernel, what) => marks.push({ t: Date.now(), kernel, what }),
    cell: (kernel, what) => marks.push({ t: Date.now(), kernel, what: `cell ${what}` }),
    done: (kernel) => marks.push({ t: Date.now(), kernel, what: "done" }),
  };
  const t0 = Date.now();
  const sink = discardOutput;
  const { result } = await runScenarioFile(file, {
    progress,
    out: sink,
    resultsRoot: path.join(os.tmpdir(), "vmrig-bench-results"),
  });
  const total = Date.now() - t0;
  const firstBoot = marks.find((m) => m.what === "booting")?.t ?? t0;
  const prepare = firstBoot - t0;
  let boot = 0;
  let workloads = 0;
  for (const row of result.rows) {
    boot += row.bootMs ?? 0;
    workloads += row.cells.reduce((s, c) => s + c.durationMs, 0);
  }
  const rest = total - prepare - boot - workloads;
  const scenario = await loadScenario(file);
  console.log(
    `\n## whole scenario ${scenario.name}: ${fmt(total)} wall ` +
      `(${result.rows.length} kernels x ${result.workloads.length} workloads)`,
  );
  for (const [name, ms] of [
    ["prepare (spec, kernels, images, accel probe)", prepare],
    ["boot to SSH", boot],
    ["workloads", workloads],
    ["teardown, dmesg, reports", rest],
  ] as const) {
    console.log(`${name.padEnd(46)} ${fmt(ms).padStart(8)}  ${((ms / total) * 100).toFixed(0).padStart(3)} %`);
  }
}

/**
 * Two variants of one scenario, alternated A B A B so drift hits both: boot to first SSH and a
 * 64 MiB read, as medians and as the median of the per-round ratios A/B.
 */
async function pairedBench(
  title: string,
  names: [string, string],
  bodies: [string, string],
  rounds: number,
): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "vmrig-bench-pair-"));
  const files = await Promise.all(
    bodies.map(async (body, i) => {
      const f = path.join(dir, `variant-${i}.yaml`);
      await writeFile(f, `name: bench-variant-${i}\n${body}`);
      return f;
    }),
  );
  const quiet: Progress = silentProgress;
  const sink = discardOutput;
  const sample = async (f: string) => {
    const { result } = await runScenarioFile(f, { progress: quiet, out: sink, resultsRoot: path.join(dir, "results") });
    const row = result.rows[0]!;
    if (row.cells[0]!.outcome.kind !== "pass")
      throw new Error(`${title}: read failed: ${JSON.stringify(row.cells[0]!.outcome)}`);
    return { boot: row.bootMs!, read: row.cells[0]!.durationMs };
  };
  const a: Array<{ boot: number; read: number }> = [];
  const b: Array<{ boot: number; read: number }> = [];
  for (const f of files) await sample(f); // warm-up: kernel, image, relay build, QEMU provisioning
  for (let i = 0; i < rounds; i++) {
    a.push(await sample(files[0]!));
    b.push(await sample(files[1]!));
  }
  console.log(`\n## ${title} (${rounds} rounds, alternated)`);
  for (const k of ["boot", "read"] as const) {
    const xa = a.map((x) => x[k]);
    const xb = b.map((x) => x[k]);
    const ratios = xa.map((x, i) => x / xb[i]!);
    const label = k === "boot" ? "boot to first SSH" : "64 MiB read, 1M blocks";
    console.log(
      `${label.padEnd(24)} ${names[0]} ${fmt(median(xa))}  ${names[1]} ${fmt(median(xb))}  ` +
        `ratio median ${median(ratios).toFixed(3)} ` +
        `(min ${Math.min(...ratios).toFixed(3)}, max ${Math.max(...ratios).toFixed(3)})`,
    );
  }
  await rm(dir, { recursive: true, force: true });
}

const READ_64M = "workloads:\n  - { id: read-64M, read: { share: share, size: 64M, blockSize: 1M } }\n";

/** The relay's own cost: the same kernel and workloads with and without it (no swiotlb). */
const relayBench = (rounds: number) =>
  pairedBench(
    "the ACCESS_PLATFORM relay's cost (Debian 6.18.15, TCG, no swiotlb)",
    ["with", "without"],
    [true, false].map(
      (relay) =>
        'kernels:\n  k: { debian: { version: "6.18.15", flavour: cloud-amd64 } }\n' +
        `shares: [{ tag: share, accessPlatform: ${relay} }]\n${READ_64M}`,
    ) as [string, string],
    rounds,
  );

/** A row's QEMU build (`qemu:`): Debian's 11.1 through its private loader against the host's QEMU. */
const qemuBench = (rounds: number) =>
  pairedBench(
    "Debian's QEMU 11.1 (private loader) against the host's QEMU (Debian 7.3 guest, TCG)",
    ["11.1", "host"],
    ['qemu: { debian: "11.1" }, ', ""].map(
      (q) =>
        `kernels:\n  k: { debian: { version: "7.3", flavour: cloud-amd64 }, ${q}expect: {} }\n` +
        `shares: [{ tag: share }]\n${READ_64M}`,
    ) as [string, string],
    rounds,
  );

/**
 * vmrig bisect on linux-source-7.3 + 8 commits (test/helpers/kernel-history.ts), with fresh
 * hashes so every kernel is really built: total time split into build / boot / workload, and
 * each incremental step build against the cold one (the first build in a new build directory;
 * ccache as the host has it).
 */
async function bisectBench(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "vmrig-bench-bisect-"));
  let slot: string | undefined;
  try {
    const pristine = await preparePristineSource(
      { kind: "debian", package: "linux-source-7.3" },
      { signal, log: () => undefined, label: "bench" },
    );
    const t0 = Date.now();
    const history = await makeKernelHistory(pristine.tree, path.join(dir, "linux"), {
      salt: `bench ${new Date().toISOString()}`,
    });
    const historyMs = Date.now() - t0;
    const scenario = path.join(dir, "bisect.yaml");
    await writeFile(scenario, bisectScenarioYaml("bench-bisect", history.repo, repoRoot));
    const quiet: Progress = silentProgress;
    const t1 = Date.now();
    const r = await runBisect({
      tree: history.repo,
      good: history.shas[0]!,
      bad: "main",
      scenario,
      kernel: "stock",
      workload: "getdents-1M",
      resultsRoot: path.join(dir, "results"),
      progress: quiet,
      signal,
      out: (l) => process.stderr.write(`${l}\n`),
    });
    slot = r.slot;
    const total = Date.now() - t1;
    const steps = r.state.steps;
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const build = sum(steps.map((s) => s.build.ms));
    const boot = sum(steps.flatMap((s) => s.runs.map((x) => x.bootMs ?? 0)));
    const workload = sum(steps.flatMap((s) => s.runs.map((x) => x.workloadMs)));
    const rest = total - build - boot - workload;
    console.log(
      "\n## vmrig bisect: linux-source-7.3 + 8 commits, " +
        `culprit ${r.result?.culprit === history.culprit ? "found" : "MISSED"} in ${r.result?.steps} steps ` +
        `(${r.result?.skips} skipped), ${steps.length} kernels`,
    );
    console.log(
      `${"test history (git add of the tree, 8 commits)".padEnd(46)} ${fmt(historyMs).padStart(9)}  ` +
        "(not part of the bisect)",
    );
    console.log(`${"whole bisect".padEnd(46)} ${fmt(total).padStart(9)}`);
    for (const [name, ms] of [
      ["build (checkout, kconfig, make, install)", build],
      ["boot to SSH", boot],
      ["workload", workload],
      ["other (git, image, QEMU start/stop, reports)", rest],
    ] as const) {
      console.log(`  ${name.padEnd(44)} ${fmt(ms).padStart(9)}  ${((ms / total) * 100).toFixed(0).padStart(3)} %`);
    }
    const cold = steps[0]!;
    console.log(
      "\nbuilds, each against the cold one: " +
        "the first in a new build directory (full checkout, every object compiled, " +
        `ccache as this host has it): ${fmt(cold.build.ms)}, ${cold.build.compiled ?? "?"} objects`,
    );
    const incremental = steps.slice(1).filter((s) => s.build.how === "built");
    for (const s of steps.slice(1)) {
      const label = s.phase === "step" ? `step ${s.index}` : s.phase;
      const what = s.build.how === "failed" ? "failed (skipped)" : `${s.build.how}, ${s.build.compiled ?? 0} objects`;
      console.log(
        `  ${label.padEnd(11)} ${s.commit.slice(0, 12)}  ${fmt(s.build.ms).padStart(9)}  ` +
          `ratio ${(s.build.ms / cold.build.ms).toFixed(3)}  ${what}`,
      );
    }
    if (incremental.length) {
      const med = median(incremental.map((s) => s.build.ms));
      console.log(
        `incremental step builds: median ${fmt(med)}, ` +
          `ratio to cold ${(med / cold.build.ms).toFixed(3)} (${incremental.length} builds)`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    if (slot) await rm(slot, { recursive: true, force: true });
  }
}

const which = process.argv[2];
if (!which || which === "boot") await bootBench(benchRounds(5));
if (!which || which === "scenario") await scenarioBench(path.join(repoRoot, "scenarios", "default.yaml"));
if (!which || which === "matrix") await matrixBench(benchRounds(1));
if (!which || which === "shard") await shardBench();
if (!which || which === "relay") await relayBench(benchRounds(3));
if (!which || which === "qemu") await qemuBench(benchRounds(3));
// Not in the default set: it builds 7 kernels (~15 min on 2 cores).
if (which === "bisect") await bisectBench();
if (!which || which === "arm64") await arm64BootBench(benchRounds(3));
