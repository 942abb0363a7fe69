// The serial console is vmrig's main witness: every byte the guest prints must reach
// console.log, even with the host loaded. Eight real guests at once on the 2-core host, a
// few rounds: each boots with a long marker on its kernel command line (the kernel echoes it
// in `Command line:` at its busiest, when the console replays the boot log), then is crashed
// with sysrq 'c' typed on the console, and every line of the panic report must be whole.
import { beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { resolveKernel } from "../../harness/kernels/provider.ts";
import { buildGuestImage } from "../../harness/image/build.ts";
import { provisionVirtiofsd } from "../../harness/virtiofs/provision.ts";
import { probeBoot, tcg } from "../../harness/qemu/accel.ts";
import { bootGuest, BootFailure, READY_MARKER, type BootRequest, type Guest } from "../../harness/guest/boot.ts";
import { generateClientKey } from "../../harness/guest/ssh.ts";
import { authKeyCmdlineWord } from "../../harness/image/guest-protocol.ts";
import type { GuestImage, KernelArtifact, KernelEntry } from "../../harness/types.ts";
import type { DaemonCommand } from "../../harness/virtiofs/daemon.ts";
import { QemuMachine } from "../../harness/qemu/machine.ts";
import { baseCmdline } from "../../harness/qemu/argv.ts";
import { ownGuestProcesses } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

const GUESTS = 8;
const ROUNDS = 2;
/** 333 characters the kernel has no reason to touch; any byte lost or doubled shows. */
const MARKER =
  "vmrig.marker=" + Array.from({ length: 20 }, (_, i) => `${String(i).padStart(2, "0")}-abcdefghijklm`).join("");

// Removed afterwards; when the test fails, every guest's console is kept (the path is printed).
const tmp = testScratch("vmrig-test-console-");

const signal = new AbortController().signal;
let kernel: KernelArtifact;
let image: GuestImage;
let virtiofsd: DaemonCommand;

beforeAll(async () => {
  const source = { kind: "debian" as const, version: "7.3", flavour: "cloud-amd64" };
  const entry: KernelEntry = { label: "lossless", source, cmdline: [], expect: {} };
  kernel = await resolveKernel(entry, { arch: "x86_64", signal, log: () => undefined });
  image = await buildGuestImage({ arch: "x86_64", kernel, signal, log: () => undefined });
  virtiofsd = await provisionVirtiofsd(signal);
});

/** Pure: every `Command line:` line of a console, and whether each carries the marker whole. */
function commandLines(consoleText: string): Array<{ line: string; whole: boolean }> {
  return consoleText
    .split("\n")
    .filter((l) => /\] (Kernel c|C)ommand line: /.test(l))
    .map((line) => ({ line: line.replace(/\r$/, ""), whole: line.replace(/\r$/, "").endsWith(MARKER) }));
}

/** Pure: what is wrong with the panic report of a sysrq 'c' (an empty list: every line whole). */
function panicReportFlaws(consoleText: string): string[] {
  const lines = consoleText.split("\n").map((l) => l.replace(/\r$/, ""));
  const from = lines.findIndex((l) => /\] sysrq: Trigger a crash$/.test(l));
  if (from < 0) return ["no `sysrq: Trigger a crash` line"];
  const to = lines.findIndex((l, i) => i > from && /\]\s+<\/TASK>$/.test(l));
  if (to < 0) return ["the trace has no `</TASK>` line"];
  const report = lines.slice(from, to + 1);
  // The tty echoes the typed command through a buffer while printk writes at once, so the
  // sysrq line may follow the echo's first half ("echo c >[  24.67] sysrq: ..."): guest output.
  report[0] = report[0]!.slice(report[0]!.search(/\[\s*\d+\.\d{6}\]/));
  const flaws: string[] = [];
  // Every line of the report is the kernel's: a printk timestamp, then text.
  for (const l of report) if (!/^\[\s*\d+\.\d{6}\] {1,2}\S/.test(l)) flaws.push(`torn line: ${JSON.stringify(l)}`);
  const text = report.map((l) => l.replace(/^\[\s*\d+\.\d+\] /, ""));
  const expected = [
    "Kernel panic - not syncing: sysrq triggered crash",
    "Call Trace:",
    " <TASK>",
    /^ sysrq_handle_crash\+0x[0-9a-f]+\/0x[0-9a-f]+$/,
    /^ __handle_sysrq(\.cold)?\+/,
    /^ write_sysrq_trigger\+/,
    /^ vfs_write\+/,
    /^ ksys_write\+/,
    /^ do_syscall_64\+/,
    /^ entry_SYSCALL_64_after_hwframe\+0x[0-9a-f]+\/0x[0-9a-f]+$/,
    /^RIP: 0033:0x[0-9a-f]+$/,
    /^RSP: 002b:[0-9a-f]{16} EFLAGS: [0-9a-f]{8} ORIG_RAX: 0000000000000001$/,
  ];
  let at = 0;
  for (const e of expected) {
    const i = text.findIndex((t, k) => k >= at && (typeof e === "string" ? t === e : e.test(t)));
    if (i < 0) flaws.push(`missing or torn: ${String(e)}`);
    else at = i + 1;
  }
  // The general-purpose registers: three 16-digit values a line, five lines.
  const regs = text.filter((t) => /^(RAX|RDX|RBP|R10|R13):/.test(t));
  if (regs.length !== 5) flaws.push(`${regs.length} register lines, not 5`);
  for (const r of regs) if (!/^(R\w\w: [0-9a-f]{16}( |$)){3}$/.test(r)) flaws.push(`torn registers: ${r}`);
  // Frames look like frames: " name+0xOFF/0xLEN" (or with "? "), nothing half-printed.
  const inTrace = text.slice(text.indexOf(" <TASK>") + 1, text.lastIndexOf(" </TASK>"));
  for (const t of inTrace) {
    if (/^(RIP|RSP|R\w\w|Code):/.test(t)) continue;
    if (!/^ (\? )?[\w.]+\+0x[0-9a-f]+\/0x[0-9a-f]+( \[\w+\])?$/.test(t)) flaws.push(`torn frame: ${JSON.stringify(t)}`);
  }
  return flaws;
}

