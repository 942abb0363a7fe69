// The command channel into a guest: ssh2 with a pinned host key and an ephemeral client key.
// Readiness is "a command returned", never "the port accepted": QEMU's user network accepts TCP
// on the forwarded port long before the guest's sshd exists.
import os from "node:os";
import ssh2, { type ClientChannel } from "ssh2";

// ssh2 is CommonJS: its named exports are only reachable through the default import under ESM.
const { Client, utils } = ssh2;
type Client = InstanceType<typeof Client>;
import pRetry, { AbortError } from "p-retry";

export interface ClientKey {
  privateKey: string;
  /** OpenSSH public key line ("ssh-ed25519 AAAA... vmrig"). */
  publicKey: string;
}

/**
 * A fresh ed25519 key pair. ssh2's generator strips a leading zero byte from the public key
 * (https://github.com/mscdex/ssh2/issues/1390): one pair in 256 is malformed, the client cannot
 * load it and every login fails. So a pair counts only once ssh2's own parser takes both halves.
 */
export function generateClientKey(
  generate = () => utils.generateKeyPairSync("ed25519", { comment: "vmrig" }),
): ClientKey {
  for (let attempt = 1; ; attempt++) {
    const k = generate();
    if (!(utils.parseKey(k.private) instanceof Error) && !(utils.parseKey(k.public) instanceof Error))
      return { privateKey: k.private, publicKey: k.public };
    if (attempt === 16) throw new Error("ssh2 generated 16 ed25519 key pairs in a row that it cannot parse");
  }
}

export type ExecResult =
  | { kind: "exited"; code: number; stdout: string; stderr: string; ms: number }
  /** The deadline passed with the command still running: its channel is abandoned. */
  | { kind: "timeout"; stdout: string; stderr: string; ms: number }
  /** The SSH connection itself failed (guest died, network cut). */
  | { kind: "lost"; error: string; stdout: string; stderr: string; ms: number };

/** What an interactive session asks for (GuestShell.session). */
export interface SessionRequest {
  /** Run this instead of a login shell. */
  command?: string;
  /** A pseudo-terminal of this type and size; absent: plain pipes. */
  pty?: { term: string; rows: number; cols: number };
}

export interface SessionIo {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export interface Session {
  /** The remote exit code; 128+n for a signal; SESSION_LOST when the connection went first. */
  exited: Promise<number>;
  /** The local terminal changed size: tell the remote pty. */
  resize(rows: number, cols: number): void;
}

/** What ssh(1) exits with when the connection itself failed. */
export const SESSION_LOST = 255;

export interface SshTarget {
  host: string;
  port: number;
  hostKeyPublic: string;
  key: ClientKey;
}

function keyBlob(openSshLine: string): Buffer {
  const b64 = openSshLine.trim().split(/\s+/)[1];
  if (!b64) throw new Error(`not an OpenSSH public key line: ${openSshLine.slice(0, 40)}`);
  return Buffer.from(b64, "base64");
}

export class GuestShell {
  private constructor(
    private readonly client: Client,
    readonly target: SshTarget,
  ) {}

  private closed = false;

  /** One connection attempt (handshake + auth), bounded by `timeoutMs`. */
  static connectOnce(target: SshTarget, timeoutMs: number): Promise<GuestShell> {
    const pinned = keyBlob(target.hostKeyPublic);
    return new Promise((resolve, reject) => {
      const client = new Client();
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        client.end();
        reject(e);
      };
      client.once("ready", () => {
        settled = true;
        const shell = new GuestShell(client, target);
        client.on("error", () => undefined);
        client.on("close", () => (shell.closed = true));
        resolve(shell);
      });
      client.on("error", fail);
      client.once("close", () => fail(new Error("connection closed during handshake")));
      client.connect({
        host: target.host,
        port: target.port,
        username: "root",
        privateKey: target.key.privateKey,
        readyTimeout: timeoutMs,
        // Straight to the key: ssh2's default tries "none" first, one round trip more per login.
        authHandler: ["publickey"],
        keepaliveInterval: 0,
        hostVerifier: (key: Buffer) => {
          if (key.equals(pinned)) return true;
          // A different key means another machine answered on this port: never retry into it.
          fail(new HostKeyMismatch());
          return false;
        },
      });
      // Nagle's algorithm holds each small SSH packet until the last is acknowledged, and the
      // peer delays that ACK by up to 40 ms: every round trip of the login and of each command
      // paid it (a command took ~105 ms on TCG instead of ~13 ms).
      client.setNoDelay(true);
    });
  }

