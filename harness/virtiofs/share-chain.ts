// One share's daemons as one unit: virtiofsd, and the ACCESS_PLATFORM relay in front of it when
// the share asks for one. The chain starts in order (each socket listening before the next
// daemon or QEMU connects), names the daemon that failed first, and stops everything it started.
import { rm } from "node:fs/promises";
import path from "node:path";
import type { ShareSpec } from "../types.ts";
import {
  chainDeathReason,
  SupervisedDaemon,
  virtiofsdArgs,
  waitForListeningSocket,
  type DaemonCommand,
} from "./daemon.ts";

export interface ShareDaemons {
  virtiofsd: DaemonCommand;
  /** The ACCESS_PLATFORM relay binary; needed when a share asks for accessPlatform. */
  relay?: { command: DaemonCommand; args: (listen: string, connect: string, log: string) => string[] };
  virtiofsdLogLevel?: string;
}

export interface ShareChainRequest extends ShareDaemons {
  spec: ShareSpec;
  hostDir: string;
  /** Index of the share in the machine: names its sockets. */
  index: number;
  socketsDir: string;
  /** Where the daemons' logs go. */
  logsDir: string;
  signal?: AbortSignal;
}

/** What QEMU connects to for this share. */
export interface VirtioFsDevice {
  tag: string;
  socketPath: string;
  queueSize: number;
  iommuPlatform: boolean;
}

/** A share's setup failed: the message says which daemon and why. */
export class ShareStartError extends Error {}

const LISTEN_TIMEOUT_MS = 10_000;

export class ShareChain {
  private readonly daemons: SupervisedDaemon[] = [];
  /** Every daemon ever started, a replaced virtiofsd included: stop() reaches them all. */
  private readonly started: SupervisedDaemon[] = [];
  private readonly vfsSocket: string;

  private constructor(private readonly req: ShareChainRequest) {
    this.vfsSocket = path.join(req.socketsDir, `virtiofsd-${req.index}.sock`);
  }

  /** Start the chain; on failure everything it started is stopped before the error. */
  static async start(req: ShareChainRequest): Promise<ShareChain> {
    const chain = new ShareChain(req);
    try {
      await chain.launch();
      return chain;
    } catch (e) {
      await chain.stop();
      throw e instanceof ShareStartError ? e : new ShareStartError((e as Error).message);
    }
  }

  get tag(): string {
    return this.req.spec.tag;
  }

  /** The share's virtiofsd (the one serving now, after a restart). */
  get virtiofsd(): SupervisedDaemon {
    return this.daemons[0]!;
  }

  /** QEMU's end of the chain, once started. */
  device!: VirtioFsDevice;

  private async launch(): Promise<void> {
    const { spec } = this.req;
    await this.startVirtiofsd();
    let qemuSocket = this.vfsSocket;
    if (spec.accessPlatform) qemuSocket = await this.startRelay();
    this.device = {
      tag: spec.tag,
      socketPath: qemuSocket,
      queueSize: spec.queueSize,
      iommuPlatform: spec.accessPlatform,
    };
  }

  private async startVirtiofsd(): Promise<SupervisedDaemon> {
    const { spec, hostDir, virtiofsdLogLevel, logsDir } = this.req;
    const args = virtiofsdArgs(spec, this.vfsSocket, hostDir, virtiofsdLogLevel);
    const log = path.join(logsDir, `virtiofsd-${spec.tag}.log`);
    const vfs = this.track(SupervisedDaemon.start(`virtiofsd[${spec.tag}]`, this.req.virtiofsd, args, log));
    this.daemons[0] = vfs;
    await this.listening(this.vfsSocket, vfs);
    return vfs;
  }

  private async startRelay(): Promise<string> {
    const { spec, relay, index, socketsDir, logsDir } = this.req;
    if (!relay)
      throw new ShareStartError(
        `share ${spec.tag} asks for accessPlatform but the relay is not built (run: npm run setup)`,
      );
    const socket = path.join(socketsDir, `relay-${index}.sock`);
    const log = path.join(logsDir, `relay-${spec.tag}.log`);
    const daemon = SupervisedDaemon.start(
      `relay[${spec.tag}]`,
      relay.command,
      relay.args(socket, this.vfsSocket, log),
      log + ".stderr",
    );
    this.daemons[1] = this.track(daemon);
    await this.listening(socket, daemon);
    return socket;
  }

  private track(d: SupervisedDaemon): SupervisedDaemon {
    this.started.push(d);
    return d;
  }

  private listening(socket: string, daemon: SupervisedDaemon): Promise<void> {
    return waitForListeningSocket(socket, { timeoutMs: LISTEN_TIMEOUT_MS, daemon, signal: this.req.signal });
  }

  /** Why this share no longer serves, naming the daemon that failed first; undefined while it does. */
  deathReason(): string | undefined {
    return chainDeathReason(this.daemons.map((d) => d.exit));
  }

  /** Why any daemon this chain ever started is gone (a virtiofsd a planned fault replaced included). */
  anyDeathReason(): string | undefined {
    return this.started.map((d) => d.deathReason).find(Boolean);
  }

  /** A planned fault: SIGKILL virtiofsd and start a fresh one on the same socket. */
  async restartVirtiofsd(): Promise<void> {
    const old = this.virtiofsd;
    old.signal("SIGKILL");
    await old.exited;
    await rm(this.vfsSocket, { force: true });
    await this.startVirtiofsd();
  }

  async stop(): Promise<void> {
    await Promise.all(this.started.map((d) => d.stop()));
  }
}
