// A minimal QMP client: newline-delimited JSON over the UNIX socket QEMU creates. Only the few
// commands vmrig needs (read the forwarded SSH port, pause, gdbserver); events go to `onEvent`.
import net from "node:net";

export class QmpClient {
  private buffer = "";
  private waiting: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  /** Called with each asynchronous event's name ("GUEST_PANICKED"). */
  onEvent: (name: string) => void = () => undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (line) this.onMessage(JSON.parse(line) as Record<string, unknown>);
      }
    });
    const fail = (e: Error) => this.waiting.splice(0).forEach((w) => w.reject(e));
    socket.on("error", fail);
    socket.on("close", () => fail(new Error("QMP connection closed")));
  }

  static async connect(path: string): Promise<QmpClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(path, () => resolve(s));
      s.once("error", reject);
    });
    const client = new QmpClient(socket);
    await client.nextReply(); // greeting
    await client.execute("qmp_capabilities");
    return client;
  }

  private onMessage(msg: Record<string, unknown>): void {
    if ("event" in msg) return this.onEvent(String(msg.event));
    const w = this.waiting.shift();
    if (!w) return;
    if ("error" in msg) w.reject(new Error(`QMP error: ${JSON.stringify(msg.error)}`));
    else w.resolve(msg.return ?? msg);
  }

  private nextReply(): Promise<unknown> {
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const reply = this.nextReply();
    this.socket.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + "\n");
    return reply;
  }

  async hmp(commandLine: string): Promise<string> {
    return String(await this.execute("human-monitor-command", { "command-line": commandLine }));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Pure: the host port QEMU's user network forwards to guest port 22, from `info usernet`. */
export function parseForwardedSshPort(infoUsernet: string): number | undefined {
  const m = /HOST_FORWARD\]\s+\d+\s+\S+\s+(\d+)\s+\S+\s+22\b/.exec(infoUsernet);
  return m ? Number(m[1]) : undefined;
}
