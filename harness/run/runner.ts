// runScenario: kernels x workloads -> rows of cells. A fresh guest per kernel; a guest that
// crashed, hung or lost a daemon is thrown away and a fresh one runs the remaining workloads.
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { CellOutcome, CellResult, KernelRowResult, RunResult, Scenario, WorkloadSpec } from "../types.ts";
import { bootGuest, BootFailure, type Guest } from "../guest/boot.ts";
import { generateClientKey } from "../guest/ssh.ts";
import { expectationMet } from "../classify/expect.ts";
import { runCell, workloadShare } from "./cell.ts";
import { collectGuestFacts, collectSwiotlbEvidence } from "./guest-facts.ts";
import { kernelPageSize } from "../scenario/platform.ts";
import { serverMarks, serverEvidence, pageSizeLabel, withNotes } from "../classify/server-evidence.ts";
import { loadScaledTimeScale } from "./schedule/load.ts";
import { runRowsScheduled } from "./schedule/rows.ts";
import { bootWorthRetrying } from "./boot-retry.ts";
import type { PreparedKernel, RunEnv } from "./run-env.ts";

/** Pure: what a row's heading adds for a QEMU that is not the host's, and its evidence. */
export function rowQemu(k: Pick<PreparedKernel, "qemu">): { suffix: string; evidence: Record<string, unknown> } {
  if (!k.qemu || k.qemu.source === "host") return { suffix: "", evidence: {} };
  return { suffix: `; QEMU ${k.qemu.version}`, evidence: { qemu: { version: k.qemu.version, source: k.qemu.source } } };
}

export async function runScenario(s: Scenario, kernels: PreparedKernel[], env: RunEnv, result: RunResult): Promise<RunResult> {
  if (env.scheduler) return runRowsScheduled(s, kernels, { ...env, scheduler: env.scheduler }, result, runKernelRow);
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
    description: k.artifact.description + rowQemu(k).suffix,
    accel: (k.accel ?? env.accel).name,
    arch: k.artifact.arch,
    // What the row declares until the guest says what it really has ("64K?": not seen yet).
    ...(kernelPageSize(s, k.entry) ? { pageSize: `${kernelPageSize(s, k.entry)}?` } : {}),
    artifacts: {},
    cells: [],
    evidence: { kernel: k.artifact.identity, release: k.artifact.release, image: k.image.identity, ...rowQemu(k).evidence },
  };
  // Guests sharing the host's cores run slower: scale with the load so slow never reads as HANG.
  const accel = k.accel ?? env.accel;
  const scale = loadScaledTimeScale(accel.timeScale, env.load?.());
  if (scale !== accel.timeScale) row.evidence.timeScale = scale;
  const timeouts = {
    bootMs: s.timeouts.bootSeconds * 1000 * scale,
    stepMs: s.timeouts.stepSeconds * 1000 * scale,
    livenessMs: s.timeouts.livenessSeconds * 1000 * scale,
  };
  const pending = [...s.workloads];
  // A retried boot is said in the table (a footnote on the row's first cell), not only in results.json.
  let retryNote: string | undefined;
  const record = (w: WorkloadSpec, outcome: CellOutcome, evidence: Record<string, unknown>, durationMs: number, notes: string[] = []) => {
    if (retryNote) [notes, retryNote] = [[retryNote, ...notes], undefined];
    // Whatever a cell saw while vmrig was being interrupted is vmrig's doing, not the kernel's.
    if (env.signal.aborted) outcome = { kind: "not-run", reason: "run interrupted" };
    const expected = k.entry.expect[w.id] ?? s.expectDefault;
    const cell: CellResult = { kernel: label, workload: w.id, outcome, expected, met: expectationMet(outcome, expected), durationMs, evidence, ...(notes.length ? { notes } : {}) };
    row.cells.push(cell);
    env.progress.cell(label, w.id, outcome);
  };

  let bootRetried = false;
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
      row.artifacts[boot === 1 ? "qemuStderr" : `qemuStderr-boot${boot}`] = rel("qemu-stderr.log");
      for (const sh of s.shares) row.artifacts[`virtiofsd-${sh.tag}${boot === 1 ? "" : `-boot${boot}`}`] = rel(`virtiofsd-${sh.tag}.log`);
      try {
        guest = await bootGuest({
          arch: k.artifact.arch,
          accel,
          machine: { ...s.machine, arch: k.artifact.arch },
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
          qemuExtras: env.qemuExtras,
          ...(k.qemu ? { qemu: k.qemu } : {}),
        });
      } catch (e) {
        const f = e instanceof BootFailure ? e : new BootFailure("infra", (e as Error).message, "");
        if (boot === 1 && !bootRetried && !env.signal.aborted && bootWorthRetrying(f)) {
          // The failed boot's logs move aside; the retry is boot 1 again, with boot 1's artifact names.
          bootRetried = true;
          const aside = path.join(rowDir, "failed-boot");
          await mkdir(aside, { recursive: true });
          for (const name of await readdir(rowDir)) if (name !== "failed-boot") await rename(path.join(rowDir, name), path.join(aside, name)).catch(() => undefined);
          row.artifacts["console-failed-boot"] = path.relative(env.runDir, path.join(aside, "console.log"));
          row.evidence.bootRetry = { reason: f.reason, consoleTail: f.console.slice(-2000) };
          retryNote = `the first boot failed and was retried: ${f.reason}`;
          env.progress.info(`[${label}] the first boot failed with a clean console (${f.reason}); booting a fresh guest once more before calling it BOOT-FAIL`);
          boot--;
          continue;
        }
        const outcome: CellOutcome = f.kind === "infra" ? { kind: "infra", reason: f.reason } : { kind: "boot-fail", reason: f.reason };
        for (const w of pending.splice(0)) record(w, outcome, { console: f.console.slice(-4000) }, 0);
        break;
      }
      if (boot === 1) Object.assign(row, { bootMs: guest.bootMs, bootPhases: guest.bootPhases });
      env.progress.stage(label, `ssh up in ${(guest.bootMs / 1000).toFixed(1)} s`);

      const facts = await collectGuestFacts(guest, s, timeouts.stepMs, kernelPageSize(s, k.entry));
      if (boot === 1) Object.assign(row.evidence, facts.evidence);
      const seenPage = pageSizeLabel(facts.evidence.pageSize);
      if (boot === 1 && seenPage) row.pageSize = seenPage;
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
        const marks = await serverMarks(s.shares, bootDir, env.virtiofsdLogLevel);
        const cell = await runCell(guest, w, { hostDir: share?.hostDir, guestDir: tag ? `/mnt/${tag}` : undefined }, timeouts, (s.faults ?? []).filter((f) => f.during === w.id));
        // Hang evidence (stacks-<workload>.txt) and the like: files beside the console log.
        for (const [name, content] of Object.entries(cell.artifacts ?? {})) {
          await writeFile(path.join(bootDir, name), content);
          row.artifacts[name.replace(/\.txt$/, "") + (boot === 1 ? "" : `-boot${boot}`)] = rel(name);
        }
        // virtiofsd's side (its debug log): what it refused while this cell ran.
        const server = await serverEvidence(marks);
        record(w, withNotes(cell.outcome, server.notes), { ...cell.evidence, ...server.evidence }, cell.durationMs, server.notes);
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
