// When a step hangs, ask the guest which tasks are blocked and where: sysrq 'w' ("show blocked
// state") prints every task in uninterruptible sleep with its stack on the console. Asked over
// a fresh SSH command when SSH still answers, else typed on the serial console.
import type { ExecResult } from "../guest/ssh.ts";
import { callTraceFrames, kernelText } from "./classify-console.ts";

export interface StackGuest {
  exec(command: string, deadlineMs: number): Promise<ExecResult>;
  writeConsole(line: string): boolean;
  consoleLength(): number;
  consoleSince(offset: number): string;
  deathReason(): string | undefined;
}

export interface BlockedStacks {
  via: "ssh" | "console" | "none";
  /** The dump as the console printed it (kernel lines only), or why there is none. */
  text: string;
  /** Blocked tasks with their top frames: "ls: fuse_simple_request < fuse_do_getattr < ...". */
  tasks: string[];
}

const HEADER = /sysrq: Show Blocked State/;
const SYSRQ_W = "echo w > /proc/sysrq-trigger";

/** Pure: the sysrq 'w' dump in console text (from its header), kernel lines only. */
export function extractBlockedState(consoleText: string): string | undefined {
  const lines = consoleText.split("\n").map((l) => l.replace(/\r+$/, ""));
  const at = lines.findIndex((l) => HEADER.test(l));
  if (at < 0) return undefined;
  // Keep printk lines; drop what user space wrote to the same console (the echoed command).
  return lines
    .slice(at)
    .filter((l) => /\[\s*\d+\.\d+\]/.test(l))
    .join("\n");
}

/** Pure: one line per blocked task, "comm: top < frames", from a sysrq 'w' dump. */
export function blockedTasks(dump: string): string[] {
  // Two CPUs printing at once can leave a torn line ("  s[   83.63] schedule_timeout+0x...");
  // its kernel text is what follows the last timestamp.
  const lines = dump.split("\n").map((l) => l.replace(/^.*(\[\s*\d+\.\d+\])/, "$1"));
  const starts = lines.flatMap((l, i) => (/^task:\S+\s+state:D/.test(kernelText(l)) ? [i] : []));
  return starts.map((s, k) => {
    const comm = /^task:(\S+)/.exec(kernelText(lines[s]!))![1]!;
    const block = lines.slice(s, starts[k + 1] ?? lines.length).join("\n");
    const frames = callTraceFrames(block, 6);
    return frames.length ? `${comm}: ${frames.join(" < ")}` : comm;
  });
}

export async function blockedTaskStacks(guest: StackGuest, deadlineMs: number): Promise<BlockedStacks> {
  const dead = () => {
    const r = guest.deathReason();
    return r && /^(QEMU|guest)/.test(r) ? r : undefined;
  };
  if (dead()) return { via: "none", text: `no stacks: ${dead()}`, tasks: [] };
  const from = guest.consoleLength();
  let via: BlockedStacks["via"] = "ssh";
  const r = await guest.exec(SYSRQ_W, Math.min(deadlineMs, 20_000));
  if (r.kind !== "exited" || r.code !== 0) {
    via = "console";
    if (!guest.writeConsole(SYSRQ_W))
      return { via: "none", text: `no stacks: SSH ${r.kind} and the console takes no input`, tasks: [] };
  }
  // Wait for the header, then for the console to go quiet: the dump is many lines.
  const started = Date.now();
  let seen = -1;
  let quietSince = Date.now();
  while (Date.now() - started < deadlineMs && !dead()) {
    const now = guest.consoleLength();
    if (now !== seen) {
      seen = now;
      quietSince = Date.now();
    } else if (HEADER.test(guest.consoleSince(from)) && Date.now() - quietSince > 1500) {
      break;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  const text = extractBlockedState(guest.consoleSince(from));
  if (!text)
    return {
      via,
      text: `no "Show Blocked State" on the console within ${Math.round(deadlineMs / 1000)} s (asked via ${via})`,
      tasks: [],
    };
  return { via, text, tasks: blockedTasks(text) };
}
