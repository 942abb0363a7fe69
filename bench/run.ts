// npm run bench: figures as ratios against a baseline measured in the same run.
//   1. boot-to-first-SSH-command: vmrig's bootGuest vs a hand-written QEMU + `ssh` loop, same
//      kernel and image, alternated A B A B so drift hits both.
//   2. the default scenario's wall time, split into prepare / boot / workloads / teardown.
//   3. (arm64) boot to SSH of arm64 guests with 4K, 16K and 64K pages beside x86 (bench/arm64.ts).
//   4. matrix: 4 kernels x 3 workloads, serial vs --jobs auto in the same run (bench/matrix.ts).
//   5. relay: the ACCESS_PLATFORM relay's cost; qemu: a row's Debian QEMU 11.1 against the host's.
// Select with `npm run bench -- boot`, `-- scenario`, `-- relay`, `-- qemu`, `-- arm64` or `-- matrix`; default all.
import { execa } from "execa";
import { mkdtemp, rm, writeFile, chmod } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadScenario } from "../harness/spec/load.ts";
import { resolveKernel } from "../harness/kernels/provider.ts";
import { buildGuestImage } from "../harness/image/build.ts";
import { tcg } from "../harness/qemu/accel.ts";
import { bootGuest } from "../harness/guest/boot.ts";
import { generateClientKey } from "../harness/guest/ssh.ts";
import { provisionVirtiofsd } from "../harness/virtiofs/provision.ts";
import { authKeyCmdlineWord } from "../harness/image/guest-protocol.ts";
import { runScenarioFile } from "../harness/run/run-file.ts";
import { silentProgress, discardOutput, type Progress } from "../harness/run/progress.ts";
import { repoRoot } from "../harness/util/paths.ts";
import { arm64BootBench } from "./arm64.ts";
import type { KernelEntry } from "../harness/types.ts";
import { runBisect } from "../harness/bisect/bisect.ts";
import { preparePristineSource } from "../harness/kernels/build/source.ts";
import { bisectScenarioYaml, makeKernelHistory } from "../test/helpers/kernel-history.ts";
import { matrixBench } from "./matrix.ts";
import { formatStall, measureLoopStall, type LoopStall } from "./event-loop.ts";

