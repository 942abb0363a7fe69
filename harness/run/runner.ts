// runScenario: kernels x workloads -> rows of cells. A fresh guest per kernel; a guest that
// crashed, hung or lost a daemon is thrown away and a fresh one runs the remaining workloads.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type {
  CellOutcome,
  CellResult,
  GuestImage,
  KernelArtifact,
  KernelEntry,
  KernelRowResult,
  RunResult,
  Scenario,
  WorkloadSpec,
} from "../types.ts";
import type { Accelerator } from "../qemu/accel.ts";
import { bootGuest, BootFailure, type BootRequest, type Guest } from "../guest/boot.ts";
import { generateClientKey } from "../guest/ssh.ts";
import type { DaemonCommand } from "../virtiofs/daemon.ts";
import { expectationMet } from "../report/expect.ts";
import { runCell, workloadShare } from "./cell.ts";
import { collectGuestFacts, collectSwiotlbEvidence } from "./guest-facts.ts";
import type { Progress } from "./progress.ts";

export interface PreparedKernel {
  entry: KernelEntry;
  artifact: KernelArtifact;
  image: GuestImage;
}

export interface RunEnv {
  accel: Accelerator;
  virtiofsd: DaemonCommand;
  relay?: BootRequest["relay"];
  virtiofsdLogLevel?: string;
  runDir: string;
  progress: Progress;
  signal: AbortSignal;
  /** Called after every cell so an interrupted run keeps what it gathered. */
  onUpdate: (r: RunResult) => Promise<void>;
}

export async function runScenario(s: Scenario, kernels: PreparedKernel[], env: RunEnv, result: RunResult): Promise<RunResult> {
  for (const k of kernels) {
    if (env.signal.aborted) break;
    const row = await runKernelRow(s, k, env, result);
    result.rows.push(row);
    await env.onUpdate(result);
  }
  return result;
}

