// What a cell says, in words a kernel engineer reads at a glance: "PASS", "-ENOMEM (mount
// healthy)", "HANG: ...", "CRASH: <first line of the oops>". One place, so the terminal table,
// the Markdown, JUnit and the live progress lines never disagree.
import type { CellOutcome } from "../types.ts";

/** "EIO", "-EIO" -> "-EIO": the form the kernel's return value and the seeds' tables use. */
export const errnoLabel = (errno: string) => `-${errno.replace(/^-/, "")}`;

export function cellLabel(o: CellOutcome): string {
  // A parameter search's cell says what it found, not one probe's outcome.
  if (o.searchLabel) return o.searchLabel;
  switch (o.kind) {
    case "pass":
      return "PASS";
    case "errno":
      // The liveness probe tells a clean error from one that left the share unusable.
      return (
        errnoLabel(o.errno) +
        (o.at ? ` at ${o.at}` : "") +
        (o.mountHealthy === true ? " (mount healthy)" : o.mountHealthy === false ? ", mount wedged" : "")
      );
    case "fail":
      return `FAIL: ${o.detail}`;
    case "skip":
      return `SKIP: ${o.reason}`;
    case "short":
      return `SHORT: saw ${o.seen} of ${o.expected}`;
    case "hang":
      return `HANG: ${o.what}`;
    case "crash":
      return `CRASH: ${o.title}`;
    case "boot-fail":
      return `BOOT-FAIL: ${o.reason}`;
    case "infra":
      return `INFRA: ${o.reason}`;
    case "not-run":
      return "NOT RUN";
  }
}

/** The longer story behind a label, for reports with room (Markdown, JUnit). */
export function cellDetail(o: CellOutcome): string | undefined {
  switch (o.kind) {
    case "pass":
    case "errno":
    case "short":
      return o.detail;
    case "not-run":
    case "skip":
      return o.reason;
    case "crash":
      return o.excerpt;
    default:
      return undefined;
  }
}