const signal = new AbortController().signal;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function bootBench(rounds: number): Promise<void> {
  const entry: KernelEntry = { label: "bench", source: { kind: "debian", version: "6.12", flavour: "cloud-amd64" }, cmdline: [], expect: {} };
  const kernel = await resolveKernel(entry, { arch: "x86_64", signal, log: () => undefined });
  const image = await buildGuestImage({ arch: "x86_64", kernel, signal, log: () => undefined });
  const virtiofsd = await provisionVirtiofsd(signal);
  const accel = tcg("x86_64", "bench");
  const work = await mkdtemp(path.join(os.tmpdir(), "vmrig-bench-"));

  const bootOnce = async (dir: string) => {
    const t0 = Date.now();
    const g = await bootGuest({
      arch: "x86_64", accel, machine: { arch: "x86_64", memoryBytes: 1 << 30, cpus: 2, accel: "tcg", cmdline: [] },
      kernel, image, cmdline: [], shares: [], virtiofsd, clientKey: generateClientKey(),
      artifactsDir: path.join(work, dir), socketsDir: path.join(work, `${dir}-sock`), bootTimeoutMs: 600_000, signal,
    });
    const ms = Date.now() - t0;
    await g.shutdown();
    return ms;
  };
  // The event loop's longest stall while vmrig boots a guest: console, QMP and SSH all wait on it.
  const stalls: LoopStall[] = [];
  const viaVmrig = async () => {
    const { result, stall } = await measureLoopStall(() => bootOnce("vmrig"));
    stalls.push(stall);
    return result;
  };

  // The baseline a kernel engineer would write by hand: fixed port, qemu &, ssh in a loop.
  const key = generateClientKey();
  const keyFile = path.join(work, "id");
  await writeFile(keyFile, key.privateKey);
  await chmod(keyFile, 0o600);
  const byHand = async () => {
    const port = 40000 + Math.floor(Math.random() * 20000);
    const t0 = Date.now();
    const q = execa("qemu-system-x86_64", [
      "-machine", "q35,accel=tcg", "-cpu", "max", "-m", "1G", "-smp", "2", "-display", "none", "-no-reboot",
      "-serial", `file:${path.join(work, "hand-console.log")}`, "-kernel", kernel.image, "-initrd", image.initrd,
      "-append", `console=ttyS0 panic=-1 ${authKeyCmdlineWord(key.publicKey)}`,
      "-netdev", `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`, "-device", "virtio-net-pci,netdev=n0,romfile=",
    ], { reject: false });
    try {
      for (;;) {
        const r = await execa("ssh", ["-i", keyFile, "-p", String(port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
          "-o", "ConnectTimeout=5", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "root@127.0.0.1", "true"], { reject: false });
        if (r.exitCode === 0) return Date.now() - t0;
        if (Date.now() - t0 > 120_000) throw new Error(`hand-written loop: no SSH after 120 s: ${r.stderr}`);
        await new Promise((res) => setTimeout(res, 200));
      }
    } finally {
      q.kill("SIGKILL");
      await q;
    }
  };

  const a: number[] = [];
  const b: number[] = [];
  await viaVmrig(); // warm-up: page cache, image
  stalls.length = 0;
  for (let i = 0; i < rounds; i++) {
    a.push(await viaVmrig());
    b.push(await byHand());
    process.stderr.write(`round ${i + 1}/${rounds}: vmrig ${fmt(a.at(-1)!)}, by hand ${fmt(b.at(-1)!)}\n`);
  }
  const ratios = a.map((x, i) => x / b[i]!);
  console.log(`\n## boot to first SSH command (Debian ${kernel.release}, TCG, ${rounds} rounds, alternated)`);
  console.log(`vmrig bootGuest      min ${fmt(Math.min(...a))}  median ${fmt(median(a))}  max ${fmt(Math.max(...a))}`);
  console.log(`hand-written loop    min ${fmt(Math.min(...b))}  median ${fmt(median(b))}  max ${fmt(Math.max(...b))}`);
  console.log(`ratio vmrig/by-hand  min ${Math.min(...ratios).toFixed(3)}  median ${median(ratios).toFixed(3)}  max ${Math.max(...ratios).toFixed(3)}  (target <= 1.10)`);
  const worst = stalls.reduce((a, b) => (b.maxMs > a.maxMs ? b : a));
  console.log(`event-loop stall     ${formatStall(worst)} (worst of the ${stalls.length} vmrig boots)`);
  // Under load: several guests at once in one process, the way --jobs and the tests run them.
  const parallel = Number(process.env.VMRIG_BENCH_PARALLEL ?? 4);
  const boots = () => Promise.all(Array.from({ length: parallel }, (_, i) => bootOnce(`vmrig-p${i}`)));
  const burst = await measureLoopStall(boots);
  const slowest = fmt(Math.max(...burst.result));
  console.log(`${parallel} guests at once     boot max ${slowest}, event-loop stall ${formatStall(burst.stall)}`);
  await rm(work, { recursive: true, force: true });
}

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
  const { result } = await runScenarioFile(file, { progress, out: sink, resultsRoot: path.join(os.tmpdir(), "vmrig-bench-results") });
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
  console.log(`\n## whole scenario ${scenario.name}: ${fmt(total)} wall (${result.rows.length} kernels x ${result.workloads.length} workloads)`);
  for (const [name, ms] of [["prepare (spec, kernels, images, accel probe)", prepare], ["boot to SSH", boot], ["workloads", workloads], ["teardown, dmesg, reports", rest]] as const) {
    console.log(`${name.padEnd(46)} ${fmt(ms).padStart(8)}  ${((ms / total) * 100).toFixed(0).padStart(3)} %`);
  }
}

/**
 * Two variants of one scenario, alternated A B A B so drift hits both: boot to first SSH and a
 * 64 MiB read, as medians and as the median of the per-round ratios A/B.
 */
async function pairedBench(title: string, names: [string, string], bodies: [string, string], rounds: number): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "vmrig-bench-pair-"));
  const files = await Promise.all(bodies.map(async (body, i) => {
    const f = path.join(dir, `variant-${i}.yaml`);
    await writeFile(f, `name: bench-variant-${i}\n${body}`);
    return f;
  }));
  const quiet: Progress = silentProgress;
  const sink = discardOutput;
  const sample = async (f: string) => {
    const { result } = await runScenarioFile(f, { progress: quiet, out: sink, resultsRoot: path.join(dir, "results") });
    const row = result.rows[0]!;
    if (row.cells[0]!.outcome.kind !== "pass") throw new Error(`${title}: read failed: ${JSON.stringify(row.cells[0]!.outcome)}`);
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
    console.log(`${label.padEnd(24)} ${names[0]} ${fmt(median(xa))}  ${names[1]} ${fmt(median(xb))}  ratio median ${median(ratios).toFixed(3)} (min ${Math.min(...ratios).toFixed(3)}, max ${Math.max(...ratios).toFixed(3)})`);
  }
  await rm(dir, { recursive: true, force: true });
}

const READ_64M = "workloads:\n  - { id: read-64M, read: { share: share, size: 64M, blockSize: 1M } }\n";

/** The relay's own cost: the same kernel and workloads with and without it (no swiotlb). */
const relayBench = (rounds: number) =>
  pairedBench("the ACCESS_PLATFORM relay's cost (Debian 6.18.15, TCG, no swiotlb)", ["with", "without"], [true, false].map((relay) =>
    `kernels:\n  k: { debian: { version: "6.18.15", flavour: cloud-amd64 } }\nshares: [{ tag: share, accessPlatform: ${relay} }]\n${READ_64M}`) as [string, string], rounds);

