// The real vhost-user relay binary between two UNIX sockets that the test owns: the test plays
// both QEMU (frontend) and virtiofsd (backend). Node cannot pass file descriptors, so fd
// forwarding (SCM_RIGHTS, up to 8 fds, partial reads) is covered by the binary's --self-test.
import { spawn, type ChildProcess } from "node:child_process";
import { lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { execa } from "execa";
import {
  accessPlatformFeatures,
  buildRelay,
  relayArgs,
  relayBinaryName,
  relayReadyLine,
  type RelayArgsOptions,
} from "../../harness/virtiofs/relay.ts";
import { HostError } from "../../harness/util/errors.ts";

const GET_FEATURES = 1;
const SET_FEATURES = 2;
const SET_VRING_NUM = 8;
const GET_VRING_BASE = 11;
const GET_CONFIG = 24;
const V1 = 0x1;
const REPLY = 0x4;
const NEED_REPLY = 0x8;
/** What virtiofsd 1.13 offers: VERSION_1, PROTOCOL_FEATURES, EVENT_IDX, INDIRECT_DESC, LOG_ALL. */
const VIRTIOFSD_FEATURES = 0x174000000n;
const BIT33 = 1n << 33n;

interface Msg {
  request: number;
  flags: number;
  size: number;
  payload: Buffer;
  raw: Buffer;
}

function encode(request: number, flags: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt32LE(request, 0);
  h.writeUInt32LE(flags, 4);
  h.writeUInt32LE(payload.length, 8);
  return Buffer.concat([h, payload]);
}

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}

/** Frames vhost-user messages out of a socket's byte stream. */
class Peer {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  ended = false;

  constructor(readonly sock: net.Socket) {
    sock.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiter?.();
    });
    sock.on("end", () => {
      this.ended = true;
      this.waiter?.();
    });
    sock.on("close", () => {
      this.ended = true;
      this.waiter?.();
    });
    sock.on("error", () => undefined);
  }

  send(b: Buffer): void {
    this.sock.write(b);
  }

  async next(timeoutMs = 5000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 12) {
        const size = this.buf.readUInt32LE(8);
        if (this.buf.length >= 12 + size) {
          const raw = this.buf.subarray(0, 12 + size);
          this.buf = this.buf.subarray(12 + size);
          return {
            request: raw.readUInt32LE(0),
            flags: raw.readUInt32LE(4),
            size,
            payload: Buffer.from(raw.subarray(12)),
            raw: Buffer.from(raw),
          };
        }
      }
      if (this.ended) throw new Error("connection ended before a whole message arrived");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a message");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  async waitEnd(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error("connection did not end");
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

interface RelayRun {
  child: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
  front: Peer;
  /** Resolves once the relay has connected to the test's backend socket. */
  back: Promise<Peer>;
  logPath: string;
}

let bin: string;
let dir: string;
const children: ChildProcess[] = [];
const servers: net.Server[] = [];

beforeAll(async () => {
  bin = await buildRelay();
}, 120_000);

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "vmrig-relay-test-"));
});

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }
  for (const s of servers.splice(0)) s.close();
  await rm(dir, { recursive: true, force: true });
});

async function waitForLine(child: ChildProcess, line: string, timeoutMs = 5000): Promise<void> {
  let out = "";
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`relay did not print "${line}" (stdout: ${out})`)), timeoutMs);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes(line)) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(t);
      reject(new Error(`relay exited (${code}) before it was ready`));
    });
  });
}

interface StartOptions {
  probeFirst?: boolean;
  /** Relay options beyond the sockets and the log (timeouts). */
  args?: Omit<RelayArgsOptions, "listen" | "connect" | "log">;
  /** Runs once the relay listens, before the frontend connects. */
  beforeFront?: (frontSock: string) => Promise<void>;
  /** Options of the frontend's socket (e.g. `onread`, to leave data unread). */
  frontOpts?: Partial<net.NetConnectOpts>;
}

