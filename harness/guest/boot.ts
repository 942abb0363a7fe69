// bootGuest: one fresh guest with its virtio-fs daemons, QEMU and an SSH shell, owned as one
// unit. The runner sees a Guest and never QEMU flags; `shutdown()` is the one place that stops
// every process of this guest, in any state, and is safe to call twice.
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import type { Arch, GuestImage, KernelArtifact, MachineSpec, ShareSpec } from "../types.ts";
import type { Accelerator } from "../qemu/accel.ts";
import { baseCmdline, type BootPlan, type QemuCommand } from "../qemu/argv.ts";
import { QemuMachine, type MachineExit } from "../qemu/machine.ts";
import { QmpClient } from "../qemu/qmp.ts";
import {
  chainDeathReason,
  SupervisedDaemon,
  virtiofsdArgs,
  waitForListeningSocket,
  type DaemonCommand,
} from "../virtiofs/daemon.ts";
import { GuestShell, type ClientKey, type ExecResult } from "./ssh.ts";
import { consoleRun } from "./console-shell.ts";
import { BootTimeline, CONSOLE_MILESTONES, type BootPhase } from "./boot-phases.ts";

import {
  authKeyCmdlineWord,
  guestInitErrors,
  GUEST_READY_COMMAND,
  GUEST_SSH_DIAGNOSIS_COMMAND,
  GUEST_READY_MARKER as READY_MARKER,
} from "../image/guest-protocol.ts";
export { GUEST_READY_MARKER as READY_MARKER } from "../image/guest-protocol.ts";

export interface BootRequest {
  arch: Arch;
  accel: Accelerator;
  machine: MachineSpec;
  kernel: KernelArtifact;
  image: GuestImage;
  /** Kernel command line words beyond vmrig's own (scenario + kernel entry). */
  cmdline: string[];
  shares: Array<{ spec: ShareSpec; hostDir: string }>;
  virtiofsd: DaemonCommand;
  /** The ACCESS_PLATFORM relay binary; needed when a share asks for accessPlatform. */
  relay?: { command: DaemonCommand; args: (listen: string, connect: string, log: string) => string[] };
  virtiofsdLogLevel?: string;
  clientKey: ClientKey;
  /** Where logs and the command line go (kept as artifacts). */
  artifactsDir: string;
  /** Scratch for sockets. */
  socketsDir: string;
  bootTimeoutMs: number;
  signal?: AbortSignal;
  /** QEMU additions for VFIO scenarios (issue 7): memory backend, virtio-mem, vfio-pci, a vIOMMU, extra devices. */
  qemuExtras?: Pick<BootPlan, "memoryBackend" | "virtioMem" | "vfio" | "viommu" | "extraDevices">;
  /** The row's QEMU build (`qemu:`); default: the host's. */
  qemu?: QemuCommand;
}

/** A boot that did not reach a shell: `infra` when vmrig or the host failed, else the kernel. */
export class BootFailure extends Error {
  constructor(
    readonly kind: "boot-fail" | "infra",
    readonly reason: string,
    readonly console: string,
  ) {
    super(reason);
  }
}

export interface Guest {
  readonly shell: GuestShell;
  readonly bootMs: number;
  /** Where the boot's seconds went: milestones on the host's clock since the boot started. */
  readonly bootPhases: BootPhase[];
  readonly commandLine: string;
  exec(command: string, deadlineMs: number): Promise<ExecResult>;
  /** The console as read so far (console.log holds all of it). */
  consoleText(): string;
  /** An offset for `consoleSince`: how much console text has been read so far. */
  consoleLength(): number;
  /** The console text from `offset` (a `consoleLength()` taken earlier) on: only the new part. */
  consoleSince(offset: number): string;
  /** Read console.log up to its end now (before a verdict that must see everything printed). */
  catchUpConsole(): Promise<void>;
  /** Why the guest can no longer be trusted to answer (QEMU or a daemon died), if it can't. */
  deathReason(): string | undefined;
  readonly qemuExit: MachineExit | undefined;
  daemon(tag: string): SupervisedDaemon | undefined;
  /** Type a line on the serial console (a root shell reads it: harness/image/init-files.ts). */
  writeConsole(line: string): boolean;
  /** Planned fault: remove the SSH forward and take the NIC's link down. Returns what QEMU said. */
  cutNetwork(): Promise<string>;
  /** Planned fault: SIGKILL a share's virtiofsd and start a new one on the same socket. */
  restartDaemon(tag: string): Promise<void>;
  shutdown(): Promise<MachineExit | undefined>;
}