  /**
   * Connect, retrying until a command returns or `deadlineMs` passes. `stillBooting` is asked
   * before each retry so a dead VM ends the wait at once.
   */
  static async connect(
    target: SshTarget,
    opts: {
      deadlineMs: number;
      signal?: AbortSignal;
      stillBooting: () => string | undefined;
      /** The command whose return proves readiness (default `true`). */
      readyCommand?: string;
    },
  ): Promise<GuestShell> {
    const start = Date.now();
    const failures = new Map<string, number>();
    const failed = (why: string) => failures.set(why, (failures.get(why) ?? 0) + 1);
    // Set when the wait ends on purpose (a dead VM, another machine's key): that is the reason.
    let verdict: string | undefined;
    const stop = (why: string) => new AbortError((verdict = why));
    return pRetry(
      async () => {
        const why = opts.stillBooting();
        if (why) throw stop(why);
        const left = opts.deadlineMs - (Date.now() - start);
        if (left <= 0) throw new AbortError("deadline");
        // Escalating per-attempt bounds: an early attempt can be swallowed whole by a guest
        // whose NIC is not up yet, and must not cost the full handshake timeout.
        const bound = Math.min(left, 15_000, 2_000 * 1.5 ** attemptCount(failures));
        const shell = await GuestShell.connectOnce(target, bound).catch((e: Error) => {
          if (e instanceof HostKeyMismatch) throw stop(e.message);
          failed(e.message);
          throw e;
        });
        const r = await shell.exec(opts.readyCommand ?? "true", { deadlineMs: Math.min(left, 15_000) });
        if (r.kind !== "exited" || r.code !== 0) {
          shell.close();
          failed(`connected, but the readiness command ${r.kind === "exited" ? `exited ${r.code}` : r.kind}`);
          throw new Error("not ready");
        }
        return shell;
      },
      {
        // A refused attempt costs a few ms: retry soon while sshd is starting, then back off.
        // The deadline ends the wait (shouldRetry), not a count.
        retries: 20,
        forever: true,
        minTimeout: 20,
        maxTimeout: 500,
        factor: 1.5,
        signal: opts.signal,
        shouldRetry: () => Date.now() - start < opts.deadlineMs,
      },
    ).catch((e: Error) => {
      if (opts.signal?.aborted) throw e;
      throw new Error(
        verdict ?? `no SSH answer within ${Math.round(opts.deadlineMs / 1000)} s${attemptsSummary(failures)}`,
      );
    });
  }

  get alive(): boolean {
    return !this.closed;
  }

  exec(command: string, opts: { deadlineMs: number; stdin?: string }): Promise<ExecResult> {
    const start = Date.now();
    return new Promise((resolve) => {
      let stdout = "";
      let stderr = "";
      let done = false;
      const finish = (r: ExecResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(r);
      };
      const timer = setTimeout(
        () => finish({ kind: "timeout", stdout, stderr, ms: Date.now() - start }),
        opts.deadlineMs,
      );
      if (this.closed) return finish({ kind: "lost", error: "SSH connection closed", stdout, stderr, ms: 0 });
      const onClose = () =>
        finish({ kind: "lost", error: "SSH connection closed", stdout, stderr, ms: Date.now() - start });
      this.client.once("close", onClose);
      this.client.exec(command, (err: Error | undefined, ch: ClientChannel) => {
        if (err) return finish({ kind: "lost", error: err.message, stdout, stderr, ms: Date.now() - start });
        ch.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
        ch.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
        // "exit" can precede the last data: remember the code and finish on "close".
        let exitCode = -1;
        ch.on("exit", (code: number | null) => (exitCode = code ?? -1));
        ch.on("close", () => {
          this.client.removeListener("close", onClose);
          finish({ kind: "exited", code: exitCode, stdout, stderr, ms: Date.now() - start });
        });
        if (opts.stdin !== undefined) ch.end(opts.stdin);
        else ch.end();
      });
    });
  }

  /**
   * An interactive session wired to the caller's streams: a login shell, or `command`; with a
   * pseudo-terminal when `pty` is given (the remote side then echoes and handles Ctrl-C).
   */
  session(req: SessionRequest, io: SessionIo): Promise<Session> {
    return new Promise((resolve, reject) => {
      const opened = (err: Error | undefined, ch: ClientChannel) => {
        if (err) return reject(err);
        resolve(this.wireSession(ch, io));
      };
      const window = req.pty ? { ...req.pty, height: 0, width: 0 } : false;
      if (req.command !== undefined) this.client.exec(req.command, req.pty ? { pty: window } : {}, opened);
      else this.client.shell(window, opened);
    });
  }

  private wireSession(ch: ClientChannel, io: SessionIo): Session {
    ch.on("data", (d: Buffer) => io.stdout.write(d));
    ch.stderr.on("data", (d: Buffer) => io.stderr.write(d));
    io.stdin.pipe(ch);
    let code = SESSION_LOST;
    // A command killed by a signal exits 128+n, as a local shell reports it.
    ch.on("exit", (status: number | null, signal?: string) => {
      code = status ?? 128 + (signal ? (os.constants.signals[`SIG${signal}` as NodeJS.Signals] ?? 0) : 0);
    });
    const exited = new Promise<number>((resolve) => {
      const done = () => {
        io.stdin.unpipe(ch);
        resolve(code);
      };
      ch.once("close", done);
      this.client.once("close", done);
    });
    return { exited, resize: (rows, cols) => ch.setWindow(rows, cols, 0, 0) };
  }

  close(): void {
    this.closed = true;
    this.client.end();
  }
}

function attemptCount(failures: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const count of failures.values()) n += count;
  return n;
}

/** Pure: "; 14 attempts: 12x connection refused, 2x Timed out while waiting for handshake". */
export function attemptsSummary(failures: ReadonlyMap<string, number>): string {
  const n = attemptCount(failures);
  if (n === 0) return "";
  const parts = [...failures].map(([why, count]) => (count > 1 ? `${count}x ${why}` : why));
  return `; ${n} attempt${n === 1 ? "" : "s"}: ${parts.join(", ")}`;
}

export class HostKeyMismatch extends Error {
  constructor() {
    super("the guest presented a host key other than the one vmrig pinned for this image");
  }
}
