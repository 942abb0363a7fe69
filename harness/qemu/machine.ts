// One QEMU process and everything it owns: argv, console log, QMP socket. `stop()` tears it all
// down whatever state it is in and is safe to call twice (the qemu.machine way).
// QEMU writes console.log itself (a chardev logfile, every byte once); vmrig's view of the
// console is that file, followed as it grows. QEMU's stderr goes to its own file.
import { createWriteStream, type WriteStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { spawnChild, stopChild, type Child } from "../util/children.ts";
import { buildQemuArgv, formatCommandLine, qemuOptionValue, type BootPlan } from "./argv.ts";
import { ConsoleText } from "./console-text.ts";
import { FileTail } from "./console-tail.ts";
import { QmpClient, parseForwardedSshPort } from "./qmp.ts";

export interface MachineExit {
  code: number | null;
  signal: string | null;
  /** pvpanic + `-action panic=exit-failure`: status 1 means the guest kernel panicked. */
  guestPanicked: boolean;
  stderr: string;
}

export class QemuMachine {
  private readonly console = new ConsoleText();
  private readonly tail: FileTail;
  private stderr = "";
  private readonly stderrLog: WriteStream;
  private exitInfo: MachineExit | undefined;
  private stopping = false;
  private panicPaused = false;
  private events?: QmpClient;
  readonly exited: Promise<MachineExit>;

  private constructor(
    private readonly child: Child,
    private readonly plan: BootPlan,
    readonly commandLine: string,
    consoleFile: string,
    stderrFile: string,
  ) {
    this.tail = new FileTail(consoleFile, (bytes) => this.console.appendBytes(bytes));
    this.stderrLog = createWriteStream(stderrFile);
    this.stderrLog.on("error", () => undefined);
    child.stdin?.on("error", () => undefined); // QEMU gone: EPIPE is not vmrig's crash
    child.stderr?.on("data", (d: Buffer) => {
      this.stderr += d.toString("utf8");
      this.stderrLog.write(d);
    });
    this.exited = child.then(async (r) => {
      // Whether vmrig was stopping it when it exited, before the reads below give stop() a turn.
      const guestPanicked = r.exitCode === 1 && !this.stopping;
      // Everything QEMU logged before it exited is in the view before anyone hears of the exit.
      await this.tail.close();
      this.console.end();
      this.exitInfo = { code: r.exitCode ?? null, signal: r.signal ?? null, guestPanicked, stderr: this.stderr };
      await new Promise((res) => this.stderrLog.end(res));
      return this.exitInfo;
    });
  }

  /**
   * Start QEMU; the command line is written to `cmdline` before anything runs. The console
   * goes to `plan.consoleLog` (created empty here, so it can be followed from the start).
   */
  static async launch(plan: BootPlan, files: { cmdline: string; stderr: string }): Promise<QemuMachine> {
    const { binary, args } = buildQemuArgv(plan);
    const commandLine = formatCommandLine(binary, args);
    await writeFile(files.cmdline, commandLine + "\n");
    await writeFile(plan.consoleLog, "");
    // stdin is a pipe: the serial console's input (writeConsole), vmrig's way in without SSH.
    // stdout is /dev/null: the console's output is in the logfile (argv.ts says why).
    const child = spawnChild(binary, args, { stdin: "pipe", stdout: "ignore", stderr: "pipe" });
    const m = new QemuMachine(child, plan, commandLine, plan.consoleLog, files.stderr);
    if (plan.onPanic?.action === "pause") void m.watchPanics(plan.onPanic.eventsSocket);
    return m;
  }

  /** With `panic=pause`, a panic leaves QEMU running: its GUEST_PANICKED event (or status) says so. */
  private async watchPanics(eventsSocket: string): Promise<void> {
    while (!this.exitInfo && !this.stopping) {
      try {
        const qmp = await QmpClient.connect(eventsSocket);
        this.events = qmp;
        qmp.onEvent = (name) => void (name === "GUEST_PANICKED" && (this.panicPaused = true));
        // A panic before the connection was made: the status still says it.
        const status = (await qmp.execute("query-status")) as { status?: string };
        if (status.status === "guest-panicked") this.panicPaused = true;
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** The guest kernel panicked and QEMU paused it (`panic=pause`); QEMU still runs. */
  get pausedOnPanic(): boolean {
    return this.panicPaused;
  }

  /** Pause the guest's vCPUs and serve gdb's remote protocol on a UNIX socket (a kept guest). */
  async pauseWithGdbstub(gdbSocket: string): Promise<void> {
    const qmp = await QmpClient.connect(this.plan.qmpSocket);
    try {
      await qmp.execute("stop");
      const said = await qmp.hmp(`gdbserver unix:${qemuOptionValue(gdbSocket)},server=on,wait=off`);
      if (/error|fail|could not/i.test(said)) throw new Error(`QEMU's gdbserver: ${said.trim()}`);
    } finally {
      qmp.close();
    }
  }

  /** The console as far as it has been read (the last 32 MiB of it at most). */
  consoleText(): string {
    return this.console.text();
  }

  /** An offset for `consoleSince`: how much console text has been read so far. */
  consoleLength(): number {
    return this.console.length;
  }

  /** The console text from `offset` (a `consoleLength()` taken earlier) on. */
  consoleSince(offset: number): string {
    return this.console.since(offset);
  }

  /** Read console.log up to its current end now, rather than at the next change notification. */
  catchUpConsole(): Promise<void> {
    return this.tail.read();
  }

  /** Type on the guest's serial console (QEMU's stdio chardev reads our pipe). */
  writeConsole(text: string): boolean {
    const stdin = this.child.stdin;
    if (!stdin || stdin.destroyed || this.exitInfo) return false;
    return stdin.write(text) || true;
  }

  stderrText(): string {
    return this.stderr;
  }

  get exit(): MachineExit | undefined {
    return this.exitInfo;
  }

  waitForConsole(needle: string): Promise<void> {
    return this.console.waitFor(needle);
  }

  /** The host port QEMU bound for the guest's sshd (we ask for port 0: no collisions). */
  async sshPort(qmpSocket: string, deadlineMs: number): Promise<number> {
    const start = Date.now();
    let lastError = "";
    while (Date.now() - start < deadlineMs) {
      if (this.exitInfo)
        throw new Error(
          `QEMU exited (${this.exitInfo.code ?? this.exitInfo.signal}): ${this.stderr.trim().slice(-300)}`,
        );
      try {
        const qmp = await QmpClient.connect(qmpSocket);
        try {
          const port = parseForwardedSshPort(await qmp.hmp("info usernet"));
          if (port) return port;
          lastError = "no SSH forward in `info usernet`";
        } finally {
          qmp.close();
        }
      } catch (e) {
        lastError = (e as Error).message;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`QMP did not report the SSH port: ${lastError}`);
  }

  async stop(): Promise<MachineExit> {
    this.stopping = this.exitInfo === undefined;
    this.events?.close();
    await stopChild(this.child, 1500);
    return this.exited;
  }
}
