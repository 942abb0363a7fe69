// bootGuest: one fresh guest with its virtio-fs daemons, QEMU and an SSH shell, owned as one
// unit. The runner sees a Guest and never QEMU flags; `shutdown()` is the one place that stops
// every process of this guest, in any state, and is safe to call twice.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { Arch, GuestImage, KernelArtifact, MachineSpec, ShareSpec } from "../types.ts";
import type { Accelerator } from "../qemu/accel.ts";
import { baseCmdline, type BootPlan, type QemuCommand } from "../qemu/argv.ts";
import { QemuMachine, type MachineExit } from "../qemu/machine.ts";
import { QmpClient } from "../qemu/qmp.ts";
import type { SupervisedDaemon } from "../virtiofs/daemon.ts";
import { ShareChain, type ShareDaemons } from "../virtiofs/share-chain.ts";
import { GuestShell, type ClientKey, type ExecResult } from "./ssh.ts";
import { consoleRun } from "./console-shell.ts";
import { SSH_DIAGNOSIS_COMMAND, summarizeSshDiagnosis } from "./ssh-diagnosis.ts";
import { BootTimeline, CONSOLE_MILESTONES, type BootPhase } from "./boot-phases.ts";

import {
  authKeyCmdlineWord,
  guestInitErrors,
  GUEST_READY_COMMAND,
  GUEST_READY_MARKER as READY_MARKER,
} from "../image/guest-protocol.ts";
export { GUEST_READY_MARKER as READY_MARKER } from "../image/guest-protocol.ts";

export interface BootRequest extends ShareDaemons {
  arch: Arch;
  accel: Accelerator;
  machine: MachineSpec;
  kernel: KernelArtifact;
  image: GuestImage;
  /** Kernel command line words beyond vmrig's own (scenario + kernel entry). */
  cmdline: string[];
  shares: Array<{ spec: ShareSpec; hostDir: string }>;
  clientKey: ClientKey;
  /** Where logs and the command line go (kept as artifacts). */
  artifactsDir: string;
  /** Scratch for sockets. */
  socketsDir: string;
  bootTimeoutMs: number;
  signal?: AbortSignal;
  /** QEMU additions for VFIO scenarios: memory backend, virtio-mem, vfio-pci, a vIOMMU, extra devices. */
  qemuExtras?: Pick<BootPlan, "memoryBackend" | "virtioMem" | "vfio" | "viommu" | "extraDevices">;
  /** The row's QEMU build (`qemu:`); default: the host's. */
  qemu?: QemuCommand;
  /** A guest panic pauses QEMU instead of ending it, so the guest can be kept for a debugger. */
  pauseOnPanic?: boolean;
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
  /** The guest kernel panicked: QEMU exited through pvpanic, or paused on it (`pauseOnPanic`). */
  panicked(): boolean;
  /** Pause the vCPUs and serve gdb on `gdbSocket`; the processes live on until `shutdown()`. */
  keepForDebugger(gdbSocket: string): Promise<void>;
  daemon(tag: string): SupervisedDaemon | undefined;
  /** Type a line on the serial console (a root shell reads it: harness/image/init-files.ts). */
  writeConsole(line: string): boolean;
  /** Planned fault: remove the SSH forward and take the NIC's link down. Returns what QEMU said. */
  cutNetwork(): Promise<string>;
  /** Planned fault: SIGKILL a share's virtiofsd and start a new one on the same socket. */
  restartDaemon(tag: string): Promise<void>;
  shutdown(): Promise<MachineExit | undefined>;
  /** `await using guest = await bootGuest(...)` shuts it down when the scope ends. */
  [Symbol.asyncDispose](): Promise<void>;
}

export function bootGuest(req: BootRequest): Promise<Guest> {
  return QemuGuest.launch(req);
}

/**
 * The guest's processes (share chains, QEMU) and its shell, owned in one place. Phases in order:
 * shares, QEMU, shell; a failure in any stops everything started so far, and `shutdown()` is the
 * one place that stops every process in any state, safe to call twice.
 */
class QemuGuest implements Guest {
  private readonly started = Date.now();
  private readonly timeline = new BootTimeline(this.started);
  private readonly shares: ShareChain[] = [];
  private machine?: QemuMachine;
  private sshShell?: GuestShell;
  private sshPort = 0;
  private down?: Promise<MachineExit | undefined>;
  bootMs = 0;

  private constructor(private readonly req: BootRequest) {}