/** A one-vCPU TCG guest of the test's kernel and image, its artifacts and sockets under `dir`. */
function oneCpuGuest(dir: string, cmdline: string[], bootTimeoutMs: number): BootRequest {
  return {
    arch: "x86_64",
    accel: tcg("x86_64", "test"),
    machine: { arch: "x86_64", memoryBytes: 512 << 20, cpus: 1, accel: "tcg", cmdline: [] },
    kernel,
    image,
    cmdline,
    shares: [],
    virtiofsd,
    clientKey: generateClientKey(),
    artifactsDir: dir,
    socketsDir: path.join(dir, "sock"),
    bootTimeoutMs,
    signal,
  };
}

async function bootOne(round: number, i: number): Promise<{ dir: string; guest?: Guest; failure?: string }> {
  const dir = path.join(tmp, "guests", `round-${round}`, `guest-${i}`);
  try {
    const guest = await bootGuest(oneCpuGuest(dir, [MARKER], 600_000));
    return { dir, guest };
  } catch (e) {
    return { dir, failure: e instanceof BootFailure ? `${e.kind}: ${e.reason}` : String(e) };
  }
}

/** Crash a booted guest from its console and let QEMU exit on the panic (pvpanic). */
async function crash(guest: Guest): Promise<void> {
  try {
    expect(guest.writeConsole("echo c > /proc/sysrq-trigger")).toBe(true);
    for (let i = 0; i < 1200 && !guest.qemuExit; i++) await new Promise((r) => setTimeout(r, 100));
  } finally {
    await guest.shutdown();
  }
}

