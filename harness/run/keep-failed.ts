// `vmrig run --keep-failed[=DURATION] [--keep-failed-on=hang,crash,...]`: the first guest of a
// scenario whose cell ends in one of the chosen outcomes is paused with a gdbstub instead of
// destroyed. The run's reports are written as usual; then vmrig waits (DURATION, or until a
// signal) with the guest kept, and prints how to attach gdb, dump memory and resume.
import path from "node:path";
import type { Arch, CellOutcome } from "../types.ts";
import { VmrigError } from "../util/errors.ts";
import { repoRoot } from "../util/paths.ts";
import type { DebugPackage } from "../kernels/debian-debug.ts";

/** The outcomes a kept guest can end in, as `--keep-failed-on` spells them (CellOutcome kinds). */
export const KEEPABLE = ["hang", "crash", "fail", "short", "errno"] as const;
export type Keepable = (typeof KEEPABLE)[number];

export interface KeepPolicy {
  /** How long vmrig waits with the kept guests after the reports, in ms. */
  durationMs: number;
  on: Keepable[];
}

export const DEFAULT_KEEP_MS = 30 * 60_000;
export const DEFAULT_KEEP_ON: Keepable[] = ["hang", "crash"];

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

/** Pure: "90s", "10m", "1h", "1h30m" -> milliseconds; undefined when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (!/^(\d+[smh])+$/.test(t)) return undefined;
  let ms = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)([smh])/g)) ms += Number(n) * UNIT_MS[unit!]!;
  return ms > 0 ? ms : undefined;
}

/** Pure: the policy from the two options' values (`--keep-failed` alone is `true`); undefined when off. */
export function keepPolicy(keep: string | boolean | undefined, on: string | undefined): KeepPolicy | undefined {
  if (keep === undefined || keep === false) {
    if (on !== undefined) throw new VmrigError("--keep-failed-on needs --keep-failed");
    return undefined;
  }
  const durationMs = keep === true ? DEFAULT_KEEP_MS : parseDuration(keep);
  if (durationMs === undefined)
    throw new VmrigError(`--keep-failed takes a duration like 90s, 10m or 1h (default 30m), got "${keep}"`);
  return { durationMs, on: on === undefined ? DEFAULT_KEEP_ON : parseKeepOn(on) };
}

function parseKeepOn(text: string): Keepable[] {
  const words = text.split(",").map((w) => w.trim().toLowerCase());
  const bad = words.filter((w) => !(KEEPABLE as readonly string[]).includes(w));
  if (bad.length || !words.length)
    throw new VmrigError(`--keep-failed-on: unknown outcome "${bad.join(",")}"; use any of ${KEEPABLE.join(",")}`);
  return [...new Set(words as Keepable[])];
}

/**
 * Pure: `--keep-failed` takes its value after "=" only, so a bare `--keep-failed` is not followed
 * by the scenario file it would otherwise swallow: it becomes `--keep-failed=` + the default.
 */
export function normalizeKeepArgs(args: string[]): string[] {
  return args.map((a) => (a === "--keep-failed" ? "--keep-failed=30m" : a));
}

/** Pure: whether a cell's outcome is one the policy keeps a guest for. */
export function keepsOutcome(policy: KeepPolicy, outcome: CellOutcome): boolean {
  return (policy.on as string[]).includes(outcome.kind);
}

/** What a kept guest is, for results.json and the instructions. */
export interface KeptGuestInfo {
  scenario: string;
  /** The scenario's file, for the commands that name its kernel row. */
  scenarioFile: string;
  kernel: string;
  arch: Arch;
  workload: string;
  /** The cell's outcome word ("CRASH"). */
  outcome: string;
  gdbSocket: string;
  qmpSocket: string;
  /** The kernel's ELF with symbols, when vmrig built it. */
  vmlinux?: string;
  /** A Debian kernel's debug-symbols package (its vmlinux), when the kernel is Debian's. */
  debugPackage?: DebugPackage;
  /** Files already saved that a debugger's user wants (the console, a hang's blocked-task stacks). */
  files: string[];
}

/**
 * The first cell of a scenario whose outcome the policy keeps claims its guest; later ones (other
 * rows under `--jobs` too, which claim synchronously) do not.
 */
export class GuestKeeper {
  private claimed = false;
  private readonly kept: Array<{ info: KeptGuestInfo; release: () => Promise<void> }> = [];

