// Run one workload in a booted guest and turn every witness (the probe's report, the step
// deadline, the console, QEMU's exit, the daemons' fate, a liveness probe) into one cell.
import type { CellOutcome, FaultStep, WorkloadSpec } from "../types.ts";
import type { Guest } from "../guest/boot.ts";
import type { ExecResult } from "../guest/ssh.ts";
import { workloadKind, workloadShare } from "../workloads/registry.ts";
import type { WorkloadContext } from "../workloads/kind.ts";
import { PROBE, parseProbeOutput, shellQuote } from "../workloads/probe.ts";
import { fatalReportComplete, findingsForEvidence, firstFatalFinding } from "../classify/console-witness.ts";
import { FaultPlan } from "./faults.ts";
import { blockedTaskStacks } from "../classify/hang-evidence.ts";
import { consoleJob, observeConsoleJob, type ConsoleJob } from "./console-job.ts";
import { consoleRun } from "../guest/console-shell.ts";

export interface CellRun {
  outcome: CellOutcome;
  evidence: Record<string, unknown>;
  /** The guest can no longer be trusted for further workloads: boot a fresh one. */
  guestSpoiled: boolean;
  durationMs: number;
  /** Files for the row's artifacts, name -> content (e.g. stacks-<workload>.txt after a hang). */
  artifacts?: Record<string, string>;
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
  /** The scenario's planned faults timed against this workload (harness/run/faults.ts). */
  faults: FaultStep[] = [],
): Promise<CellRun> {
  const plan = faults.length ? new FaultPlan(guest, faults) : undefined;
  const run = await runCellSteps(guest, w, ctx, t, plan);
  if (plan) await concludeFaults(guest, w, plan, run);
  return run;
}

/** The faults' log goes into the evidence; a fault that never fired means the scenario did not test what it says. */
async function concludeFaults(guest: Guest, w: WorkloadSpec, plan: FaultPlan, run: CellRun): Promise<void> {
  run.evidence.faults = await plan.finish();
  const unfired = plan.unfired();
  if (unfired.length && run.outcome.kind !== "crash" && run.outcome.kind !== "hang") {
    const u = unfired[0]!;
    run.outcome = {
      kind: "infra",
      reason: `planned ${u.action} (${u.where}, at ${u.plannedMs / 1000} s) did not fire: ${w.id} ended after ${(run.durationMs / 1000).toFixed(1)} s`,
    };
  }
  // No SSH after a cut; no backend after a kill; a crashed kernel: stop the VM now, cleanly.
  if (plan.cutNetworkDone || plan.killedDaemon || plan.crashed) {
    run.guestSpoiled = true;
    const exit = await guest.shutdown();
    run.evidence.vmStopped = exit
      ? { code: exit.code, signal: exit.signal, guestPanicked: exit.guestPanicked }
      : "already stopped";
    if (run.outcome.kind === "hang" && plan.killedDaemon)
      run.outcome = { ...run.outcome, what: `${run.outcome.what}; VM stopped` };
  }
}

