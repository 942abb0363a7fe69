// A boot that timed out with nothing wrong on the console (no oops, panic, BUG or hung task,
// QEMU still running, init fine) says more about a loaded TCG host than about the kernel: it is
// booted once more, on a fresh guest, before the row is called BOOT-FAIL. A kernel that really
// does not boot fails both times; one that crashes or panics is never retried.
import type { BootFailure } from "../guest/boot.ts";
import { classifyConsole } from "../classify/classify-console.ts";

/** Pure: whether this failed boot earns one more attempt. */
export function bootWorthRetrying(f: Pick<BootFailure, "kind" | "reason" | "console">): boolean {
  if (f.kind !== "boot-fail") return false;
  if (/panicked|^QEMU exited|^guest init failed/.test(f.reason)) return false;
  return classifyConsole(f.console).length === 0;
}
