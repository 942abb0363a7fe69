// Run one workload in a booted guest and turn every witness (the probe's report, the step
// deadline, the console, QEMU's exit, the daemons' fate, a liveness probe) into one cell.
import type { CellOutcome, WorkloadSpec } from "../types.ts";
import type { Guest } from "../guest/boot.ts";
import type { ExecResult } from "../guest/ssh.ts";
import { workloadKind, workloadShare, type WorkloadContext } from "../workloads/kinds.ts";
import { PROBE, parseProbeOutput, shellQuote } from "../workloads/probe.ts";
import { findingsForEvidence, firstFatalFinding } from "./console-witness.ts";

export interface CellRun {
  outcome: CellOutcome;
  evidence: Record<string, unknown>;
  /** The guest can no longer be trusted for further workloads: boot a fresh one. */
  guestSpoiled: boolean;
  durationMs: number;
}

export interface CellTimeouts {
  stepMs: number;
  livenessMs: number;
}

export async function runCell(
  guest: Guest,
  w: WorkloadSpec,
  ctx: WorkloadContext,
  t: CellTimeouts,
): Promise<CellRun> {
  const kind = workloadKind(w);
  const started = Date.now();
  const done = (outcome: CellOutcome, evidence: Record<string, unknown>, guestSpoiled: boolean): CellRun => ({
    outcome,
    evidence: { ...evidence, kernelMessages: kernelMessagesSince(guest, consoleStart), consoleFindings: findingsForEvidence(guest.consoleText(), consoleStart) },
    guestSpoiled,
    durationMs: Date.now() - started,
  });

  let facts: Record<string, unknown>;
  try {
    facts = await kind.prepare(w, ctx);
  } catch (e) {
    return { outcome: { kind: "infra", reason: `preparing ${w.id} on the host failed: ${(e as Error).message}` }, evidence: {}, guestSpoiled: false, durationMs: 0 };
  }
  const consoleStart = guest.consoleText().length;
  const command = kind.command(w, ctx);
  const exec = await execSupervised(guest, command, t.stepMs);
  const evidence: Record<string, unknown> = { command, exec: summarizeExec(exec) };

  // A fatal kernel message during the step outranks whatever the command reported.
  const crash = () => firstFatalFinding(guest.consoleText(), consoleStart);

  if (exec.kind === "daemon-died") {
    await guest.shutdown();
    return done({ kind: "infra", reason: `${exec.reason} during ${w.id}; VM stopped` }, evidence, true);
  }
  if (exec.kind === "lost") {
    await settle(guest);
    const f = crash();
    if (f) return done({ kind: "crash", title: f.title, excerpt: f.excerpt, signature: f.signature }, evidence, true);
    const dead = guest.deathReason();
    if (guest.qemuExit?.guestPanicked) return done({ kind: "crash", title: "Kernel panic (pvpanic)", excerpt: tail(guest.consoleText().slice(consoleStart)) }, evidence, true);
    return done({ kind: "infra", reason: `lost the guest during ${w.id}: ${dead ?? exec.error}` }, evidence, true);
  }
  if (exec.kind === "timeout") {
    const f = crash();
    if (f) return done({ kind: "crash", title: f.title, excerpt: f.excerpt, signature: f.signature }, evidence, true);
    const alive = await liveness(guest, ctx, t.livenessMs);
    evidence.liveness = alive;
    const what = `${w.id} did not finish in ${Math.round(t.stepMs / 1000)} s`;
    return done({ kind: "hang", what: alive.ok ? what : `${what}; the mount no longer answers (wedged)`, wedged: !alive.ok }, evidence, true);
  }

  const j = await kind.judge(w as never, exec, facts, ctx);
  Object.assign(evidence, j.evidence);
  const f = crash();
  if (f) return done({ kind: "crash", title: f.title, excerpt: f.excerpt, signature: f.signature }, evidence, true);
  if (j.kind === "outcome") return done(j.outcome, evidence, false);
  const alive = await liveness(guest, ctx, t.livenessMs);
  evidence.liveness = alive;
  return done(
    { kind: "errno", errno: j.errno, mountHealthy: alive.ok, detail: j.detail, ...(j.at ? { at: j.at } : {}) },
    evidence,
    !alive.ok,
  );
}

type SupervisedExec = ExecResult | { kind: "daemon-died"; reason: string };

/** Run the command, but give up at once if a virtio-fs daemon dies meanwhile. */
async function execSupervised(guest: Guest, command: string, deadlineMs: number): Promise<SupervisedExec> {
  let stop = false;
  const watch = (async (): Promise<SupervisedExec> => {
    while (!stop) {
      const r = guest.deathReason();
      if (r && !r.startsWith("QEMU") && !r.startsWith("guest")) return { kind: "daemon-died", reason: r };
      await new Promise((res) => setTimeout(res, 100));
    }
    return { kind: "lost", error: "stopped", stdout: "", stderr: "", ms: 0 };
  })();
  try {
    return await Promise.race([guest.exec(command, deadlineMs), watch]);
  } finally {
    stop = true;
  }
}

/** After the connection drops, give QEMU a moment to exit so its status can be read. */
async function settle(guest: Guest): Promise<void> {
  for (let i = 0; i < 20 && !guest.qemuExit; i++) await new Promise((r) => setTimeout(r, 100));
}

/** Does the share still answer? Tells "errno, mount healthy" from "the mount is wedged". */
export async function liveness(guest: Guest, ctx: WorkloadContext, deadlineMs: number): Promise<{ ok: boolean; detail: string }> {
  const target = ctx.guestDir ?? "/";
  const r = await guest.exec(`${PROBE} alive ${shellQuote(target)}`, deadlineMs);
  if (r.kind === "exited") {
    const p = parseProbeOutput(r);
    if (p.kind === "report" && p.report.ok) return { ok: true, detail: `${target} answered in ${r.ms} ms` };
    return { ok: false, detail: `${target}: ${p.kind === "report" ? p.report.errno : `exit ${r.code}`}` };
  }
  return { ok: false, detail: r.kind === "timeout" ? `${target} did not answer within ${Math.round(deadlineMs / 1000)} s` : `guest lost: ${r.error}` };
}

function kernelMessagesSince(guest: Guest, offset: number): string {
  return tail(guest.consoleText().slice(offset), 8000);
}

function tail(s: string, max = 4000): string {
  return s.length > max ? s.slice(-max) : s;
}

function summarizeExec(e: SupervisedExec): Record<string, unknown> {
  if (e.kind === "daemon-died") return e;
  return { kind: e.kind, ms: e.ms, code: e.kind === "exited" ? e.code : undefined, stdout: tail(e.stdout, 2000), stderr: tail(e.stderr, 2000) };
}

export { workloadShare };
