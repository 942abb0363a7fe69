// Real QEMU against a real virtiofsd: with `iommu_platform=on`, QEMU refuses virtiofsd directly
// (it does not offer VIRTIO_F_ACCESS_PLATFORM) and accepts it through the relay. No guest
// kernel: `-S` halts the CPU, and QEMU already does GET_FEATURES while realizing the device.
//
// virtiofsd comes from vmrig's own provisioning (the system one, else trixie's, unpacked).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { buildRelay, relayArgs, relayReadyLine } from "../../harness/virtiofs/relay.ts";
import { isListening } from "../../harness/virtiofs/daemon.ts";
import { provisionVirtiofsd, type VirtiofsdCommand } from "../../harness/virtiofs/provision.ts";

const qemu = "qemu-system-x86_64";
const qemuFound = (process.env.PATH ?? "").split(":").some((d) => d && existsSync(path.join(d, qemu)));
const skipReason = !qemuFound ? `${qemu} not on PATH (run npm run setup)` : "";
if (skipReason) console.warn(`relay-qemu: skipped: ${skipReason}`);
let virtiofsd: VirtiofsdCommand;

interface Proc {
  name: string;
  child: ChildProcess;
  out: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let dir: string;
let procs: Proc[] = [];

/** Starts a process in its own process group (so a wrapper script and its child die together). */
function start(name: string, file: string, args: string[]): Proc {
  const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once("exit", (code, signal) => r({ code, signal })),
  );
  const p = { name, child, out: () => out, exit };
  procs.push(p);
  return p;
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs: number, p?: Proc): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (p && (p.child.exitCode !== null || p.child.signalCode !== null)) {
      throw new Error(`${p.name} exited while waiting for ${what}:\n${p.out()}`);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${p ? `:\n${p.out()}` : ""}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function listening(sock: string): Promise<boolean> {
  return isListening(await readFile("/proc/net/unix", "utf8"), sock);
}

/** virtiofsd serves one frontend and exits when it leaves: never probe its socket by connecting. */
async function startVirtiofsd(tag: string): Promise<{ proc: Proc; sock: string }> {
  const sock = path.join(dir, `vfsd-${tag}.sock`);
  const shared = path.join(dir, "share");
  await mkdir(shared, { recursive: true });
  const proc = start(`virtiofsd[${tag}]`, virtiofsd.argv0, [
    ...virtiofsd.prefixArgs,
    "--socket-path",
    sock,
    "--shared-dir",
    shared,
    "--sandbox",
    "none",
  ]);
  await until(`virtiofsd socket ${sock}`, () => listening(sock), 15_000, proc);
  return { proc, sock };
}

function qemuArgs(chardevPath: string, qmp: string): string[] {
  return [
    "-m",
    "512M",
    "-object",
    "memory-backend-memfd,id=mem,size=512M,share=on",
    "-numa",
    "node,memdev=mem",
    "-chardev",
    `socket,id=vfs0,path=${chardevPath}`,
    "-device",
    "vhost-user-fs-pci,id=vfs,chardev=vfs0,tag=share,iommu_platform=on",
    "-machine",
    "q35,accel=tcg",
    "-display",
    "none",
    "-S",
    "-qmp",
    `unix:${qmp},server=on,wait=off`,
  ];
}

/** A minimal QMP client: one command at a time, events skipped. */
class Qmp {
  private buf = "";
  private lines: string[] = [];
  private wake: (() => void) | undefined;
  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf("\n")) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 1);
      }
      this.wake?.();
    });
    sock.on("error", () => undefined);
  }

  static async connect(p: string): Promise<Qmp> {
    const sock = net.createConnection(p);
    await new Promise<void>((resolve, reject) => {
      sock.once("connect", () => resolve());
      sock.once("error", reject);
    });
    const q = new Qmp(sock);
    await q.read(); // greeting
    await q.cmd("qmp_capabilities");
    return q;
  }

  private async read(): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) {
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (!("event" in msg)) return msg;
        continue;
      }
      if (Date.now() > deadline) throw new Error("QMP: no answer");
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  async cmd(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    this.sock.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + "\n");
    const r = await this.read();
    if ("error" in r) throw new Error(`QMP ${execute}: ${JSON.stringify(r.error)}`);
    return r.return;
  }

  close(): void {
    this.sock.destroy();
  }
}