/** A row's QEMU build (`qemu:`): Debian's 11.1 through its private loader against the host's QEMU. */
const qemuBench = (rounds: number) =>
  pairedBench("Debian's QEMU 11.1 (private loader) against the host's QEMU (Debian 7.3 guest, TCG)", ["11.1", "host"], ["qemu: { debian: \"11.1\" }, ", ""].map((q) =>
    `kernels:\n  k: { debian: { version: "7.3", flavour: cloud-amd64 }, ${q}expect: {} }\nshares: [{ tag: share }]\n${READ_64M}`) as [string, string], rounds);

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
    const pristine = await preparePristineSource({ kind: "debian", package: "linux-source-7.3" }, { signal, log: () => undefined, label: "bench" });
    const t0 = Date.now();
    const history = await makeKernelHistory(pristine.tree, path.join(dir, "linux"), { salt: `bench ${new Date().toISOString()}` });
    const historyMs = Date.now() - t0;
    const scenario = path.join(dir, "bisect.yaml");
    await writeFile(scenario, bisectScenarioYaml("bench-bisect", history.repo, repoRoot));
    const quiet: Progress = silentProgress;
    const t1 = Date.now();
    const r = await runBisect({
      tree: history.repo, good: history.shas[0]!, bad: "main", scenario, kernel: "stock", workload: "getdents-1M",
      resultsRoot: path.join(dir, "results"), progress: quiet, signal, out: (l) => process.stderr.write(`${l}\n`),
    });
    slot = r.slot;
    const total = Date.now() - t1;
    const steps = r.state.steps;
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const build = sum(steps.map((s) => s.build.ms));
    const boot = sum(steps.flatMap((s) => s.runs.map((x) => x.bootMs ?? 0)));
    const workload = sum(steps.flatMap((s) => s.runs.map((x) => x.workloadMs)));
    const rest = total - build - boot - workload;
    console.log(`\n## vmrig bisect: linux-source-7.3 + 8 commits, culprit ${r.result?.culprit === history.culprit ? "found" : "MISSED"} in ${r.result?.steps} steps (${r.result?.skips} skipped), ${steps.length} kernels`);
    console.log(`${"test history (git add of the tree, 8 commits)".padEnd(46)} ${fmt(historyMs).padStart(9)}  (not part of the bisect)`);
    console.log(`${"whole bisect".padEnd(46)} ${fmt(total).padStart(9)}`);
    for (const [name, ms] of [["build (checkout, kconfig, make, install)", build], ["boot to SSH", boot], ["workload", workload], ["other (git, image, QEMU start/stop, reports)", rest]] as const) {
      console.log(`  ${name.padEnd(44)} ${fmt(ms).padStart(9)}  ${((ms / total) * 100).toFixed(0).padStart(3)} %`);
    }
    const cold = steps[0]!;
    console.log(
      `\nbuilds, each against the cold one: the first in a new build directory (full checkout, every object compiled, ` +
        `ccache as this host has it): ${fmt(cold.build.ms)}, ${cold.build.compiled ?? "?"} objects`,
    );
    const incremental = steps.slice(1).filter((s) => s.build.how === "built");
    for (const s of steps.slice(1)) {
      const label = s.phase === "step" ? `step ${s.index}` : s.phase;
      const what = s.build.how === "failed" ? "failed (skipped)" : `${s.build.how}, ${s.build.compiled ?? 0} objects`;
      console.log(`  ${label.padEnd(11)} ${s.commit.slice(0, 12)}  ${fmt(s.build.ms).padStart(9)}  ratio ${(s.build.ms / cold.build.ms).toFixed(3)}  ${what}`);
    }
    if (incremental.length) {
      const med = median(incremental.map((s) => s.build.ms));
      console.log(`incremental step builds: median ${fmt(med)}, ratio to cold ${(med / cold.build.ms).toFixed(3)} (${incremental.length} builds)`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    if (slot) await rm(slot, { recursive: true, force: true });
  }
}

const which = process.argv[2];
if (!which || which === "boot") await bootBench(Number(process.env.VMRIG_BENCH_ROUNDS ?? 5));
if (!which || which === "scenario") await scenarioBench(path.join(repoRoot, "scenarios", "default.yaml"));
if (!which || which === "matrix") await matrixBench(Number(process.env.VMRIG_BENCH_ROUNDS ?? 1));
if (!which || which === "relay") await relayBench(Number(process.env.VMRIG_BENCH_ROUNDS ?? 3));
if (!which || which === "qemu") await qemuBench(Number(process.env.VMRIG_BENCH_ROUNDS ?? 3));
// Not in the default set: it builds 7 kernels (~15 min on 2 cores).
if (which === "bisect") await bisectBench();
if (!which || which === "arm64") await arm64BootBench(Number(process.env.VMRIG_BENCH_ROUNDS ?? 3));
