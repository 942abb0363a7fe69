// One QEMU process and everything it owns: argv, console log, QMP socket. `stop()` tears it all
// down whatever state it is in and is safe to call twice (the qemu.machine way).
import { createWriteStream, type WriteStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { spawnChild, stopChild, type Child } from "../util/children.ts";
import { buildQemuArgv, formatCommandLine, type BootPlan } from "./argv.ts";
import { QmpClient, parseForwardedSshPort } from "./qmp.ts";

export interface MachineExit {
  code: number | null;
  signal: string | null;
  /** pvpanic + `-action panic=exit-failure`: status 1 means the guest kernel panicked. */
  guestPanicked: boolean;
  stderr: string;
}

export class QemuMachine {
  private console = "";
  private stderr = "";
  private consoleLog: WriteStream;
  private exitInfo: MachineExit | undefined;
  private stopping = false;
  readonly exited: Promise<MachineExit>;
  private consoleWaiters: Array<{ needle: string; resolve: () => void }> = [];

  private constructor(
    private readonly child: Child,
    readonly commandLine: string,
    consoleFile: string,
  ) {
    this.consoleLog = createWriteStream(consoleFile);
    child.stdout?.on("data", (d: Buffer) => {
      const s = d.toString("utf8");
      this.console += s;
      this.consoleLog.write(d);
      this.consoleWaiters = this.consoleWaiters.filter((w) => {
        if (!this.console.includes(w.needle)) return true;
        w.resolve();
        return false;
      });
    });
    child.stderr?.on("data", (d: Buffer) => {
      this.stderr += d.toString("utf8");
      this.consoleLog.write(d);
    });
    this.exited = child.then((r) => {
      this.exitInfo = {
        code: r.exitCode ?? null,
        signal: r.signal ?? null,
        guestPanicked: r.exitCode === 1 && !this.stopping,
        stderr: this.stderr,
      };
      this.consoleLog.end();
      return this.exitInfo;
    });
  }

  /** Start QEMU; the command line is written to `cmdlineFile` before anything runs. */
  static async launch(plan: BootPlan, files: { console: string; cmdline: string }): Promise<QemuMachine> {
    const { binary, args } = buildQemuArgv(plan);
    const commandLine = formatCommandLine(binary, args);
    await writeFile(files.cmdline, commandLine + "\n");
    // stdin is a pipe: the serial console's input (writeConsole), vmrig's way in without SSH.
    const child = spawnChild(binary, args, { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    return new QemuMachine(child, commandLine, files.console);
  }

  consoleText(): string {
    return this.console;
  }

  /** Type on the guest's serial console (QEMU's stdio chardev reads our pipe). */
  writeConsole(text: string): boolean {
    const stdin = this.child.stdin;
    if (!stdin || stdin.destroyed || this.exitInfo) return false;
    stdin.on("error", () => undefined); // QEMU gone: EPIPE is not vmrig's crash
    return stdin.write(text) || true;
  }

  stderrText(): string {
    return this.stderr;
  }

  get exit(): MachineExit | undefined {
    return this.exitInfo;
  }

  waitForConsole(needle: string): Promise<void> {
    if (this.console.includes(needle)) return Promise.resolve();
    return new Promise((resolve) => this.consoleWaiters.push({ needle, resolve }));
  }

  /** The host port QEMU bound for the guest's sshd (we ask for port 0: no collisions). */
  async sshPort(qmpSocket: string, deadlineMs: number): Promise<number> {
    const start = Date.now();
    let lastError = "";
    while (Date.now() - start < deadlineMs) {
      if (this.exitInfo) throw new Error(`QEMU exited (${this.exitInfo.code ?? this.exitInfo.signal}): ${this.stderr.trim().slice(-300)}`);
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
    await stopChild(this.child, 1500);
    return this.exited;
  }
}