describe.skipIf(skipReason !== "")(
  `vhost-user relay with real QEMU and virtiofsd${skipReason ? ` (skipped: ${skipReason})` : ""}`,
  () => {
    let relayBin: string;

    beforeAll(async () => {
      relayBin = await buildRelay();
      virtiofsd = await provisionVirtiofsd(new AbortController().signal);
    }, 300_000);

    beforeEach(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "vmrig-relay-qemu-"));
      procs = [];
    });

    afterEach(async () => {
      for (const p of procs) {
        if (p.child.pid && groupAlive(p.child.pid)) process.kill(-p.child.pid, "SIGKILL");
      }
      await Promise.all(procs.map((p) => p.exit));
      for (const p of procs) {
        if (p.child.pid) await until(`${p.name}'s process group to be gone`, () => !groupAlive(p.child.pid!), 5000);
      }
      await rm(dir, { recursive: true, force: true });
    });

    it("QEMU refuses iommu_platform=on directly against virtiofsd", async () => {
      const vfsd = await startVirtiofsd("direct");
      const q = start("qemu", qemu, qemuArgs(vfsd.sock, path.join(dir, "qmp.sock")));
      const exit = await Promise.race([
        q.exit,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`QEMU still running:\n${q.out()}`)), 30_000),
        ),
      ]);
      expect(exit.code).toBe(1);
      expect(q.out()).toContain("iommu_platform=true is not supported by the device");
      // virtiofsd saw its client come and go, and shuts down by itself.
      expect(await vfsd.proc.exit).toEqual({ code: 0, signal: null });
    }, 60_000);

    it("QEMU accepts it through the relay, stays up, and everything exits cleanly on quit", async () => {
      const vfsd = await startVirtiofsd("relay");
      const relaySock = path.join(dir, "relay.sock");
      const relayLog = path.join(dir, "relay.log");
      const relay = start("relay", relayBin, relayArgs({ listen: relaySock, connect: vfsd.sock, log: relayLog }));
      await until("the relay's ready line", () => relay.out().includes(relayReadyLine(relaySock)), 10_000, relay);
      expect(await listening(relaySock)).toBe(true);

      const qmpSock = path.join(dir, "qmp.sock");
      const q = start("qemu", qemu, qemuArgs(relaySock, qmpSock));
      await until("QEMU's QMP socket", () => listening(qmpSock), 30_000, q);
      const qmp = await Qmp.connect(qmpSock);
      try {
        // Device realized with ACCESS_PLATFORM; CPU halted by -S; still alive a second later.
        expect(await qmp.cmd("qom-get", { path: "/machine/peripheral/vfs", property: "iommu_platform" })).toBe(true);
        await new Promise((r) => setTimeout(r, 1000));
        expect(await qmp.cmd("query-status")).toMatchObject({ running: false, status: "prelaunch" });
        expect(q.child.exitCode).toBeNull();

        const log = await readFile(relayLog, "utf8");
        expect(log).toMatch(
          /back->front GET_FEATURES\(1\) flags=0x5 size=8 fds=0 features 0x[0-9a-f]+ -> 0x[0-9a-f]+ \(added 0x200000000\)/,
        );
        // The backend channel's socket went through as an fd.
        expect(log).toMatch(/front->back SET_BACKEND_REQ_FD\(21\) flags=0x9 size=0 fds=1/);

        await qmp.cmd("quit");
      } finally {
        qmp.close();
      }
      expect(await q.exit).toEqual({ code: 0, signal: null });
      expect(await relay.exit).toEqual({ code: 0, signal: null });
      expect(await vfsd.proc.exit).toEqual({ code: 0, signal: null });
      expect(await readFile(relayLog, "utf8")).toMatch(/frontend closed the connection\n.*exit 0/);
    }, 90_000);
  },
);
