// Planned faults during one workload (a scenario's `faults:`), fired on timers from the moment
// the workload's command was sent:
//
//   virtiofsd-stop | -cont | -kill   SIGSTOP / SIGCONT / SIGKILL to the share's virtiofsd
//   virtiofsd-restart                SIGKILL it and start a new one on the same socket
//   guest-sysrq-crash                echo c > /proc/sysrq-trigger (SSH; the console if SSH fails)
//   network-cut                      remove the SSH forward and take the NIC link down (QMP)
//
// What the plan changes in a cell: a virtiofsd death it caused is not INFRA (the cell shows
// what the kernel did: usually HANG, then vmrig stops the VM); a network cut makes vmrig read
// the workload's result through the serial console. When the cell is over, a virtiofsd the
// plan stopped is continued, so teardown finds processes it can stop.
import type { FaultStep } from "../types.ts";
import type { Guest } from "../guest/boot.ts";

export interface FaultLogEntry {
  action: FaultStep["action"];
  share?: string;
  where: string;
  plannedMs: number;
  /** When it really fired, from the command's start; absent when it never did. */
  firedMs?: number;
  result: string;
}

type FaultGuest = Pick<Guest, "daemon" | "exec" | "writeConsole" | "cutNetwork" | "restartDaemon">;

export class FaultPlan {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly inFlight: Promise<void>[] = [];
  private readonly stopped = new Set<string>();
  private readonly killed = new Set<string>();
  private started = 0;
  private cutResolve!: () => void;
  readonly log: FaultLogEntry[];
  /** Settles when a planned network cut has happened. */
  readonly networkCut: Promise<void>;
  crashed = false;
  /** The cut has begun: SSH may drop before QEMU has answered both commands. */
  cutNetworkStarted = false;
  cutNetworkDone = false;

  constructor(
    private readonly guest: FaultGuest,
    readonly steps: FaultStep[],
  ) {
    this.log = steps.map((s) => ({
      action: s.action,
      ...(s.share ? { share: s.share } : {}),
      where: s.where,
      plannedMs: s.afterMs,
      result: "not fired: the workload finished first",
    }));
    this.networkCut = new Promise((r) => (this.cutResolve = r));
  }

  get cutsNetwork(): boolean {
    return this.steps.some((s) => s.action === "network-cut");
  }

  /** Daemons this plan killed: their death is the scenario's doing, not an infrastructure failure. */
  plannedDeath(reason: string): boolean {
    const m = /^virtiofsd\[(.+?)\] exited/.exec(reason);
    return Boolean(m && this.killed.has(m[1]!));
  }

  get killedDaemon(): boolean {
    return this.killed.size > 0;
  }

  start(): void {
    this.started = Date.now();
    this.steps.forEach((step, i) => {
      this.timers.push(
        setTimeout(() => {
          const entry = this.log[i]!;
          entry.firedMs = Date.now() - this.started;
          const p = this.fire(step).then(
            (result) => void (entry.result = result),
            (e: Error) => void (entry.result = `failed: ${e.message}`),
          );
          this.inFlight.push(p);
        }, step.afterMs),
      );
    });
  }

  /** One line for a cell's label: "virtiofsd-kill share at 2.0 s". */
  describeFired(): string {
    return this.log
      .filter((e) => e.firedMs !== undefined)
      .map((e) => `${e.action}${e.share ? ` ${e.share}` : ""} at ${(e.firedMs! / 1000).toFixed(1)} s`)
      .join(", ");
  }

  unfired(): FaultLogEntry[] {
    return this.log.filter((e) => e.firedMs === undefined);
  }

  private async fire(step: FaultStep): Promise<string> {
    const daemon = () => {
      const d = step.share ? this.guest.daemon(step.share) : undefined;
      if (!d) throw new Error(`no virtiofsd for share ${step.share}`);
      return d;
    };
    switch (step.action) {
      case "virtiofsd-stop":
        daemon().signal("SIGSTOP");
        this.stopped.add(step.share!);
        return `SIGSTOP to pid ${daemon().pid}`;
      case "virtiofsd-cont":
        daemon().signal("SIGCONT");
        this.stopped.delete(step.share!);
        return `SIGCONT to pid ${daemon().pid}`;
      case "virtiofsd-kill": {
        this.killed.add(step.share!);
        const pid = daemon().pid;
        daemon().signal("SIGKILL");
        this.stopped.delete(step.share!);
        return `SIGKILL to pid ${pid}`;
      }
      case "virtiofsd-restart": {
        this.killed.add(step.share!);
        const pid = daemon().pid;
        this.stopped.delete(step.share!);
        await this.guest.restartDaemon(step.share!);
        return `SIGKILL to pid ${pid}, new virtiofsd pid ${daemon().pid} listening on the same socket`;
      }
      case "guest-sysrq-crash": {
        this.crashed = true;
        // The command never returns (the guest panics): do not wait for it, but if SSH refuses
        // it at once, type it on the console instead.
        const r = await Promise.race([
          this.guest.exec("echo c > /proc/sysrq-trigger", 10_000),
          new Promise<undefined>((res) => setTimeout(() => res(undefined), 1000)),
        ]);
        if (r && r.kind === "exited" && r.code !== 0) {
          this.guest.writeConsole("echo c > /proc/sysrq-trigger");
          return "sysrq c via the console (SSH refused it)";
        }
        return "sysrq c via SSH";
      }
      case "network-cut": {
        this.cutNetworkStarted = true;
        const said = await this.guest.cutNetwork();
        this.cutNetworkDone = true;
        this.cutResolve();
        return said;
      }
    }
  }

  /** Cancel what has not fired, wait for what is firing, continue stopped daemons. */
  async finish(): Promise<FaultLogEntry[]> {
    this.timers.forEach(clearTimeout);
    await Promise.allSettled(this.inFlight);
    for (const tag of this.stopped) {
      try {
        this.guest.daemon(tag)?.signal("SIGCONT");
      } catch {
        // already gone
      }
    }
    this.stopped.clear();
    return this.log;
  }
}
