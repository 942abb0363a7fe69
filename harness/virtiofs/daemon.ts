// Start and supervise one vhost-user daemon (virtiofsd, or the relay in front of it).
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { spawnChild, stopChild, type Child } from "../util/children.ts";
import type { ShareSpec } from "../types.ts";

export interface DaemonCommand {
  argv0: string;
  prefixArgs: string[];
}

/** Pure: virtiofsd's arguments for one share. */
export function virtiofsdArgs(share: ShareSpec, socketPath: string, sharedDir: string, logLevel = "info"): string[] {
  const args = [
    "--socket-path", socketPath,
    "--shared-dir", sharedDir,
    "--cache", share.cache,
    "--sandbox", share.sandbox,
    // A share's own level (`log: debug`) wins over the run-wide one (VMRIG_VIRTIOFSD_LOG).
    "--log-level", share.logLevel ?? logLevel,
  ];
  if (share.threadPoolSize !== undefined) args.push("--thread-pool-size", String(share.threadPoolSize));
  return [...args, ...share.extraArgs];
}

export interface DaemonExit {
  name: string;
  code: number | null;
  signal: string | null;
}

/** A running daemon whose output goes to a log file; `exited` settles when it dies. */
export class SupervisedDaemon {
  readonly exited: Promise<DaemonExit>;
  private exitInfo: DaemonExit | undefined;

  constructor(readonly name: string, private readonly child: Child) {
    this.exited = child.then((r) => {
      this.exitInfo = { name, code: r.exitCode ?? null, signal: r.signal ?? null };
      return this.exitInfo;
    });
  }

  static start(name: string, cmd: DaemonCommand, args: string[], logFile: string): SupervisedDaemon {
    const log = createWriteStream(logFile, { flags: "a" });
    const child = spawnChild(cmd.argv0, [...cmd.prefixArgs, ...args], { stdout: "pipe", stderr: "pipe" });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    void child.finally(() => log.end());
    return new SupervisedDaemon(name, child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Why the daemon is gone, or undefined while it runs. */
  get deathReason(): string | undefined {
    const e = this.exitInfo;
    if (!e) return undefined;
    return `${this.name} exited (${e.signal ? `signal ${e.signal}` : `status ${e.code}`})`;
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }
}

/**
 * Wait until a UNIX socket is listening, without connecting to it: virtiofsd and the relay
 * serve exactly one frontend and exit when it leaves, so a test connection would consume them.
 * /proc/net/unix shows listening sockets with the __SO_ACCEPTCON flag (0x10000).
 */
export async function waitForListeningSocket(
  path: string,
  opts: { timeoutMs: number; daemon: SupervisedDaemon; signal?: AbortSignal },
): Promise<void> {
  const start = Date.now();
  for (;;) {
    opts.signal?.throwIfAborted();
    if (opts.daemon.deathReason) throw new Error(`${opts.daemon.deathReason} before its socket was ready`);
    const table = await readFile("/proc/net/unix", "utf8");
    if (isListening(table, path)) return;
    if (Date.now() - start > opts.timeoutMs) throw new Error(`${opts.daemon.name} socket ${path} not listening after ${opts.timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Pure: does /proc/net/unix show `path` as a listening socket? */
export function isListening(procNetUnix: string, path: string): boolean {
  for (const line of procNetUnix.split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path
    if (cols.length >= 8 && cols[7] === path && (parseInt(cols[3]!, 16) & 0x10000) !== 0) return true;
  }
  return false;
}