async function runCellSteps(
  guest: Guest,
  w: WorkloadSpec,
  ctx: WorkloadContext,
  t: CellTimeouts,
  plan: FaultPlan | undefined,
): Promise<CellRun> {
  const kind = workloadKind(w);
  const started = Date.now();
  const done = (outcome: CellOutcome, evidence: Record<string, unknown>, guestSpoiled: boolean): CellRun => ({
    outcome,
    evidence: {
      ...evidence,
      kernelMessages: kernelMessagesSince(guest, consoleStart),
      consoleFindings: findingsForEvidence(...witness()),
    },
    guestSpoiled,
    durationMs: Date.now() - started,
  });

  let facts: Record<string, unknown>;
  try {
    facts = (await kind.prepareHost?.(w, ctx)) ?? {};
  } catch (e) {
    return {
      outcome: { kind: "infra", reason: `preparing ${w.id} on the host failed: ${(e as Error).message}` },
      evidence: {},
      guestSpoiled: false,
      durationMs: 0,
    };
  }
  await guest.catchUpConsole();
  const consoleStart = guest.consoleLength();
  // The console since this step began, with one character before it so the classifier can
  // tell whether the step began mid-line (that line belongs to what came before).
  const witness = (): [string, number] => [guest.consoleSince(Math.max(0, consoleStart - 1)), consoleStart > 0 ? 1 : 0];
  const plain = kind.guestCommand(w, ctx);
  // With a network cut planned, the command's result must outlive the SSH session: it runs as
  // a job whose output stays in the guest, read back through the console.
  const job: ConsoleJob | undefined = plan?.cutsNetwork ? consoleJob(plain) : undefined;
  const command = job?.command ?? plain;
  plan?.start();
  let exec = await execSupervised(guest, command, t.stepMs, plan);
  if (exec.kind === "lost" && plan?.cutNetworkStarted) {
    // Removing the forward can drop the SSH session before the cut has finished: that is the cut.
    await Promise.race([plan.networkCut, new Promise((r) => setTimeout(r, 10_000))]);
    if (plan.cutNetworkDone) exec = { kind: "network-cut" };
  }
  const evidence: Record<string, unknown> = { command: plain, exec: summarizeExec(exec) };
  if (exec.kind === "network-cut") {
    exec = await observeConsoleJob(guest, job!, Math.max(1000, t.stepMs - (Date.now() - started)));
    evidence.observedVia = "console";
    evidence.exec = summarizeExec(exec);
  }

  // A fatal kernel message during the step outranks whatever the command reported.
  const crash = () => firstFatalFinding(...witness());
  // Its outcome waits (briefly) for the whole report, so the signature has its call trace.
  const crashOutcome = async (): Promise<CellOutcome | undefined> => {
    await guest.catchUpConsole();
    if (!crash()) return undefined;
    await reportPrinted(guest, witness);
    const f = crash()!;
    return { kind: "crash", title: f.title, excerpt: f.excerpt, signature: f.signature };
  };

  if (exec.kind === "daemon-died") {
    await guest.shutdown();
    return done({ kind: "infra", reason: `${exec.reason} during ${w.id}; VM stopped` }, evidence, true);
  }
  if (exec.kind === "lost") {
    await settle(guest);
    const c = await crashOutcome();
    if (c) return done(c, evidence, true);
    const dead = guest.deathReason();
    if (guest.qemuExit?.guestPanicked) {
      const excerpt = tail(guest.consoleSince(consoleStart));
      return done({ kind: "crash", title: "Kernel panic (pvpanic)", excerpt }, evidence, true);
    }
    return done({ kind: "infra", reason: `lost the guest during ${w.id}: ${dead ?? exec.error}` }, evidence, true);
  }
  if (exec.kind === "timeout") {
    const c = await crashOutcome();
    if (c) return done(c, evidence, true);
    const alive = await liveness(guest, ctx, t.livenessMs, plan?.cutNetworkDone);
    evidence.liveness = alive;
    // The evidence a hang needs: which tasks are blocked, and where (sysrq w).
    const stacks = await blockedTaskStacks(guest, t.livenessMs);
    evidence.blockedTasks = { via: stacks.via, tasks: stacks.tasks };
    const planned = plan?.describeFired();
    const what = `${w.id} did not finish in ${Math.round(t.stepMs / 1000)} s${planned ? ` after planned ${planned}` : ""}`;
    const run = done(
      { kind: "hang", what: alive.ok ? what : `${what}; the mount no longer answers (wedged)`, wedged: !alive.ok },
      evidence,
      true,
    );
    return { ...run, artifacts: { [`stacks-${w.id}.txt`]: stacks.text + "\n" } };
  }

  const j = await kind.judge(w, exec, facts, ctx);
  Object.assign(evidence, j.evidence);
  const c = await crashOutcome();
  if (c) return done(c, evidence, true);
  if (j.kind === "outcome" && j.checkGuest && j.outcome.kind === "pass") {
    const healthy = await guestStillHealthy(guest, j.outcome, witness, evidence, t.livenessMs);
    // The kernel may report only after the program returned (a mark freed by a worker).
    const late = await crashOutcome();
    if (late) return done(late, evidence, true);
    return done(healthy, evidence, healthy.kind !== "pass");
  }
  if (j.kind === "outcome") return done(j.outcome, evidence, false);
  const alive = await liveness(guest, ctx, t.livenessMs);
  evidence.liveness = alive;
  return done(
    { kind: "errno", errno: j.errno, mountHealthy: alive.ok, detail: j.detail, ...(j.at ? { at: j.at } : {}) },
    evidence,
    !alive.ok,
  );
}

/**
 * A PASS that also needs a healthy guest (a refused FUSE lie): the guest must still answer a
 * liveness probe, and the kernel must not have reported anything (WARNING, hung task) meanwhile.
 */
