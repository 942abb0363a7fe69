// Commands through the serial console, for when SSH cannot be used (a planned network cut, a
// wedged sshd). The guest's console agent (harness/image/init-files.ts) evals each line typed
// on the console; QEMU's stdin is that console's input. The reply is found between two
// markers whose literal text never appears in the typed line (the tty echoes what we type).
import { randomBytes } from "node:crypto";

export interface ConsoleGuest {
  writeConsole(line: string): boolean;
  consoleLength(): number;
  consoleSince(offset: number): string;
  deathReason(): string | undefined;
}

export type ConsoleReply =
  | { kind: "exited"; code: number; stdout: string; ms: number }
  | { kind: "timeout"; ms: number }
  | { kind: "lost"; error: string; ms: number };

const TIMESTAMP_LINE = /^\s*\[\s*\d+\.\d+\]/;

/** A tty in canonical mode takes at most 4095 bytes per line; the rest would be dropped silently. */
const CONSOLE_LINE_MAX = 4000;

/**
 * The line to type: `echo "@@N""-begin"` prints @@N-begin, which the echoed input does not contain.
 * A command of several lines goes as base64 (busybox has it), since each typed line is run alone;
 * in a subshell, so that its `exit` ends the command and not the console agent.
 */
export function consoleCommandLine(command: string, nonce: string): string {
  const body = /[\r\n]/.test(command)
    ? `(eval "$(echo ${Buffer.from(command).toString("base64")} | base64 -d)")`
    : command;
  const line = `echo "@@${nonce}""-begin"; ${body}; echo "@@${nonce}""-end $?"`;
  if (line.length > CONSOLE_LINE_MAX)
    throw new Error(`a console command is at most ${CONSOLE_LINE_MAX} bytes as typed (this one: ${line.length})`);
  return line;
}

/**
 * Pure: the reply to `nonce` in console text, if it is complete. Kernel lines (printk
 * timestamps) that landed in between are dropped; CRs go.
 */
export function parseConsoleReply(text: string, nonce: string): { code: number; stdout: string } | undefined {
  const begin = text.indexOf(`@@${nonce}-begin`);
  if (begin < 0) return undefined;
  const endRe = new RegExp(`@@${nonce}-end (\\d+)`);
  const rest = text.slice(begin);
  const end = endRe.exec(rest);
  if (!end) return undefined;
  const body = rest.slice(rest.indexOf("\n") + 1, end.index);
  const stdout = body
    .split("\n")
    .map((l) => l.replace(/\r+$/, ""))
    .filter((l) => !TIMESTAMP_LINE.test(l))
    .join("\n");
  return { code: Number(end[1]), stdout };
}

export async function consoleRun(guest: ConsoleGuest, command: string, deadlineMs: number): Promise<ConsoleReply> {
  const started = Date.now();
  const nonce = randomBytes(4).toString("hex");
  const from = guest.consoleLength();
  if (!guest.writeConsole(consoleCommandLine(command, nonce)))
    return { kind: "lost", error: "the console does not take input (QEMU gone)", ms: 0 };
  for (;;) {
    const reply = parseConsoleReply(guest.consoleSince(from), nonce);
    if (reply) return { kind: "exited", ...reply, ms: Date.now() - started };
    const dead = guest.deathReason();
    if (dead && /^(QEMU|guest)/.test(dead)) return { kind: "lost", error: dead, ms: Date.now() - started };
    if (Date.now() - started > deadlineMs) return { kind: "timeout", ms: Date.now() - started };
    await new Promise((r) => setTimeout(r, 100));
  }
}
