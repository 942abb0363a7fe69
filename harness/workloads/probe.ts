// The guest probe (images/probe/vmrig-probe.c) prints one JSON line per invocation.
import type { ExecResult } from "../guest/ssh.ts";
import type { Exited, Judgement } from "./kind.ts";

export const PROBE = "/usr/bin/vmrig-probe";

export interface ProbeReport {
  op: string;
  ok: boolean;
  errno?: string;
  errnoNum?: number;
  // What vmrig-probe.c prints besides, per op (getdents, read, write, usage).
  entries?: number;
  bytes?: number;
  passes?: number;
  differingPasses?: number;
  fnv1a64?: string;
  error?: string;
  [k: string]: unknown;
}

export type ProbeRun =
  { kind: "report"; report: ProbeReport; exec: ExecResult } | { kind: "no-report"; exec: ExecResult };

/** Pure: the probe's JSON line from a finished command, if it printed one. */
export function parseProbeOutput(exec: ExecResult): ProbeRun {
  const line = exec.stdout
    .split("\n")
    .map((l) => l.trim())
    .reverse()
    .find((l) => l.startsWith("{"));
  if (line) {
    try {
      const report = JSON.parse(line) as ProbeReport;
      if (typeof report.ok === "boolean") return { kind: "report", report, exec };
    } catch {
      // fall through: not the probe's line
    }
  }
  return { kind: "no-report", exec };
}

export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A probe run that printed no report: INFRA, with what it printed kept beside `evidence`. */
export function noProbeReport(exec: Exited, evidence: Record<string, unknown>): Judgement {
  const reason = `probe printed no result (exit ${exec.code}): ${exec.stderr.trim().slice(0, 200)}`;
  return {
    kind: "outcome",
    outcome: { kind: "infra", reason },
    evidence: { ...evidence, stdout: exec.stdout, stderr: exec.stderr },
  };
}

/**
 * The usual judgement of one probe run: no report is INFRA, an errno goes to the runner's
 * liveness check, another failure is FAIL, and a good report is for `onOk` to judge.
 */
export async function probeJudgement(
  exec: Exited,
  onOk: (r: ProbeReport) => Promise<Judgement> | Judgement,
): Promise<Judgement> {
  const run = parseProbeOutput(exec);
  if (run.kind === "no-report") return noProbeReport(exec, {});
  const r = run.report;
  if (!r.ok && r.errno) return { kind: "errno", errno: r.errno, detail: `${r.op}: ${r.errno}`, evidence: { probe: r } };
  if (!r.ok) {
    const detail = `${r.op} failed: ${JSON.stringify(r)}`;
    return { kind: "outcome", outcome: { kind: "fail", detail }, evidence: { probe: r } };
  }
  return onOk(r);
}