  constructor(readonly policy: KeepPolicy) {}

  /** Whether a guest's panic should pause it: a crash is kept and no guest was claimed yet. */
  wantsPanics(): boolean {
    return !this.claimed && this.policy.on.includes("crash");
  }

  claim(outcome: CellOutcome): boolean {
    if (this.claimed || !keepsOutcome(this.policy, outcome)) return false;
    this.claimed = true;
    return true;
  }

  add(info: KeptGuestInfo, release: () => Promise<void>): void {
    this.kept.push({ info, release });
  }

  get guests(): KeptGuestInfo[] {
    return this.kept.map((k) => k.info);
  }

  /** Stops every kept guest's processes and removes its sockets; safe to call twice. */
  async releaseAll(): Promise<void> {
    await Promise.all(this.kept.splice(0).map((k) => k.release()));
  }
}

/** Pure: how long the wait is, as the user wrote it ("30m", "1h30m", "90s"). */
export function formatDuration(ms: number): string {
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return [h ? `${h}h` : "", m ? `${m}m` : "", s ? `${s}s` : ""].join("") || "0s";
}

const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The gdb command that prints every blocked task's backtrace (x86_64). */
export const BLOCKED_TASKS_GDB = path.join(repoRoot, "harness", "run", "gdb", "blocked-tasks.py");

/** Pure: the commands that attach to, dump, resume and end one kept guest. */
export function attachInstructions(k: KeptGuestInfo, durationMs: number): string {
  // A Debian kernel's symbols are fetched on request: the substitution runs only if the user does.
  const fetch = `npx vmrig kernel debug-symbols ${quote(k.scenarioFile)} ${quote(k.kernel)}`;
  const symbols = k.vmlinux ? quote(k.vmlinux) : k.debugPackage ? `"$(${fetch})"` : "<vmlinux>";
  const remote = `-ex ${quote(`target remote ${k.gdbSocket}`)}`;
  const lines = [
    `kept: ${k.scenario} ${k.kernel} ${k.workload} (${k.outcome}): QEMU paused, gdbstub on ${k.gdbSocket}`,
    `  gdb:    gdb ${symbols} ${remote}` +
      `   (then: info threads, thread apply all bt; gdb's continue resumes the guest)`,
  ];
  if (k.outcome === "HANG" && k.arch === "x86_64")
    lines.push(
      `  hung:   gdb -batch ${symbols} ${remote} -x ${quote(BLOCKED_TASKS_GDB)} -ex vmrig-blocked-tasks` +
        "   (the backtrace of every task in D state)",
    );
  if (!k.vmlinux && k.debugPackage) {
    const { name, version } = k.debugPackage;
    lines.push(
      `  symbols: ${fetch}`,
      `          downloads Debian's ${name} ${version} once (a few hundred MB), keeps its vmlinux, prints its path`,
    );
  }
  const qmp = (cmd: string, args?: object) =>
    `npx vmrig qmp ${quote(k.qmpSocket)} ${cmd}${args ? ` ${quote(JSON.stringify(args))}` : ""}`;
  lines.push(
    `  memory: ${qmp("dump-guest-memory", { paging: false, protocol: "file:/tmp/vmrig-guest.elf" })}` +
      '   (ELF core: crash, drgn; add "format":"kdump-zlib" for a kdump file)',
    `  resume: ${qmp("cont")}   pause again: ${qmp("stop")}`,
  );
  if (k.files.length) lines.push(`  saved:  ${k.files.join(", ")}`);
  lines.push(`  vmrig stops it in ${formatDuration(durationMs)}, or now on Ctrl-C (SIGINT) or SIGTERM.`);
  return lines.join("\n");
}

/**
 * After the reports: prints how to attach to each kept guest, waits the policy's duration or
 * until `signal` aborts, then stops them all. Nothing kept: returns at once.
 */
export async function holdKeptGuests(
  keepers: GuestKeeper[],
  signal: AbortSignal,
  write: (text: string) => void,
): Promise<void> {
  const held = keepers.filter((k) => k.guests.length > 0);
  try {
    if (!held.length || signal.aborted) return;
    const durationMs = Math.max(...held.map((k) => k.policy.durationMs));
    for (const k of held) for (const g of k.guests) write(attachInstructions(g, durationMs) + "\n");
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, durationMs);
      signal.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
    });
  } finally {
    await Promise.all(keepers.map((k) => k.releaseAll()));
  }
}
