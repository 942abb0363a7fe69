// Run one workload in a booted guest and gather every witness (the probe's report, the step
// deadline, the console, QEMU's exit, the daemons' fate, a liveness probe) for the cell's rules
// (harness/classify/cell-outcome.ts), which turn them into one cell.
import type { CellOutcome, FaultStep, WorkloadSpec } from "../types.ts";
import type { Guest } from "../guest/boot.ts";
import type { ExecResult } from "../guest/ssh.ts";
import { workloadKind, workloadShare } from "../workloads/registry.ts";
import type { Judgement, TestCaseCell, WorkloadContext } from "../workloads/kind.ts";
import { PROBE, shellQuote } from "../workloads/probe.ts";
import {
  fatalReportComplete,
  findingsForEvidence,
  firstFatalFinding,
  type FatalFinding,
} from "../classify/console-witness.ts";
import {
  daemonDiedVerdict,
  faultsStopTheVm,
  hostPreparationFailed,
  judgedVerdict,
  judgementNeedsLiveness,
  livenessFromProbe,
  lostGuestVerdict,
  timedOutVerdict,
  unplannedDaemonDeath,
  verdictAfterFaults,
  type CellVerdict,
  type FaultsOutcome,
  type Liveness,
} from "../classify/cell-outcome.ts";
import { FaultPlan } from "./faults.ts";
import { blockedTaskStacks } from "../classify/hang-evidence.ts";
import { consoleJob, observeConsoleJob } from "./console-job.ts";
import { consoleRun } from "../guest/console-shell.ts";

export interface CellRun {
  outcome: CellOutcome;
  evidence: Record<string, unknown>;
  /** The guest can no longer be trusted for further workloads: boot a fresh one. */
  guestSpoiled: boolean;
  durationMs: number;
  /** Files for the row's artifacts, name -> content (e.g. stacks-<workload>.txt after a hang). */
  artifacts?: Record<string, string>;
  /** The test cases the command reported, when its own cell is the judgement's (not a crash, hang or fault). */
  testCases?: TestCaseCell[];
  /** The guest was claimed for a debugger (`--keep-failed`): its processes still run. */
  kept?: boolean;
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
  /** Claims the guest for a debugger when its outcome is one `--keep-failed` keeps. */
  keep: (outcome: CellOutcome) => boolean = () => false,
): Promise<CellRun> {
  const plan = faults.length ? new FaultPlan(guest, faults) : undefined;
  const run = await runCellSteps(guest, w, ctx, t, plan);
  if (plan) await concludeFaults(guest, w, plan, run, keep);
  if (run.outcome.kind !== "pass" && run.outcome.kind !== "fail") delete run.testCases;
  if (!run.kept && keep(run.outcome)) run.kept = true;
  return run;
}

/** The faults' log goes into the evidence, their fate into the verdict; a VM they spoiled is stopped now. */
async function concludeFaults(
  guest: Guest,
  w: WorkloadSpec,
  plan: FaultPlan,
  run: CellRun,
  keep: (outcome: CellOutcome) => boolean,
): Promise<void> {
  run.evidence.faults = await plan.finish();
  const faults: FaultsOutcome = {
    unfired: plan.unfired(),
    networkCut: plan.cutNetworkDone,
    killedDaemon: plan.killedDaemon,
    crashed: plan.crashed,
  };
  const steps = { outcome: run.outcome, guestSpoiled: run.guestSpoiled };
  Object.assign(run, verdictAfterFaults(steps, faults, w.id, run.durationMs));
  if (!faultsStopTheVm(faults)) return;
  if (keep(run.outcome)) {
    Object.assign(run, verdictAfterFaults(steps, { ...faults, vmKept: true }, w.id, run.durationMs), { kept: true });
    run.evidence.vmStopped = "kept for a debugger (--keep-failed)";
    return;
  }
  const exit = await guest.shutdown();
  run.evidence.vmStopped = exit
    ? { code: exit.code, signal: exit.signal, guestPanicked: exit.guestPanicked }
    : "already stopped";
}

/** One step under way: what gathering the evidence after the command needs. */
interface Step {
  guest: Guest;
  w: WorkloadSpec;
  ctx: WorkloadContext;
  t: CellTimeouts;
  plan: FaultPlan | undefined;
  started: number;
  /** The console's length when the step began. */
  consoleStart: number;
  evidence: Record<string, unknown>;
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
  let facts: Record<string, unknown>;
  try {
    facts = (await kind.prepareHost?.(w, ctx)) ?? {};
  } catch (e) {
    return { ...hostPreparationFailed(w.id, (e as Error).message), evidence: {}, durationMs: 0 };
  }
  await guest.catchUpConsole();
  const consoleStart = guest.consoleLength();
  const plain = kind.guestCommand(w, ctx);
  const s: Step = { guest, w, ctx, t, plan, started, consoleStart, evidence: { command: plain } };
  const exec = await runCommand(s, plain);
  if (exec.kind === "daemon-died") {
    await guest.shutdown();
    return cellRun(s, daemonDiedVerdict(w.id, exec.reason));
  }
  if (exec.kind === "lost") return afterLostGuest(s, exec.error);
  if (exec.kind === "timeout") return afterTimeout(s);
  const j = await kind.judge(w, exec, facts, ctx);
  Object.assign(s.evidence, j.evidence);
  const run = await afterJudgement(s, j);
  return j.kind === "outcome" && j.testCases ? { ...run, testCases: j.testCases } : run;
}

/** The cell from a verdict, with the kernel's messages and findings since the step began. */
function cellRun(s: Step, v: CellVerdict): CellRun {
  return {
    outcome: v.outcome,
    evidence: {
      ...s.evidence,
      kernelMessages: kernelMessagesSince(s.guest, s.consoleStart),
      consoleFindings: findingsForEvidence(...witness(s)),
    },
    guestSpoiled: v.guestSpoiled,
    durationMs: Date.now() - s.started,
  };
}