async function runKernelRow(s: Scenario, k: PreparedKernel, env: RunEnv, run: RunResult): Promise<KernelRowResult> {
  const label = k.entry.label;
  const rowDir = path.join(env.runDir, label);
  const row: KernelRowResult = {
    label,
    description: k.artifact.description,
    accel: env.accel.name,
    artifacts: {},
    cells: [],
    evidence: { kernel: k.artifact.identity, release: k.artifact.release, image: k.image.identity },
  };
  const scale = env.accel.timeScale;
  const timeouts = {
    bootMs: s.timeouts.bootSeconds * 1000 * scale,
    stepMs: s.timeouts.stepSeconds * 1000 * scale,
    livenessMs: s.timeouts.livenessSeconds * 1000 * scale,
  };
  const pending = [...s.workloads];
  const record = (w: WorkloadSpec, outcome: CellOutcome, evidence: Record<string, unknown>, durationMs: number) => {
    // Whatever a cell saw while vmrig was being interrupted is vmrig's doing, not the kernel's.
    if (env.signal.aborted) outcome = { kind: "not-run", reason: "run interrupted" };
    const expected = k.entry.expect[w.id] ?? s.expectDefault;
    const cell: CellResult = { kernel: label, workload: w.id, outcome, expected, met: expectationMet(outcome, expected), durationMs, evidence };
    row.cells.push(cell);
    env.progress.cell(label, w.id, outcome);
  };

  for (let boot = 1; pending.length > 0; boot++) {
    if (env.signal.aborted) break;
    const bootDir = boot === 1 ? rowDir : path.join(rowDir, `boot-${boot}`);
    const rel = (f: string) => path.relative(env.runDir, path.join(bootDir, f));
    const work = await mkdtemp(path.join(os.tmpdir(), `vmrig-${label}-`));
    let guest: Guest | undefined;
    try {
      const shares = await Promise.all(
        s.shares.map(async (spec) => {
          const hostDir = path.join(work, "shares", spec.tag);
          await mkdir(hostDir, { recursive: true });
          return { spec, hostDir };
        }),
      );
      env.progress.stage(label, boot === 1 ? "booting" : `booting fresh guest #${boot}`);
      row.artifacts[boot === 1 ? "console" : `console-boot${boot}`] = rel("console.log");
      row.artifacts[boot === 1 ? "qemuCmdline" : `qemuCmdline-boot${boot}`] = rel("qemu-cmdline.txt");
      for (const sh of s.shares) row.artifacts[`virtiofsd-${sh.tag}${boot === 1 ? "" : `-boot${boot}`}`] = rel(`virtiofsd-${sh.tag}.log`);
      try {
        guest = await bootGuest({
          arch: s.machine.arch,
          accel: env.accel,
          machine: s.machine,
          kernel: k.artifact,
          image: k.image,
          cmdline: [...s.machine.cmdline, ...k.entry.cmdline],
          shares,
          virtiofsd: env.virtiofsd,
          relay: env.relay,
          virtiofsdLogLevel: env.virtiofsdLogLevel,
          clientKey: generateClientKey(),
          artifactsDir: bootDir,
          socketsDir: path.join(work, "sock"),
          bootTimeoutMs: timeouts.bootMs,
          signal: env.signal,
        });
      } catch (e) {
        const f = e instanceof BootFailure ? e : new BootFailure("infra", (e as Error).message, "");
        const outcome: CellOutcome = f.kind === "infra" ? { kind: "infra", reason: f.reason } : { kind: "boot-fail", reason: f.reason };
        for (const w of pending.splice(0)) record(w, outcome, { console: f.console.slice(-4000) }, 0);
        break;
      }
      if (boot === 1) row.bootMs = guest.bootMs;
      env.progress.stage(label, `ssh up in ${(guest.bootMs / 1000).toFixed(1)} s`);

      const facts = await collectGuestFacts(guest, s, timeouts.stepMs);
      if (boot === 1) Object.assign(row.evidence, facts.evidence);
      if (facts.problem) {
        for (const w of pending.splice(0)) record(w, { kind: "infra", reason: facts.problem }, facts.evidence, 0);
        break;
      }

      while (pending.length > 0 && !env.signal.aborted) {
        const w = pending.shift()!;
        const tag = workloadShare(w);
        const share = shares.find((x) => x.spec.tag === tag);
        const unmounted = tag ? facts.unmounted[tag] : undefined;
        if (unmounted) {
          record(w, { kind: "infra", reason: unmounted }, {}, 0);
          continue;
        }
        env.progress.stage(label, `${w.id} (${s.workloads.indexOf(w) + 1}/${s.workloads.length})`);
        const cell = await runCell(guest, w, { hostDir: share?.hostDir, guestDir: tag ? `/mnt/${tag}` : undefined }, timeouts);
        record(w, cell.outcome, cell.evidence, cell.durationMs);
        await env.onUpdate({ ...run, rows: [...run.rows, row] });
        if (cell.guestSpoiled) break;
      }
      if (!guest.deathReason()) {
        Object.assign(row.evidence, boot === 1 ? await collectSwiotlbEvidence(guest, timeouts.livenessMs) : {});
        const dmesg = await guest.exec("dmesg", 10_000 * scale);
        if (dmesg.kind === "exited") {
          await writeFile(path.join(bootDir, "dmesg.txt"), dmesg.stdout);
          row.artifacts[boot === 1 ? "dmesg" : `dmesg-boot${boot}`] = rel("dmesg.txt");
        }
      }
    } finally {
      const exit = await guest?.shutdown();
      if (exit && boot === 1) row.evidence.qemuExit = { code: exit.code, signal: exit.signal, guestPanicked: exit.guestPanicked };
      await rm(work, { recursive: true, force: true });
    }
  }
  for (const w of pending) record(w, { kind: "not-run", reason: "run interrupted" }, {}, 0);
  env.progress.done(label, row);
  return row;
}