/** Starts a backend server and the relay, and connects the frontend (no message sent yet). */
async function startRelay(opts: StartOptions = {}): Promise<RelayRun> {
  const frontSock = path.join(dir, "front.sock");
  const backSock = path.join(dir, "back.sock");
  const logPath = path.join(dir, "relay.log");

  let accepted!: (p: Peer) => void;
  const back = new Promise<Peer>((r) => (accepted = r));
  const server = net.createServer((s) => accepted(new Peer(s)));
  servers.push(server);
  await new Promise<void>((r) => server.listen(backSock, r));

  const child = spawn(bin, relayArgs({ listen: frontSock, connect: backSock, log: logPath, ...opts.args }), {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once("exit", (code, signal) => r({ code, signal })),
  );
  await waitForLine(child, relayReadyLine(frontSock));

  if (opts.probeFirst) {
    // A readiness probe: connect and leave without a byte. The relay must keep listening.
    const probe = net.createConnection(frontSock);
    await new Promise<void>((r) => probe.once("connect", () => r()));
    probe.end();
    await new Promise<void>((r) => probe.once("close", () => r()));
  }

  await opts.beforeFront?.(frontSock);
  const sock = await connectTo(frontSock, opts.frontOpts);
  return { child, exit, stderr: () => stderr, front: new Peer(sock), back, logPath };
}

async function connectTo(sockPath: string, opts: Partial<net.NetConnectOpts> = {}): Promise<net.Socket> {
  const sock = net.createConnection({ ...opts, path: sockPath } as net.NetConnectOpts);
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", () => resolve());
    sock.once("error", reject);
  });
  return sock;
}

