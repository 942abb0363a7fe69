// Start and supervise one vhost-user daemon (virtiofsd, or the relay in front of it).
import { createWriteStream, readFileSync } from "node:fs";
import { constants } from "node:os";
import { readFile } from "node:fs/promises";
import { spawnChild, stopChild, type Child } from "../util/children.ts";
import type { ShareSpec, VirtiofsdSandbox } from "../types.ts";

export interface DaemonCommand {
  argv0: string;
  prefixArgs: string[];
}

/**
 * The sandbox virtiofsd runs in. chroot is the default where it can work: it confines virtiofsd to the shared
 * directory without forking, so the pid vmrig supervises (and pauses or kills for a planned fault) is the one
 * that serves the guest.
 */
export function effectiveSandbox(sandbox: VirtiofsdSandbox, isRoot: boolean): Exclude<VirtiofsdSandbox, "auto"> {
  if (sandbox !== "auto") return sandbox;
  return isRoot ? "chroot" : "none";
}

/** Pure but for whether vmrig runs as root: virtiofsd's arguments for one share. */
export function virtiofsdArgs(
  share: ShareSpec,
  socketPath: string,
  sharedDir: string,
  logLevel = "info",
  isRoot = process.geteuid?.() === 0,
): string[] {
  const args = [
    "--socket-path",
    socketPath,
    "--shared-dir",
    sharedDir,
    "--cache",
    share.cache,
    "--sandbox",
    effectiveSandbox(share.sandbox, isRoot),
    // A share's own level (`log: debug`) wins over the run-wide one (VMRIG_VIRTIOFSD_LOG).
    "--log-level",
    share.logLevel ?? logLevel,
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

  constructor(
    readonly name: string,
    private readonly child: Child,
  ) {
    // The exit as soon as Node reaps the process, not once its output streams have closed too.
    child.once("exit", (code, signal) => (this.exitInfo ??= { name, code, signal }));
    this.exited = child.then((r) => {
      this.exitInfo ??= { name, code: r.exitCode ?? null, signal: r.signal ?? null };
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

  /**
   * How it ended, or undefined while it runs. A daemon that died but is not reaped yet (a
   * zombie) counts as dead already: which of two daemons in a chain died first must not depend
   * on the order Node happens to reap them in.
   */
  get exit(): DaemonExit | undefined {
    if (this.exitInfo) return this.exitInfo;
    const pid = this.child.pid;
    if (pid === undefined) return undefined;
    try {
      const z = parseZombieExit(readFileSync(`/proc/${pid}/stat`, "utf8"));
      return z ? { name: this.name, ...z } : undefined;
    } catch {
      return undefined;
    }
  }

  /** Why the daemon is gone, or undefined while it runs. */
  get deathReason(): string | undefined {
    const e = this.exit;
    return e ? describeExit(e) : undefined;
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }
}

/** Pure: "virtiofsd[share] exited (signal SIGKILL)". */
export function describeExit(e: DaemonExit): string {
  return `${e.name} exited (${e.signal ? `signal ${e.signal}` : `status ${e.code}`})`;
}

/**
 * Pure: a zombie's exit from its /proc/<pid>/stat (field 52, exit_code, as waitpid reports it),
 * or undefined when the process is not a zombie.
 */
export function parseZombieExit(stat: string): { code: number | null; signal: NodeJS.Signals | null } | undefined {
  // The command name (field 2) may hold spaces and parentheses: fields restart after the last ")".
  const fields = stat
    .slice(stat.lastIndexOf(")") + 2)
    .trim()
    .split(/\s+/);
  if (fields[0] !== "Z") return undefined;
  const raw = Number(fields[52 - 3]);
  if (!Number.isInteger(raw)) return undefined;
  const sig = raw & 0x7f;
  if (sig === 0) return { code: (raw >> 8) & 0xff, signal: null };
  const name = Object.entries(constants.signals).find(([, n]) => n === sig)?.[0] as NodeJS.Signals | undefined;
  return { code: null, signal: name ?? (`SIG${sig}` as NodeJS.Signals) };
}

/**
 * Pure: why a share's daemons (virtiofsd, and the relay in front of it) no longer serve, naming
 * the one that failed first. Each serves exactly one peer and exits with status 0 when that
 * peer leaves, so a daemon killed by a signal or failing with a status is the cause, and the
 * others' clean exits are its consequence: a killed relay is not "virtiofsd exited (status 0)".
 */
export function chainDeathReason(chain: ReadonlyArray<DaemonExit | undefined>): string | undefined {
  const dead = chain.filter((e): e is DaemonExit => e !== undefined);
  if (dead.length === 0) return undefined;
  const rank = (e: DaemonExit) => (e.signal ? 0 : e.code !== 0 ? 1 : 2);
  const cause = [...dead].sort((a, b) => rank(a) - rank(b))[0]!;
  const rest = dead.filter((e) => e !== cause);
  if (rest.length === 0) return describeExit(cause);
  const after = rest.map((e) => (rank(e) === 2 ? `${describeExit(e)} once its peer was gone` : describeExit(e)));
  return `${describeExit(cause)}; ${after.join("; ")}`;
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
    if (Date.now() - start > opts.timeoutMs)
      throw new Error(`${opts.daemon.name} socket ${path} not listening after ${opts.timeoutMs} ms`);
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