async function guestStillHealthy(
  guest: Guest,
  pass: CellOutcome,
  witness: () => [string, number],
  evidence: Record<string, unknown>,
  livenessMs: number,
): Promise<CellOutcome> {
  const alive = await liveness(guest, {}, livenessMs);
  evidence.liveness = alive;
  if (!alive.ok) return { kind: "fail", detail: `refused, but the guest is unhealthy afterwards: ${alive.detail}` };
  await guest.catchUpConsole();
  const reported = findingsForEvidence(...witness());
  if (reported.length) return { kind: "fail", detail: `refused, but the kernel reported: ${reported[0]!.title}` };
  return pass;
}

type SupervisedExec = ExecResult | { kind: "daemon-died"; reason: string } | { kind: "network-cut" };

/**
 * Run the command, but give up at once if a virtio-fs daemon dies meanwhile (unless the fault
 * plan killed it), or when a planned network cut takes SSH away.
 */
async function execSupervised(
  guest: Guest,
  command: string,
  deadlineMs: number,
  plan?: FaultPlan,
): Promise<SupervisedExec> {
  let stop = false;
  const cut = plan?.networkCut.then((): SupervisedExec => ({ kind: "network-cut" }));
  const watch = (async (): Promise<SupervisedExec> => {
    while (!stop) {
      const r = guest.deathReason();
      if (r && !r.startsWith("QEMU") && !r.startsWith("guest") && !plan?.plannedDeath(r))
        return { kind: "daemon-died", reason: r };
      await new Promise((res) => setTimeout(res, 100));
    }
    return { kind: "lost", error: "stopped", stdout: "", stderr: "", ms: 0 };
  })();
  try {
    return await Promise.race([guest.exec(command, deadlineMs), watch, ...(cut ? [cut] : [])]);
  } finally {
    stop = true;
  }
}

/** After the connection drops, give QEMU a moment to exit so its status can be read. */
/**
 * Waits until the fatal report on the console has finished printing (its end marker, or QEMU
 * gone, or no new console output for 2 s), for at most 15 s.
 */
async function reportPrinted(guest: Guest, witness: () => [string, number]): Promise<void> {
  const started = Date.now();
  let length = guest.consoleLength();
  let quietSince = Date.now();
  while (Date.now() - started < 15_000 && !guest.qemuExit && !fatalReportComplete(...witness())) {
    await new Promise((r) => setTimeout(r, 200));
    const now = guest.consoleLength();
    if (now !== length) [length, quietSince] = [now, Date.now()];
    else if (Date.now() - quietSince >= 2000) return;
  }
}

async function settle(guest: Guest): Promise<void> {
  for (let i = 0; i < 20 && !guest.qemuExit; i++) await new Promise((r) => setTimeout(r, 100));
}

/** Does the share still answer? Tells "errno, mount healthy" from "the mount is wedged". */
export async function liveness(
  guest: Guest,
  ctx: WorkloadContext,
  deadlineMs: number,
  viaConsole = false,
): Promise<{ ok: boolean; detail: string }> {
  const target = ctx.guestDir ?? "/";
  const probe = `${PROBE} alive ${shellQuote(target)}`;
  const r = viaConsole
    ? await consoleRun(guest, probe, deadlineMs).then((c): ExecResult =>
        c.kind === "exited"
          ? { ...c, stderr: "" }
          : c.kind === "timeout"
            ? { ...c, stdout: "", stderr: "" }
            : { ...c, stdout: "", stderr: "" },
      )
    : await guest.exec(probe, deadlineMs);
  if (r.kind === "exited") {
    const p = parseProbeOutput(r);
    if (p.kind === "report" && p.report.ok) return { ok: true, detail: `${target} answered in ${r.ms} ms` };
    return { ok: false, detail: `${target}: ${p.kind === "report" ? p.report.errno : `exit ${r.code}`}` };
  }
  return {
    ok: false,
    detail:
      r.kind === "timeout"
        ? `${target} did not answer within ${Math.round(deadlineMs / 1000)} s`
        : `guest lost: ${r.error}`,
  };
}

function kernelMessagesSince(guest: Guest, offset: number): string {
  return tail(guest.consoleSince(offset), 8000);
}

function tail(s: string, max = 4000): string {
  return s.length > max ? s.slice(-max) : s;
}

function summarizeExec(e: SupervisedExec): Record<string, unknown> {
  if (e.kind === "daemon-died" || e.kind === "network-cut") return e;
  return {
    kind: e.kind,
    ms: e.ms,
    code: e.kind === "exited" ? e.code : undefined,
    stdout: tail(e.stdout, 2000),
    stderr: tail(e.stderr, 2000),
  };
}

export { workloadShare };