  static async launch(req: BootRequest): Promise<Guest> {
    const guest = new QemuGuest(req);
    try {
      await mkdir(req.artifactsDir, { recursive: true });
      await mkdir(req.socketsDir, { recursive: true });
      await guest.startShares();
      await guest.startQemu();
      await guest.connectShell();
      return guest;
    } catch (e) {
      await guest.shutdown();
      if (e instanceof BootFailure) throw e;
      throw new BootFailure("infra", (e as Error).message, guest.machine?.consoleText() ?? "");
    }
  }

  private async startShares(): Promise<void> {
    const { req } = this;
    for (const [index, { spec, hostDir }] of req.shares.entries()) {
      const chain = await ShareChain.start({
        spec,
        hostDir,
        index,
        socketsDir: req.socketsDir,
        logsDir: req.artifactsDir,
        virtiofsd: req.virtiofsd,
        ...(req.relay ? { relay: req.relay } : {}),
        ...(req.virtiofsdLogLevel ? { virtiofsdLogLevel: req.virtiofsdLogLevel } : {}),
        ...(req.signal ? { signal: req.signal } : {}),
      }).catch((e: Error) => {
        throw new BootFailure("infra", e.message, "");
      });
      this.shares.push(chain);
    }
    if (this.shares.length) this.timeline.mark("daemons");
  }

  private get qmpSocket(): string {
    return path.join(this.req.socketsDir, "qmp.sock");
  }

  private async startQemu(): Promise<void> {
    const { req } = this;
    const m = await QemuMachine.launch(
      {
        arch: req.arch,
        accel: req.accel.name,
        memoryBytes: req.machine.memoryBytes,
        cpus: req.machine.cpus,
        kernelImage: req.kernel.image,
        initrd: req.image.initrd,
        cmdline: [
          ...baseCmdline(req.arch, req.accel.name, req.machine.tcgPageZeroing),
          authKeyCmdlineWord(req.clientKey.publicKey),
          ...req.cmdline,
        ],
        virtioFs: this.shares.map((c) => c.device),
        sshHostPort: 0,
        qmpSocket: this.qmpSocket,
        consoleLog: path.join(req.artifactsDir, "console.log"),
        ...(req.pauseOnPanic
          ? { onPanic: { action: "pause", eventsSocket: path.join(req.socketsDir, "qmp-events.sock") } as const }
          : {}),
        ...req.qemuExtras,
        ...(req.qemu && req.qemu.source !== "host" ? { qemu: req.qemu } : {}),
      },
      {
        cmdline: path.join(req.artifactsDir, "qemu-cmdline.txt"),
        stderr: path.join(req.artifactsDir, "qemu-stderr.log"),
      },
    );
    this.machine = m;
    for (const { phase, needle } of CONSOLE_MILESTONES)
      void m.waitForConsole(needle).then(() => this.timeline.mark(phase));
    this.sshPort = await m.sshPort(this.qmpSocket, 10_000).catch(async (e: Error) => {
      await m.catchUpConsole();
      throw new BootFailure("infra", `QEMU did not start: ${lastLine(m.stderrText()) || e.message}`, m.consoleText());
    });
    this.timeline.mark("qemu");
  }

  private async connectShell(): Promise<void> {
    const { req } = this;
    const m = this.qemu;
    // The console marker says the NIC is up and sshd was started: SSH attempts before it only waste
    // time. It is a hint, not proof (a command that returns is), so wait for it a third of the deadline.
    await Promise.race([
      m.waitForConsole(READY_MARKER),
      m.exited,
      new Promise((r) => setTimeout(r, req.bootTimeoutMs / 3).unref()),
    ]);
    const target = {
      host: "127.0.0.1",
      port: this.sshPort,
      hostKeyPublic: req.image.hostKeyPublic,
      key: req.clientKey,
    };
    this.sshShell = await GuestShell.connect(target, {
      deadlineMs: req.bootTimeoutMs,
      signal: req.signal,
      stillBooting: () => this.deathReason(),
      readyCommand: GUEST_READY_COMMAND,
    }).catch(async (e: Error) => {
      throw await this.noShell(e);
    });
    this.timeline.mark("command");
    this.bootMs = Date.now() - this.started;
  }

  /** Why no shell came: QEMU or a daemon died, the guest's init failed, or SSH never answered. */
  private async noShell(e: Error): Promise<BootFailure> {
    const m = this.qemu;
    // The verdict reads the whole console as QEMU logged it, not as far as the tail got.
    await m.catchUpConsole();
    const dead = this.deathReason();
    const daemonDied = this.shares.some((c) => c.anyDeathReason());
    const initErrors = guestInitErrors(m.consoleText());
    let reason = dead ?? (initErrors.length ? `guest init failed: ${initErrors.join("; ")}` : undefined);
    reason ??= withReadiness(e.message || "no SSH answer", m.consoleText()) + (await this.guestSideOfSsh());
    return new BootFailure(daemonDied ? "infra" : "boot-fail", reason, m.consoleText());
  }

