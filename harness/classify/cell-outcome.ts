// The rules that turn what a workload step left behind (the command's result or its judgement,
// a fatal report on the console, a liveness probe, a daemon's death, the planned faults) into
// the cell's outcome, and whether the guest can still be trusted. Pure: harness/run/cell.ts
// gathers the evidence (and only what a rule still needs), these rules decide.
import type { CellOutcome, FaultStep } from "../types.ts";
import type { ExecResult } from "../guest/ssh.ts";
import type { Judgement } from "../workloads/kind.ts";
import { parseProbeOutput } from "../workloads/probe.ts";
import type { FatalFinding } from "./console-witness.ts";

export interface CellVerdict {
  outcome: CellOutcome;
  /** The guest can no longer be trusted for further workloads: boot a fresh one. */
  guestSpoiled: boolean;
}

/** Does the share (or the guest's root) still answer? Tells "errno, mount healthy" from a wedged mount. */
export interface Liveness {
  ok: boolean;
  detail: string;
}

/** How much of the console a pvpanic crash keeps as its excerpt. */
const PANIC_EXCERPT_CHARS = 4000;

/** A fatal kernel report during the step: it outranks whatever the command reported. */
export function crashVerdict(f: FatalFinding): CellVerdict {
  return { outcome: { kind: "crash", title: f.title, excerpt: f.excerpt, signature: f.signature }, guestSpoiled: true };
}

/** The host could not set the workload up: nothing ran in the guest, which stays usable. */
export function hostPreparationFailed(workloadId: string, error: string): CellVerdict {
  return {
    outcome: { kind: "infra", reason: `preparing ${workloadId} on the host failed: ${error}` },
    guestSpoiled: false,
  };
}

/**
 * A death the guest's deathReason reports that is a daemon's (not QEMU's, not the guest
 * kernel's), and not one the fault plan caused: the reason, else undefined.
 */
export function unplannedDaemonDeath(
  reason: string | undefined,
  plannedDeath: (reason: string) => boolean,
): string | undefined {
  if (!reason || reason.startsWith("QEMU") || reason.startsWith("guest") || plannedDeath(reason)) return undefined;
  return reason;
}

/** A daemon behind the guest died unplanned: the cell tested the infrastructure, not the kernel. */
export function daemonDiedVerdict(workloadId: string, reason: string): CellVerdict {
  return { outcome: { kind: "infra", reason: `${reason} during ${workloadId}; VM stopped` }, guestSpoiled: true };
}

export interface LostGuestEvidence {
  workloadId: string;
  /** Why SSH failed. */
  error: string;
  crash?: FatalFinding;
  /** QEMU exited through pvpanic. */
  guestPanicked: boolean;
  /** The guest's deathReason (QEMU's exit, a daemon's), if it has one. */
  deathReason?: string;
  /** The console since the step began: the excerpt of a panic only pvpanic saw. */
  consoleSinceStart: string;
}

/** SSH went away mid-step: the console's crash, else pvpanic's, else the infrastructure lost the guest. */
export function lostGuestVerdict(e: LostGuestEvidence): CellVerdict {
  if (e.crash) return crashVerdict(e.crash);
  if (e.guestPanicked) {
    const excerpt = e.consoleSinceStart.slice(-PANIC_EXCERPT_CHARS);
    return { outcome: { kind: "crash", title: "Kernel panic (pvpanic)", excerpt }, guestSpoiled: true };
  }
  const reason = `lost the guest during ${e.workloadId}: ${e.deathReason ?? e.error}`;
  return { outcome: { kind: "infra", reason }, guestSpoiled: true };
}

export interface TimedOutEvidence {
  workloadId: string;
  stepMs: number;
  /** The planned faults that fired, as FaultPlan describes them ("virtiofsd-kill share at 1.5 s"). */
  firedFaults?: string;
  crash?: FatalFinding;
  /** The liveness probe after the deadline; needed unless something crashed. */
  liveness?: Liveness;
}

/** The step's deadline passed: a crash, else a HANG, wedged when the mount no longer answers. */
export function timedOutVerdict(e: TimedOutEvidence): CellVerdict {
  if (e.crash) return crashVerdict(e.crash);
  const alive = probed(e.liveness, "a timed-out step");
  const planned = e.firedFaults ? ` after planned ${e.firedFaults}` : "";
  const what = `${e.workloadId} did not finish in ${Math.round(e.stepMs / 1000)} s${planned}`;
  return {
    outcome: {
      kind: "hang",
      what: alive.ok ? what : `${what}; the mount no longer answers (wedged)`,
      wedged: !alive.ok,
    },
    guestSpoiled: true,
  };
}