/**
 * The console since the step began, with one character before it so the classifier can tell
 * whether the step began mid-line (that line belongs to what came before).
 */
function witness(s: Step): [string, number] {
  return [s.guest.consoleSince(Math.max(0, s.consoleStart - 1)), s.consoleStart > 0 ? 1 : 0];
}

/**
 * The first fatal kernel report since the step began. It waits (briefly) for the whole report,
 * so the signature has its call trace.
 */
async function crashSeen(s: Step): Promise<FatalFinding | undefined> {
  await s.guest.catchUpConsole();
  if (!firstFatalFinding(...witness(s))) return undefined;
  await reportPrinted(s.guest, () => witness(s));
  return firstFatalFinding(...witness(s));
}

/** Runs the command with the fault plan; after a planned network cut, reads its result through the console. */
async function runCommand(s: Step, plain: string): Promise<Exclude<SupervisedExec, { kind: "network-cut" }>> {
  const { guest, t, plan } = s;
  // With a network cut planned, the command's result must outlive the SSH session: it runs as
  // a job whose output stays in the guest, read back through the console.
  const job = plan?.cutsNetwork ? consoleJob(plain) : undefined;
  plan?.start();
  let exec = await execSupervised(guest, job?.command ?? plain, t.stepMs, plan);
  if (exec.kind === "lost" && plan?.cutNetworkStarted) {
    // Removing the forward can drop the SSH session before the cut has finished: that is the cut.
    await Promise.race([plan.networkCut, new Promise((r) => setTimeout(r, 10_000))]);
    if (plan.cutNetworkDone) exec = { kind: "network-cut" };
  }
  s.evidence.exec = summarizeExec(exec);
  if (exec.kind !== "network-cut") return exec;
  const observed = await observeConsoleJob(guest, job!, Math.max(1000, t.stepMs - (Date.now() - s.started)));
  s.evidence.observedVia = "console";
  s.evidence.exec = summarizeExec(observed);
  return observed;
}

async function afterLostGuest(s: Step, error: string): Promise<CellRun> {
  await settle(s.guest);
  const crash = await crashSeen(s);
  return cellRun(
    s,
    lostGuestVerdict({
      workloadId: s.w.id,
      error,
      crash,
      guestPanicked: s.guest.panicked(),
      deathReason: s.guest.deathReason(),
      consoleSinceStart: s.guest.consoleSince(s.consoleStart),
    }),
  );
}

async function afterTimeout(s: Step): Promise<CellRun> {
  const { guest, w, ctx, t, plan } = s;
  const crash = await crashSeen(s);
  if (crash) return cellRun(s, timedOutVerdict({ workloadId: w.id, stepMs: t.stepMs, crash }));
  const alive = await liveness(guest, ctx, t.livenessMs, plan?.cutNetworkDone);
  s.evidence.liveness = alive;
  // The evidence a hang needs: which tasks are blocked, and where (sysrq w).
  const stacks = await blockedTaskStacks(guest, t.livenessMs);
  s.evidence.blockedTasks = { via: stacks.via, tasks: stacks.tasks };
  const firedFaults = plan?.describeFired();
  const run = cellRun(s, timedOutVerdict({ workloadId: w.id, stepMs: t.stepMs, firedFaults, liveness: alive }));
  return { ...run, artifacts: { [`stacks-${w.id}.txt`]: stacks.text + "\n" } };
}

async function afterJudgement(s: Step, j: Judgement): Promise<CellRun> {
  const crash = await crashSeen(s);
  if (crash || !judgementNeedsLiveness(j)) return cellRun(s, judgedVerdict({ judgement: j, crash }));
  if (j.kind === "errno") {
    const alive = await liveness(s.guest, s.ctx, s.t.livenessMs);
    s.evidence.liveness = alive;
    return cellRun(s, judgedVerdict({ judgement: j, liveness: alive }));
  }
  // A PASS that also needs a healthy guest (a refused FUSE lie): the guest must answer, and
  // the kernel must not have reported anything (WARNING, hung task) meanwhile.
  const alive = await liveness(s.guest, {}, s.t.livenessMs);
  s.evidence.liveness = alive;
  let reported: ReturnType<typeof findingsForEvidence> = [];
  if (alive.ok) {
    await s.guest.catchUpConsole();
    reported = findingsForEvidence(...witness(s));
  }
  // The kernel may report only after the program returned (a mark freed by a worker).
  const late = await crashSeen(s);
  return cellRun(s, judgedVerdict({ judgement: j, liveness: alive, reported, crash: late }));
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
      // A guest paused on its panic (--keep-failed) never drops SSH: the panic ends the step.
      if (guest.panicked()) return { kind: "lost", error: "the guest kernel panicked", stdout: "", stderr: "", ms: 0 };
      const r = unplannedDaemonDeath(guest.deathReason(), (reason) => plan?.plannedDeath(reason) ?? false);
      if (r) return { kind: "daemon-died", reason: r };
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

/** After the connection drops, give QEMU a moment to exit so its status can be read. */
async function settle(guest: Guest): Promise<void> {
  for (let i = 0; i < 20 && !guest.qemuExit && !guest.panicked(); i++) await new Promise((r) => setTimeout(r, 100));
}

/** Does the share still answer? Tells "errno, mount healthy" from "the mount is wedged". */
export async function liveness(
  guest: Guest,
  ctx: WorkloadContext,
  deadlineMs: number,
  viaConsole = false,
): Promise<Liveness> {
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
  return livenessFromProbe(r, target, deadlineMs);
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