  /** The guest's own account of SSH, asked on the serial console (its reply is in console.log too). */
  private async guestSideOfSsh(): Promise<string> {
    const r = await consoleRun(this, SSH_DIAGNOSIS_COMMAND, 10_000);
    await this.qemu.catchUpConsole();
    if (r.kind !== "exited") return `; the serial console did not answer either (${r.kind})`;
    return `; the guest says on its serial console: ${summarizeSshDiagnosis(r.stdout)}`;
  }

  private get qemu(): QemuMachine {
    if (!this.machine) throw new Error("QEMU is not started");
    return this.machine;
  }

  get shell(): GuestShell {
    if (!this.sshShell) throw new Error("the guest has no shell yet");
    return this.sshShell;
  }

  get bootPhases(): BootPhase[] {
    return this.timeline.list();
  }

  get commandLine(): string {
    return this.qemu.commandLine;
  }

  get qemuExit(): MachineExit | undefined {
    return this.machine?.exit;
  }

  exec(command: string, deadlineMs: number): Promise<ExecResult> {
    return this.shell.exec(command, { deadlineMs });
  }

  consoleText(): string {
    return this.qemu.consoleText();
  }

  consoleLength(): number {
    return this.qemu.consoleLength();
  }

  consoleSince(offset: number): string {
    return this.qemu.consoleSince(offset);
  }

  catchUpConsole(): Promise<void> {
    return this.qemu.catchUpConsole();
  }

  panicked(): boolean {
    return Boolean(this.machine?.exit?.guestPanicked || this.machine?.pausedOnPanic);
  }

  async keepForDebugger(gdbSocket: string): Promise<void> {
    // SSH waits on a paused guest; its session has nothing more to do.
    this.sshShell?.close();
    await this.qemu.pauseWithGdbstub(gdbSocket);
  }

  deathReason(): string | undefined {
    if (this.machine?.pausedOnPanic) return "guest kernel panicked (pvpanic; QEMU paused the guest)";
    const e = this.machine?.exit;
    if (e)
      return e.guestPanicked
        ? "guest kernel panicked (pvpanic)"
        : `QEMU exited (${e.signal ? `signal ${e.signal}` : `status ${e.code}`})`;
    // Per share, the chain virtiofsd <- relay names the daemon that failed first; then any
    // other (a virtiofsd a planned fault killed and replaced).
    return (
      this.shares.map((c) => c.deathReason()).find(Boolean) ?? this.shares.map((c) => c.anyDeathReason()).find(Boolean)
    );
  }

  daemon(tag: string): SupervisedDaemon | undefined {
    return this.shares.find((c) => c.tag === tag)?.virtiofsd;
  }

  writeConsole(line: string): boolean {
    return this.qemu.writeConsole(line.endsWith("\n") ? line : line + "\n");
  }

  async cutNetwork(): Promise<string> {
    const qmp = await QmpClient.connect(this.qmpSocket);
    try {
      const said = await qmp.hmp(`hostfwd_remove n0 tcp:127.0.0.1:${this.sshPort}`);
      await qmp.execute("set_link", { name: "n0", up: false });
      return said.trim() || `hostfwd tcp:127.0.0.1:${this.sshPort} removed, link n0 down`;
    } finally {
      qmp.close();
    }
  }

  async restartDaemon(tag: string): Promise<void> {
    const chain = this.shares.find((c) => c.tag === tag);
    if (!chain) throw new Error(`no virtiofsd for share ${tag}`);
    await chain.restartVirtiofsd();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  shutdown(): Promise<MachineExit | undefined> {
    return (this.down ??= (async () => {
      this.sshShell?.close();
      const exit = await this.machine?.stop();
      await Promise.all(this.shares.map((c) => c.stop()));
      return exit;
    })());
  }
}

/** Pure: an SSH failure's reason, saying whether the guest had announced sshd on its console. */
export function withReadiness(reason: string, consoleText: string): string {
  return consoleText.includes(READY_MARKER)
    ? `${reason} (the guest printed "${READY_MARKER}": its network and sshd were started)`
    : `${reason} (the guest never printed "${READY_MARKER}")`;
}

function lastLine(s: string): string {
  return s.trim().split("\n").filter(Boolean).pop() ?? "";
}
