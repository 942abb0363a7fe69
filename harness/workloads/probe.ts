// The guest probe (images/probe/vmrig-probe.c) prints one JSON line per invocation.
import type { ExecResult } from "../guest/ssh.ts";

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
  | { kind: "report"; report: ProbeReport; exec: ExecResult }
  | { kind: "no-report"; exec: ExecResult };

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