export async function bootGuest(req: BootRequest): Promise<Guest> {
  const started = Date.now();
  const timeline = new BootTimeline(started);
  await mkdir(req.artifactsDir, { recursive: true });
  await mkdir(req.socketsDir, { recursive: true });
  const daemons: SupervisedDaemon[] = [];
  const byTag = new Map<string, SupervisedDaemon[]>();
  const starters = new Map<string, { socket: string; start: () => SupervisedDaemon }>();
  let machine: QemuMachine | undefined;
  let shell: GuestShell | undefined;
  let down: Promise<MachineExit | undefined> | undefined;

  const shutdown = () =>
    (down ??= (async () => {
      shell?.close();
      const exit = await machine?.stop();
      await Promise.all(daemons.map((d) => d.stop()));
      return exit;
    })());

  try {
    const devices = [];
    for (const [i, { spec, hostDir }] of req.shares.entries()) {
      const vfsSock = path.join(req.socketsDir, `virtiofsd-${i}.sock`);
      const startVfs = () =>
        SupervisedDaemon.start(
          `virtiofsd[${spec.tag}]`,
          req.virtiofsd,
          virtiofsdArgs(spec, vfsSock, hostDir, req.virtiofsdLogLevel),
          path.join(req.artifactsDir, `virtiofsd-${spec.tag}.log`),
        );
      const vfs = startVfs();
      starters.set(spec.tag, { socket: vfsSock, start: startVfs });
      daemons.push(vfs);
      byTag.set(spec.tag, [vfs]);
      await waitForListeningSocket(vfsSock, { timeoutMs: 10_000, daemon: vfs, signal: req.signal }).catch(
        (e: Error) => {
          throw new BootFailure("infra", e.message, "");
        },
      );
      let qemuSock = vfsSock;
      if (spec.accessPlatform) {
        if (!req.relay)
          throw new BootFailure(
            "infra",
            `share ${spec.tag} asks for accessPlatform but the relay is not built (run: npm run setup)`,
            "",
          );
        const relaySock = path.join(req.socketsDir, `relay-${i}.sock`);
        const relayLog = path.join(req.artifactsDir, `relay-${spec.tag}.log`);
        const relay = SupervisedDaemon.start(
          `relay[${spec.tag}]`,
          req.relay.command,
          req.relay.args(relaySock, vfsSock, relayLog),
          relayLog + ".stderr",
        );
        daemons.push(relay);
        byTag.get(spec.tag)!.push(relay);
        await waitForListeningSocket(relaySock, { timeoutMs: 10_000, daemon: relay, signal: req.signal }).catch(
          (e: Error) => {
            throw new BootFailure("infra", e.message, "");
          },
        );
        qemuSock = relaySock;
      }
      devices.push({
        tag: spec.tag,
        socketPath: qemuSock,
        queueSize: spec.queueSize,
        iommuPlatform: spec.accessPlatform,
      });
    }

    if (req.shares.length) timeline.mark("daemons");
    const qmpSocket = path.join(req.socketsDir, "qmp.sock");
    machine = await QemuMachine.launch(
      {
        arch: req.arch,
        accel: req.accel.name,
        memoryBytes: req.machine.memoryBytes,
        cpus: req.machine.cpus,
        kernelImage: req.kernel.image,
        initrd: req.image.initrd,
        cmdline: [...baseCmdline(req.arch), authKeyCmdlineWord(req.clientKey.publicKey), ...req.cmdline],
        virtioFs: devices,
        sshHostPort: 0,
        qmpSocket,
        consoleLog: path.join(req.artifactsDir, "console.log"),
        ...req.qemuExtras,
        ...(req.qemu && req.qemu.source !== "host" ? { qemu: req.qemu } : {}),
      },
      {
        cmdline: path.join(req.artifactsDir, "qemu-cmdline.txt"),
        stderr: path.join(req.artifactsDir, "qemu-stderr.log"),
      },
    );
    const m = machine;
    for (const { phase, needle } of CONSOLE_MILESTONES) void m.waitForConsole(needle).then(() => timeline.mark(phase));
    const port = await m.sshPort(qmpSocket, 10_000).catch(async (e: Error) => {
      await m.catchUpConsole();
      throw new BootFailure("infra", `QEMU did not start: ${lastLine(m.stderrText()) || e.message}`, m.consoleText());
    });
    timeline.mark("qemu");

    const deathReason = () => {
      const e = m.exit;
      if (e)
        return e.guestPanicked
          ? "guest kernel panicked (pvpanic)"
          : `QEMU exited (${e.signal ? `signal ${e.signal}` : `status ${e.code}`})`;
      // Per share, the chain virtiofsd <- relay names the daemon that failed first; then any
      // other (a virtiofsd a planned fault killed and replaced).
      for (const chain of byTag.values()) {
        const r = chainDeathReason(chain.map((d) => d.exit));
        if (r) return r;
      }
      return daemons.map((d) => d.deathReason).find(Boolean);
    };

    // The console marker says the NIC is up and sshd was started: SSH attempts before it only waste
    // time. It is a hint, not proof (a command that returns is), so wait for it a third of the deadline.
    await Promise.race([
      m.waitForConsole(READY_MARKER),
      m.exited,
      new Promise((r) => setTimeout(r, req.bootTimeoutMs / 3).unref()),
    ]);
    shell = await GuestShell.connect(
      { host: "127.0.0.1", port, hostKeyPublic: req.image.hostKeyPublic, key: req.clientKey },
      {
        deadlineMs: req.bootTimeoutMs,
        signal: req.signal,
        stillBooting: deathReason,
        readyCommand: GUEST_READY_COMMAND,
      },
    ).catch(async (e: Error) => {
      // The verdict reads the whole console as QEMU logged it, not as far as the tail got.
      await m.catchUpConsole();
      const dead = deathReason();
      const daemonDied = daemons.some((d) => d.deathReason);
      const initErrors = guestInitErrors(m.consoleText());
      let noAnswer = withReadiness(e.message || "no SSH answer", m.consoleText());
      if (!dead && !initErrors.length) noAnswer += await guestSideOfSsh(m);
      const reason = dead ?? (initErrors.length ? `guest init failed: ${initErrors.join("; ")}` : noAnswer);
      throw new BootFailure(daemonDied ? "infra" : "boot-fail", reason, m.consoleText());
    });

    const s = shell;
    timeline.mark("command");
    return {
      shell: s,
      bootMs: Date.now() - started,
      bootPhases: timeline.list(),
      commandLine: m.commandLine,
      exec: (command, deadlineMs) => s.exec(command, { deadlineMs }),
      consoleText: () => m.consoleText(),
      consoleLength: () => m.consoleLength(),
      consoleSince: (offset) => m.consoleSince(offset),
      catchUpConsole: () => m.catchUpConsole(),
      deathReason,
      get qemuExit() {
        return m.exit;
      },
      daemon: (tag) => byTag.get(tag)?.[0],
      writeConsole: (line) => m.writeConsole(line.endsWith("\n") ? line : line + "\n"),
      async cutNetwork() {
        const qmp = await QmpClient.connect(qmpSocket);
        try {
          const said = await qmp.hmp(`hostfwd_remove n0 tcp:127.0.0.1:${port}`);
          await qmp.execute("set_link", { name: "n0", up: false });
          return said.trim() || `hostfwd tcp:127.0.0.1:${port} removed, link n0 down`;
        } finally {
          qmp.close();
        }
      },
      async restartDaemon(tag) {
        const starter = starters.get(tag);
        const old = byTag.get(tag)?.[0];
        if (!starter || !old) throw new Error(`no virtiofsd for share ${tag}`);
        old.signal("SIGKILL");
        await old.exited;
        await rm(starter.socket, { force: true });
        const fresh = starter.start();
        daemons.push(fresh);
        byTag.get(tag)![0] = fresh;
        await waitForListeningSocket(starter.socket, { timeoutMs: 10_000, daemon: fresh });
      },
      shutdown,
    };
  } catch (e) {
    await shutdown();
    if (e instanceof BootFailure) throw e;
    throw new BootFailure("infra", (e as Error).message, machine?.consoleText() ?? "");
  }
}

/** Pure: an SSH failure's reason, saying whether the guest had announced sshd on its console. */
export function withReadiness(reason: string, consoleText: string): string {
  return consoleText.includes(READY_MARKER)
    ? `${reason} (the guest printed "${READY_MARKER}": sshd was started but did not answer)`
    : `${reason} (the guest never printed "${READY_MARKER}")`;
}

/** The guest's own account of SSH, asked on the serial console (its reply is in console.log too). */
async function guestSideOfSsh(m: QemuMachine): Promise<string> {
  const r = await consoleRun(
    {
      writeConsole: (line) => m.writeConsole(line + "\n"),
      consoleLength: () => m.consoleLength(),
      consoleSince: (offset) => m.consoleSince(offset),
      deathReason: () => (m.exit ? "QEMU exited" : undefined),
    },
    GUEST_SSH_DIAGNOSIS_COMMAND,
    10_000,
  );
  await m.catchUpConsole();
  if (r.kind !== "exited") return `; the serial console did not answer either (${r.kind})`;
  return `; the guest said on its serial console:\n${r.stdout.trim()}`;
}

function lastLine(s: string): string {
  return s.trim().split("\n").filter(Boolean).pop() ?? "";
}
