// A workload command whose result survives losing SSH (a planned network cut): it runs as a
// job in its own session with its output in files under /run, and vmrig reads the files back
// through the serial console.
import { randomBytes } from "node:crypto";
import type { ExecResult } from "../guest/ssh.ts";
import { consoleRun, type ConsoleGuest } from "../guest/console-shell.ts";
import { shellQuote } from "../workloads/probe.ts";

export interface ConsoleJob {
  /** What SSH runs: the job, then its output (so without a cut it behaves like the plain command). */
  command: string;
  /** Files in the guest: <base>.out, .err, .rc */
  base: string;
}

/** Pure. */
export function consoleJob(command: string, id = randomBytes(4).toString("hex")): ConsoleJob {
  const base = `/run/vmrig-job-${id}`;
  const inner = `${command} > ${base}.out 2> ${base}.err; echo $? > ${base}.rc`;
  return {
    base,
    command:
      `setsid sh -c ${shellQuote(inner)} < /dev/null > /dev/null 2>&1 & wait $!; ` +
      `cat ${base}.out; cat ${base}.err >&2; exit $(cat ${base}.rc)`,
  };
}

/** Poll the job's exit status through the console until it has one or the deadline passes. */
export async function observeConsoleJob(guest: ConsoleGuest, job: ConsoleJob, deadlineMs: number): Promise<ExecResult> {
  const started = Date.now();
  const left = () => deadlineMs - (Date.now() - started);
  for (;;) {
    const rc = await consoleRun(
      guest,
      `cat ${job.base}.rc 2>/dev/null || echo pending`,
      Math.max(1000, Math.min(left(), 30_000)),
    );
    const ms = Date.now() - started;
    if (rc.kind === "lost")
      return {
        kind: "lost",
        error: `after the network cut, through the console: ${rc.error}`,
        stdout: "",
        stderr: "",
        ms,
      };
    if (rc.kind === "exited" && /^\d+$/.test(rc.stdout.trim())) {
      const out = await consoleRun(guest, `cat ${job.base}.out`, Math.max(5000, left()));
      const err = await consoleRun(guest, `cat ${job.base}.err`, Math.max(5000, left()));
      return {
        kind: "exited",
        code: Number(rc.stdout.trim()),
        stdout: out.kind === "exited" ? out.stdout : "",
        stderr: err.kind === "exited" ? err.stdout : "",
        ms: Date.now() - started,
      };
    }
    if (left() <= 0) return { kind: "timeout", stdout: "", stderr: "", ms };
    await new Promise((r) => setTimeout(r, 1000));
  }
}