/** A PASS the kind believes only if the guest is still healthy afterwards (a refused FUSE lie). */
export function isCheckedPass(j: Judgement): boolean {
  return j.kind === "outcome" && Boolean(j.checkGuest) && j.outcome.kind === "pass";
}

/** Whether judgedVerdict needs a liveness probe (when nothing crashed). */
export function judgementNeedsLiveness(j: Judgement): boolean {
  return j.kind === "errno" || isCheckedPass(j);
}

export interface JudgedEvidence {
  judgement: Judgement;
  /** The first fatal report on the console by the time the cell ends. */
  crash?: FatalFinding;
  /** The liveness probe; needed when judgementNeedsLiveness and nothing crashed. */
  liveness?: Liveness;
  /** What the kernel reported during the step, fatal or not; read for a checked PASS with a live guest. */
  reported?: ReadonlyArray<{ title: string }>;
}

/** The command finished and its kind judged it: a crash outranks the judgement. */
export function judgedVerdict(e: JudgedEvidence): CellVerdict {
  if (e.crash) return crashVerdict(e.crash);
  const j = e.judgement;
  if (j.kind === "errno") {
    const alive = probed(e.liveness, "an errno");
    const at = j.at ? { at: j.at } : {};
    return {
      outcome: { kind: "errno", errno: j.errno, mountHealthy: alive.ok, detail: j.detail, ...at },
      guestSpoiled: !alive.ok,
    };
  }
  if (!isCheckedPass(j)) return { outcome: j.outcome, guestSpoiled: false };
  const checked = checkedPass(j.outcome, probed(e.liveness, "a checked PASS"), e.reported ?? []);
  return { outcome: checked, guestSpoiled: checked.kind !== "pass" };
}

/** A checked PASS holds if the guest answers and the kernel reported nothing (no WARNING, no hung task). */
function checkedPass(pass: CellOutcome, alive: Liveness, reported: ReadonlyArray<{ title: string }>): CellOutcome {
  if (!alive.ok) return { kind: "fail", detail: `refused, but the guest is unhealthy afterwards: ${alive.detail}` };
  if (reported.length) return { kind: "fail", detail: `refused, but the kernel reported: ${reported[0]!.title}` };
  return pass;
}

/** The result of `vmrig-probe alive <target>` (over SSH or the console) as a liveness verdict. */
export function livenessFromProbe(r: ExecResult, target: string, deadlineMs: number): Liveness {
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

/** Where the scenario's planned faults stand when the cell is over (FaultPlan's state). */
export interface FaultsOutcome {
  /** Planned faults that never fired: the workload ended first. */
  unfired: ReadonlyArray<{ action: FaultStep["action"]; where: string; plannedMs: number }>;
  networkCut: boolean;
  killedDaemon: boolean;
  crashed: boolean;
  /** The VM the faults spoiled is kept paused for a debugger (`--keep-failed`), not stopped. */
  vmKept?: boolean;
}

/** No SSH after a cut; no backend after a kill; a crashed kernel: the VM must be stopped now. */
export function faultsStopTheVm(f: FaultsOutcome): boolean {
  return f.networkCut || f.killedDaemon || f.crashed;
}

/**
 * The verdict once the planned faults are accounted for. A fault that never fired means the
 * scenario did not test what it says (unless the step crashed or hung before its time); a VM
 * the faults leave stopped is spoiled.
 */
export function verdictAfterFaults(
  v: CellVerdict,
  f: FaultsOutcome,
  workloadId: string,
  durationMs: number,
): CellVerdict {
  let outcome = v.outcome;
  const u = f.unfired[0];
  if (u && outcome.kind !== "crash" && outcome.kind !== "hang") {
    const ended = `${workloadId} ended after ${(durationMs / 1000).toFixed(1)} s`;
    outcome = {
      kind: "infra",
      reason: `planned ${u.action} (${u.where}, at ${u.plannedMs / 1000} s) did not fire: ${ended}`,
    };
  }
  if (!faultsStopTheVm(f)) return { outcome, guestSpoiled: v.guestSpoiled };
  if (outcome.kind === "hang" && f.killedDaemon)
    outcome = { ...outcome, what: `${outcome.what}; VM ${f.vmKept ? "kept paused" : "stopped"}` };
  return { outcome, guestSpoiled: true };
}

/** A liveness probe the runner should have run and did not is the runner's bug, not a cell outcome. */
function probed(alive: Liveness | undefined, what: string): Liveness {
  if (!alive) throw new Error(`the liveness probe's result is missing for ${what}`);
  return alive;
}