describe("the serial console under load", () => {
  it(`keeps every byte: ${GUESTS} guests at once, ${ROUNDS} rounds, command line and panic report whole`, async () => {
    const problems: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const boots = await Promise.all(Array.from({ length: GUESTS }, (_, i) => bootOne(round, i)));
      await Promise.all(boots.flatMap((b) => (b.guest ? [crash(b.guest)] : [])));
      for (const b of boots) {
        const name = path.relative(tmp, b.dir);
        if (b.failure) problems.push(`${name}: boot failed: ${b.failure}`);
        const text = readFileSync(path.join(b.dir, "console.log"), "latin1");
        const cmd = commandLines(text);
        // x86 prints it twice: "Command line:" early, "Kernel command line:" once parsed.
        if (cmd.length < 2) problems.push(`${name}: ${cmd.length} Command line lines`);
        for (const c of cmd) if (!c.whole) problems.push(`${name}: command line cut: ${c.line.slice(0, 160)}...`);
        if (b.guest) for (const f of panicReportFlaws(text)) problems.push(`${name}: panic report: ${f}`);
        // vmrig's live view, followed from the file as it grew, ends up with exactly the file.
        if (b.guest && b.guest.consoleText() !== readFileSync(path.join(b.dir, "console.log"), "utf8")) {
          problems.push(`${name}: vmrig's view of the console differs from console.log`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(ownGuestProcesses()).toEqual([]);
  }, 1_800_000);
});

/**
 * A bare-metal aarch64 program QEMU's `-kernel` loads raw (no Linux header) and jumps to: it
 * writes `text` to the virt machine's PL011 data register at 0x09000000 as fast as the CPU
 * goes, never waiting on the FIFO, then sleeps forever. Hand-assembled, position-independent.
 */
function pl011Blob(text: string): Buffer {
  const code = [
    0xd2a12001, // movz x1, #0x0900, lsl #16     (x1 = PL011 base)
    0x100000e2, // adr  x2, text                 (28 bytes ahead)
    0x38401443, // loop: ldrb w3, [x2], #1
    0x34000063, // cbz  w3, done
    0x39000023, // strb w3, [x1]
    0x17fffffd, // b    loop
    0xd503207f, // done: wfi
    0x17ffffff, // b    done
  ];
  const head = Buffer.alloc(code.length * 4);
  code.forEach((w, i) => head.writeUInt32LE(w, i * 4));
  return Buffer.concat([head, Buffer.from(text, "latin1"), Buffer.from([0])]);
}

describe("the arm64 console (ttyAMA0, PL011)", () => {
  it("reaches console.log and vmrig's live view byte for byte, with vmrig's own aarch64 command line", async () => {
    const dir = path.join(tmp, "pl011");
    mkdirSync(dir, { recursive: true });
    const lines = Array.from({ length: 2000 }, (_, i) => `pl011 line ${String(i).padStart(4, "0")} ${MARKER}\r\n`);
    const text = `vmrig-a64: begin\r\n${lines.join("")}vmrig-a64: end\r\n`;
    writeFileSync(path.join(dir, "blob.bin"), pl011Blob(text));
    writeFileSync(path.join(dir, "initrd"), Buffer.alloc(4096));
    const m = await QemuMachine.launch(
      {
        arch: "aarch64",
        accel: "tcg",
        memoryBytes: 256 << 20,
        cpus: 1,
        kernelImage: path.join(dir, "blob.bin"),
        initrd: path.join(dir, "initrd"),
        cmdline: baseCmdline("aarch64", "tcg"),
        virtioFs: [],
        sshHostPort: 0,
        qmpSocket: path.join(dir, "qmp.sock"),
        consoleLog: path.join(dir, "console.log"),
      },
      { cmdline: path.join(dir, "qemu-cmdline.txt"), stderr: path.join(dir, "qemu-stderr.log") },
    );
    try {
      // The live view sees the last line (or QEMU died, and the comparison below says how).
      await Promise.race([m.waitForConsole("vmrig-a64: end\r\n"), m.exited]);
    } finally {
      await m.stop();
    }
    expect(readFileSync(path.join(dir, "console.log"), "latin1")).toBe(text);
    expect(m.consoleText()).toBe(text);
    expect(ownGuestProcesses()).toEqual([]);
  }, 300_000);
});

describe("the accelerator probe's console", () => {
  const guest = () => ({ kernel: kernel.image, initrd: image.initrd });
  it("sees the guest's ready marker through its file console, and says so", async () => {
    // TCG here: the probe's console path is the same as under KVM, only slower.
    const probe = { ...guest(), readyMarker: READY_MARKER };
    const verdict = await probeBoot("x86_64", probe, { accel: "tcg", deadlineMs: 180_000 });
    expect(verdict).toEqual({ ok: true, why: "probe guest booted" });
    expect(ownGuestProcesses()).toEqual([]);
  }, 240_000);

  it("gives up at its deadline when the marker never comes, leaving no QEMU behind", async () => {
    const probe = { ...guest(), readyMarker: "never printed" };
    const verdict = await probeBoot("x86_64", probe, { accel: "tcg", deadlineMs: 2_000 });
    expect(verdict).toEqual({ ok: false, why: "a probe guest did not boot within 2 s" });
    expect(ownGuestProcesses()).toEqual([]);
  }, 60_000);
});

describe("a guest that never lets vmrig in over SSH", () => {
  it("fails the boot with the last attempt's error and the guest's own account from its serial console", async () => {
    const dir = path.join(tmp, "locked-out");
    // The init script takes the last authkey word: this guest authorises a key vmrig does not hold.
    const stranger = authKeyCmdlineWord(generateClientKey().publicKey);
    const failure = await bootGuest(oneCpuGuest(dir, [stranger], 30_000)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(BootFailure);
    const { kind, reason } = failure as BootFailure;
    expect(kind).toBe("boot-fail");
    // The attempts were turned away at login, and the guest's own account names no other cause.
    expect(reason).toMatch(
      /^no SSH answer within 30 s; \d+ attempts: (.*, )?\d+x All configured authentication methods failed/,
    );
    expect(reason).toContain(`the guest printed "${READY_MARKER}"`);
    expect(reason).toMatch(
      /the guest says on its serial console: up \d+ s, setup done, dropbear running, listening on port 22, eth0 10\.0\.2\.15\/24, dropbear's last log line: .*Exit before auth/,
    );
    expect(readFileSync(path.join(dir, "console.log"), "utf8")).toContain("vmrig-setup-done");
    expect(ownGuestProcesses()).toEqual([]);
  }, 240_000);
});