async function waitForLog(logPath: string, re: RegExp, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!re.test(await readFile(logPath, "utf8").catch(() => ""))) {
    if (Date.now() > deadline) throw new Error(`relay log never matched ${re}`);
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** GET_FEATURES round trip; returns the reply the frontend saw. */
async function getFeatures(r: RelayRun, offered: bigint): Promise<Msg> {
  const req = encode(GET_FEATURES, V1);
  r.front.send(req);
  const back = await r.back;
  const got = await back.next();
  expect(got.raw).toEqual(req);
  back.send(encode(GET_FEATURES, V1 | REPLY, u64(offered)));
  return r.front.next();
}

describe("vhost-user relay binary", () => {
  it("adds VIRTIO_F_ACCESS_PLATFORM to the GET_FEATURES reply and changes nothing else", async () => {
    const r = await startRelay();
    const reply = await getFeatures(r, VIRTIOFSD_FEATURES);
    expect(reply.request).toBe(GET_FEATURES);
    expect(reply.flags).toBe(V1 | REPLY);
    expect(reply.size).toBe(8);
    expect(reply.payload.readBigUInt64LE()).toBe(VIRTIOFSD_FEATURES | BIT33);

    const log = await readFile(r.logPath, "utf8");
    expect(log).toMatch(/front->back GET_FEATURES\(1\) flags=0x1 size=0 fds=0/);
    expect(log).toMatch(
      /back->front GET_FEATURES\(1\) flags=0x5 size=8 fds=0 features 0x174000000 -> 0x374000000 \(added 0x200000000\)/,
    );
  });

  it("clears the added bit from SET_FEATURES because virtiofsd rejects bits it did not offer", async () => {
    const r = await startRelay();
    await getFeatures(r, VIRTIOFSD_FEATURES);
    const back = await r.back;

    r.front.send(encode(SET_FEATURES, V1, u64(0x170000000n | BIT33)));
    const set = await back.next();
    expect(set.request).toBe(SET_FEATURES);
    expect(set.flags).toBe(V1);
    expect(set.payload.readBigUInt64LE()).toBe(0x170000000n);

    // Without the bit it is forwarded untouched, including NEED_REPLY; the ack passes back.
    const plain = encode(SET_FEATURES, V1 | NEED_REPLY, u64(0x170000000n));
    r.front.send(plain);
    expect((await back.next()).raw).toEqual(plain);
    const ack = encode(SET_FEATURES, V1 | REPLY, u64(0n));
    back.send(ack);
    expect((await r.front.next()).raw).toEqual(ack);

    const log = await readFile(r.logPath, "utf8");
    expect(log).toMatch(
      /SET_FEATURES\(2\) flags=0x1 size=8 fds=0 features 0x370000000 -> 0x170000000 \(cleared 0x200000000/,
    );
    expect(log).toMatch(/SET_FEATURES\(2\) flags=0x9 size=8 fds=0 features 0x170000000 -> 0x170000000 \(unchanged\)/);
  });

  it("keeps the bit in SET_FEATURES when the backend offered it itself", async () => {
    const r = await startRelay();
    const reply = await getFeatures(r, VIRTIOFSD_FEATURES | BIT33);
    expect(reply.payload.readBigUInt64LE()).toBe(VIRTIOFSD_FEATURES | BIT33);
    r.front.send(encode(SET_FEATURES, V1, u64(0x170000000n | BIT33)));
    expect((await (await r.back).next()).payload.readBigUInt64LE()).toBe(0x170000000n | BIT33);
  });

  it("passes other messages byte-identical in both directions, however they are chunked", async () => {
    const r = await startRelay();
    const vringNum = encode(SET_VRING_NUM, V1, Buffer.from([0, 0, 0, 0, 0, 4, 0, 0])); // index 0, num 1024
    r.front.send(vringNum);
    const back = await r.back;
    expect((await back.next()).raw).toEqual(vringNum);

    // Two messages in one write, then one message dribbled out in pieces.
    const getBase = encode(GET_VRING_BASE, V1, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
    const config = encode(
      GET_CONFIG,
      V1,
      Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.alloc(256, 0xab)]),
    );
    r.front.send(Buffer.concat([getBase, config]));
    expect((await back.next()).raw).toEqual(getBase);
    expect((await back.next()).raw).toEqual(config);

    const baseReply = encode(GET_VRING_BASE, V1 | REPLY, Buffer.from([1, 0, 0, 0, 42, 0, 0, 0]));
    for (const piece of [baseReply.subarray(0, 5), baseReply.subarray(5, 13), baseReply.subarray(13)]) {
      back.send(piece);
      await new Promise((res) => setTimeout(res, 20));
    }
    expect((await r.front.next()).raw).toEqual(baseReply);

    const big = encode(GET_CONFIG, V1 | REPLY, Buffer.alloc(60_000, 0x5a));
    back.send(big);
    expect((await r.front.next()).raw).toEqual(big);

    const log = await readFile(r.logPath, "utf8");
    expect(log).toMatch(/front->back SET_VRING_NUM\(8\) flags=0x1 size=8 fds=0\n/);
    expect(log).toMatch(/back->front GET_CONFIG\(24\) flags=0x5 size=60000 fds=0\n/);
  });

  it("exits 0 and closes the frontend when the backend closes", async () => {
    const r = await startRelay();
    await getFeatures(r, VIRTIOFSD_FEATURES);
    (await r.back).sock.end();
    expect(await r.exit).toEqual({ code: 0, signal: null });
    await r.front.waitEnd();
    expect(await readFile(r.logPath, "utf8")).toMatch(/backend closed the connection/);
  });

  it("exits 0 and closes the backend when the frontend closes", async () => {
    const r = await startRelay();
    await getFeatures(r, VIRTIOFSD_FEATURES);
    r.front.sock.end();
    expect(await r.exit).toEqual({ code: 0, signal: null });
    await (await r.back).waitEnd();
  });

  it("treats a connection that closes without a byte as a probe and keeps listening", async () => {
    const r = await startRelay({ probeFirst: true });
    const reply = await getFeatures(r, VIRTIOFSD_FEATURES);
    expect(reply.payload.readBigUInt64LE()).toBe(VIRTIOFSD_FEATURES | BIT33);
  });

  it("exits non-zero with a message on a stream that is not vhost-user", async () => {
    const r = await startRelay();
    r.front.send(encode(GET_FEATURES, 0x2 /* version 2 */));
    const exit = await r.exit;
    expect(exit.code).toBe(1);
    expect(r.stderr()).toMatch(/frontend sent a bad header: unsupported vhost-user version \(request 1, flags 0x2/);
  });

  it("exits non-zero when a peer closes in the middle of a message", async () => {
    const r = await startRelay();
    await getFeatures(r, VIRTIOFSD_FEATURES);
    (await r.back).sock.end(encode(GET_VRING_BASE, V1 | REPLY, Buffer.alloc(8)).subarray(0, 15));
    expect((await r.exit).code).toBe(1);
    expect(r.stderr()).toMatch(/backend closed the connection in the middle of GET_VRING_BASE after 15 of 20 bytes/);
  });

  it("forwards file descriptors, 8 at a time, across partial reads (--self-test)", async () => {
    const r = await execa(bin, ["--self-test"], { reject: false });
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^self-test ok \(\d+ checks\)$/);
    expect(r.exitCode).toBe(0);
  });

  it("rejects bad usage with status 2", async () => {
    const r = await execa(bin, ["--listen", path.join(dir, "x.sock")], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/usage: vhost-user-relay/);
  });
});

/** Waits for the relay's exit, failing the test instead of hanging when it does not come. */
async function exitWithin(r: RelayRun, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`relay still running after ${ms} ms: ${r.stderr()}`)), ms);
  });
  try {
    return await Promise.race([r.exit, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts the relay on `listen` with nothing else around; resolves with its exit and stderr. */
async function relayOn(listen: string): Promise<{ code: number | null; stderr: string }> {
  const r = await execa(bin, relayArgs({ listen, connect: path.join(dir, "back.sock") }), {
    reject: false,
    timeout: 5000,
  });
  return { code: r.exitCode ?? null, stderr: r.stderr };
}

describe("vhost-user relay against a hostile or broken peer", () => {
  it("refuses a payload over 64 KiB with exit 1, forwarding nothing", async () => {
    const r = await startRelay();
    const h = encode(GET_CONFIG, V1).subarray(0, 12);
    h.writeUInt32LE(65 * 1024 + 1, 8);
    r.front.send(h);
    expect((await exitWithin(r, 5000)).code).toBe(1);
    expect(r.stderr()).toMatch(
      /frontend sent a bad header: payload size exceeds 64 KiB \(request 24, flags 0x1, size 66561\)/,
    );
    const back = await r.back;
    await back.waitEnd();
    await expect(back.next(0)).rejects.toThrow(/ended before a whole message/);
  });

  it("ends a message stalled mid-header after --message-timeout, naming the side and the bytes", async () => {
    const r = await startRelay({ args: { messageTimeoutMs: 300 } });
    const started = Date.now();
    r.front.send(encode(GET_FEATURES, V1).subarray(0, 5));
    expect(await exitWithin(r, 5000)).toEqual({ code: 1, signal: null });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(r.stderr()).toMatch(/frontend stalled mid-header: 5 of 12 bytes in 300 ms since its first byte/);
    await r.front.waitEnd();
  });

  it("ends a reply stalled mid-payload, naming the request, and closes both sides", async () => {
    const r = await startRelay({ args: { messageTimeoutMs: 300 } });
    await getFeatures(r, VIRTIOFSD_FEATURES);
    const back = await r.back;
    back.send(encode(GET_VRING_BASE, V1 | REPLY, Buffer.alloc(8)).subarray(0, 15));
    expect(await exitWithin(r, 5000)).toEqual({ code: 1, signal: null });
    expect(r.stderr()).toMatch(/backend stalled in the middle of GET_VRING_BASE: 15 of 20 bytes in 300 ms/);
    await r.front.waitEnd();
    await back.waitEnd();
  });

  it("takes a reset mid-header for an error, not a clean close", async () => {
    // A frontend that leaves the relay's reply unread: closing a UNIX socket with unread data
    // resets the connection (ECONNRESET at the relay), as a crashed QEMU's kernel would.
    const r = await startRelay({ frontOpts: { onread: { buffer: Buffer.alloc(64), callback: () => true } } });
    r.front.sock.pause();
    r.front.send(encode(GET_FEATURES, V1));
    const back = await r.back;
    await back.next();
    back.send(encode(GET_FEATURES, V1 | REPLY, u64(VIRTIOFSD_FEATURES)));
    await waitForLog(r.logPath, /back->front GET_FEATURES/);
    r.front.send(encode(SET_FEATURES, V1, u64(VIRTIOFSD_FEATURES)).subarray(0, 5));
    await new Promise((res) => setTimeout(res, 100));
    r.front.sock.destroy();
    expect(await exitWithin(r, 5000)).toEqual({ code: 1, signal: null });
    expect(r.stderr()).toMatch(/frontend reset the connection mid-header after 5 of 12 bytes/);
    await back.waitEnd();
  });

  it("serves the real frontend while silent clients stay connected, dropping the oldest of five", async () => {
    const silent: Peer[] = [];
    const r = await startRelay({
      args: { silentTimeoutMs: 60_000 },
      beforeFront: async (sock) => {
        for (let i = 0; i < 5; i++) silent.push(new Peer(await connectTo(sock)));
        await silent[0]!.waitEnd(); // four may wait: the fifth pushes the first out
      },
    });
    const reply = await getFeatures(r, VIRTIOFSD_FEATURES);
    expect(reply.payload.readBigUInt64LE()).toBe(VIRTIOFSD_FEATURES | BIT33);
    for (const s of silent) await s.waitEnd(); // the others go once the real one is served
    const log = await readFile(r.logPath, "utf8");
    expect(log).toMatch(/dropped a connection that stayed silent while others connected/);
    expect(log).toMatch(/frontend connected \(first byte \d+ ms after it connected\)/);
  });

  it("drops a client that sends nothing within --silent-timeout and keeps listening", async () => {
    let silent!: Peer;
    let dropped = 0;
    const r = await startRelay({
      args: { silentTimeoutMs: 200 },
      beforeFront: async (sock) => {
        silent = new Peer(await connectTo(sock));
        const t0 = Date.now();
        await silent.waitEnd();
        dropped = Date.now() - t0;
      },
    });
    expect(dropped).toBeGreaterThanOrEqual(150);
    expect((await getFeatures(r, VIRTIOFSD_FEATURES)).request).toBe(GET_FEATURES);
    expect(await readFile(r.logPath, "utf8")).toMatch(/dropped a connection that sent nothing within --silent-timeout/);
  });

  it("refuses a --listen path that is a regular file, a directory or a symlink with exit 2", async () => {
    const file = path.join(dir, "file");
    await writeFile(file, "keep me");
    await mkdir(path.join(dir, "dir"));
    await symlink(file, path.join(dir, "link"));
    for (const [name, kind] of [
      ["file", "a regular file"],
      ["dir", "a directory"],
      ["link", "a symbolic link"],
    ] as const) {
      const r = await relayOn(path.join(dir, name));
      expect(r.code, name).toBe(2);
      expect(r.stderr).toContain(`--listen ${path.join(dir, name)} exists and is ${kind}; refusing to replace it`);
    }
    expect(await readFile(file, "utf8")).toBe("keep me");
    expect((await lstat(path.join(dir, "link"))).isSymbolicLink()).toBe(true);
    expect((await lstat(path.join(dir, "dir"))).isDirectory()).toBe(true);
  });

  it("refuses a socket someone listens on, and replaces a stale one", async () => {
    const live = path.join(dir, "live.sock");
    const server = net.createServer((s) => s.destroy());
    servers.push(server);
    await new Promise<void>((res) => server.listen(live, res));
    const refused = await relayOn(live);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/is a socket another process listens on; refusing to replace it/);
    expect((await lstat(live)).isSocket()).toBe(true);

    // A relay killed with SIGKILL leaves its socket file behind: the next one takes its place.
    const first = await startRelay();
    first.child.kill("SIGKILL");
    await first.exit;
    expect((await lstat(path.join(dir, "front.sock"))).isSocket()).toBe(true);
    for (const s of servers.splice(0)) s.close();
    const r = await startRelay();
    expect((await getFeatures(r, VIRTIOFSD_FEATURES)).request).toBe(GET_FEATURES);
    expect(await readFile(r.logPath, "utf8")).toMatch(/replaced a stale socket at /);
  });
});

describe("relayArgs", () => {
  it("spells the relay's command line, adding ACCESS_PLATFORM by default", () => {
    expect(relayArgs({ listen: "/s/relay.sock", connect: "/s/vfsd.sock", log: "/a/relay.log" })).toEqual([
      "--listen",
      "/s/relay.sock",
      "--connect",
      "/s/vfsd.sock",
      "--add-features",
      "0x200000000",
      "--log",
      "/a/relay.log",
    ]);
    expect(accessPlatformFeatures).toBe(0x200000000n);
  });

  it("takes other feature masks and a connect timeout, and refuses nonsense", () => {
    expect(
      relayArgs({ listen: "l", connect: "c", addFeatures: (1n << 33n) | (1n << 35n), connectTimeoutMs: 250 }),
    ).toEqual(["--listen", "l", "--connect", "c", "--add-features", "0xa00000000", "--connect-timeout", "250"]);
    expect(() => relayArgs({ listen: "l", connect: "c", addFeatures: 1n << 64n })).toThrow(RangeError);
    expect(() => relayArgs({ listen: "l", connect: "c", connectTimeoutMs: -1 })).toThrow(RangeError);
    expect(relayArgs({ listen: "l", connect: "c", messageTimeoutMs: 0, silentTimeoutMs: 2000 }).slice(6)).toEqual([
      "--message-timeout",
      "0",
      "--silent-timeout",
      "2000",
    ]);
    expect(() => relayArgs({ listen: "l", connect: "c", messageTimeoutMs: 86_400_001 })).toThrow(
      /messageTimeoutMs must be an integer from 0 to 86400000/,
    );
    expect(() => relayArgs({ listen: "l", connect: "c", silentTimeoutMs: 1.5 })).toThrow(RangeError);
  });
});

describe("buildRelay", () => {
  it("caches the binary under a name derived from the source and flags, and reuses it", async () => {
    expect(path.basename(bin)).toMatch(/^vhost-user-relay-[0-9a-f]{16}$/);
    expect(relayBinaryName("a")).not.toBe(relayBinaryName("b"));
    expect(relayBinaryName("a", ["-O2"])).not.toBe(relayBinaryName("a", ["-O0"]));

    const old = new Date(Math.floor(Date.now() / 1000) * 1000 - 3600_000); // whole seconds: exact in mtimeMs
    await utimes(bin, old, old);
    expect(await buildRelay()).toBe(bin);
    expect(Math.round((await stat(bin)).mtimeMs)).toBe(old.getTime());
  });

  it("says clearly when the compiler is missing", async () => {
    const prev = process.env.VMRIG_CACHE;
    process.env.VMRIG_CACHE = path.join(dir, "cache");
    try {
      const err = await buildRelay(undefined, { cc: path.join(dir, "no-such-gcc") }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HostError);
      expect((err as Error).message).toMatch(/no-such-gcc not found: vmrig compiles its vhost-user relay/);
    } finally {
      if (prev === undefined) delete process.env.VMRIG_CACHE;
      else process.env.VMRIG_CACHE = prev;
    }
  });

  it("honours an aborted signal", async () => {
    await expect(buildRelay(AbortSignal.abort(new Error("stop")))).rejects.toThrow("stop");
  });
});
