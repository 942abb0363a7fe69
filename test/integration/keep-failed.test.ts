// `vmrig run --keep-failed` with a real guest: a planned sysrq crash is classified CRASH as
// always, but QEMU pauses on the panic instead of exiting; after the reports vmrig prints how to
// attach, and while it waits gdb reads the paused vCPU through the gdbstub socket, `vmrig qmp`
// reads QEMU's status and dumps guest memory as an ELF core. SIGINT then ends the wait: the
// run's exit code, no QEMU or daemon left, the kept guest's sockets removed.
//
// Symbols: the guest copies its /proc/kallsyms to the share before the crash (the kept guest's
// share directory outlives the run), and the words on the paused vCPU's stack are resolved with
// it, as the kernel's own "?" frames are: panic and sysrq_handle_crash must be among them. One
// boot of Debian 7.3 (cached by setup), about a minute of guest time under TCG.
import { existsSync, readFileSync, rmSync, statSync, writeFileSync, openSync, readSync, closeSync } from "node:fs";
import { readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { execa } from "execa";
import type { RunResult } from "../../harness/types.ts";
import { guestProcessesWithEnv } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

const root = path.resolve(import.meta.dirname, "..", "..");
// Removed afterwards; a failed test's guest consoles are kept (the path is printed).
const tmp = testScratch("vmrig-test-keep-");
const results = path.join(tmp, "results");
const vmrig = (args: string[]) =>
  execa(process.execPath, [path.join(root, "bin/vmrig.js"), ...args], {
    reject: false,
    cwd: tmp,
    env: { VMRIG_RESULTS: results, CI: "1" },
  });

const scenario = `name: keep
machine: { arch: x86_64, memory: 512M, cpus: 1 }
kernels:
  deb73: { debian: { version: "7.3", flavour: cloud-amd64 }, expect: { sysrq-crash: CRASH } }
shares:
  - { tag: share }
workloads:
  - { id: kallsyms, shell: { command: "cat /proc/kallsyms > /mnt/share/kallsyms", expectExit: 0 } }
  - { id: sysrq-crash, shell: { command: "sleep 30", expectExit: 0 } }
faults:
  - { during: sysrq-crash, after: 2s, action: guest-sysrq-crash }
expect: { default: PASS }
`;

// The kill fault: virtiofsd dies mid-read, the read never ends (HANG); blocked-task stacks are saved.
const hangScenario = `name: keep-hang
machine: { arch: x86_64, memory: 512M, cpus: 1, cmdline: ["sysctl.kernel.hung_task_timeout_secs=2"] }
timeouts: { boot: 60, step: 5, liveness: 3 }
kernels:
  deb73: { debian: { version: "7.3", flavour: cloud-amd64 }, expect: { kill: HANG } }
shares:
  - { tag: share }
workloads:
  - { id: kill, read: { share: share, size: 32M, blockSize: 1M, direct: true, repeatFor: 3s } }
faults:
  - { during: kill, after: 1.5s, action: virtiofsd-kill, share: share }
expect: { default: PASS }
`;

/** Kernel text symbols from /proc/kallsyms, sorted by address. */
function textSymbols(kallsyms: string): Array<{ at: bigint; name: string }> {
  return kallsyms
    .split("\n")
    .map((l) => l.split(/\s+/))
    .filter((f) => f.length >= 3 && /^[tT]$/.test(f[1]!))
    .map((f) => ({ at: BigInt(`0x${f[0]}`), name: f[2]! }))
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
}

/** The function an address lies in (the last symbol at or below it), if it is kernel text. */
function symbolOf(symbols: Array<{ at: bigint; name: string }>, addr: bigint): string | undefined {
  if (addr < symbols[0]!.at || addr > symbols.at(-1)!.at + 0x10000n) return undefined;
  let lo = 0;
  let hi = symbols.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (symbols[mid]!.at <= addr) lo = mid;
    else hi = mid - 1;
  }
  return symbols[lo]!.name;
}

async function waitFor(text: () => string, needle: string, ms: number): Promise<void> {
  const started = Date.now();
  while (!text().includes(needle)) {
    if (Date.now() - started > ms) throw new Error(`never saw "${needle}":\n${text()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe("vmrig run --keep-failed", () => {
  it("keeps a crashed guest paused with a gdbstub until SIGINT, then stops everything", async () => {
    const file = path.join(tmp, "keep.yaml");
    writeFileSync(file, scenario);
    const hangFile = path.join(tmp, "keep-hang.yaml");
    writeFileSync(hangFile, hangScenario);
    // Two scenarios: each keeps its own first failing guest; both are held once both have run.
    const child = vmrig(["run", file, hangFile, "--keep-failed=10m"]);
    let out = "";
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.slice(out.indexOf("kept: keep-hang")), "vmrig stops it in 10m", 650_000);
      const gdbSockets = [...out.matchAll(/gdbstub on (\S+)/g)].map((m) => m[1]!);
      const qmpSockets = [...out.matchAll(/npx vmrig qmp (\S+) cont/g)].map((m) => m[1]!);
      expect(gdbSockets).toHaveLength(2);
      const [gdbSocket, hangGdbSocket] = gdbSockets as [string, string];
      const [qmpSocket, hangQmpSocket] = qmpSockets as [string, string];
      expect(out).toMatch(/kept: keep deb73 sysrq-crash \(CRASH\): QEMU paused/);
      expect(out).toContain(`gdb "$(npx vmrig kernel debug-symbols ${file} deb73)" -ex 'target remote ${gdbSocket}'`);
      expect(out).toMatch(/Debian's linux-image-7\.3\.4\+deb13-cloud-amd64-dbg 7\.3\.4-1~bpo13\+1 once/);

      // The reports are complete while the guest is kept.
      const [stamp] = readdirSync(path.join(results, "keep"));
      const run = JSON.parse(readFileSync(path.join(results, "keep", stamp!, "results.json"), "utf8")) as RunResult;
      expect(run.complete).toBe(true);
      const [listing, crash] = run.rows[0]!.cells;
      expect(listing!.outcome.kind).toBe("pass");
      expect(crash!.outcome).toMatchObject({
        kind: "crash",
        title: "Kernel panic - not syncing: sysrq triggered crash",
      });
      expect(crash!.evidence.keptForDebugger).toEqual({ gdbSocket, qmpSocket });
      expect(existsSync(path.join(results, "keep", stamp!, "report.html"))).toBe(true);

      // QEMU paused it on the panic, and answers QMP.
      const status = await vmrig(["qmp", qmpSocket, "query-status"]);
      expect(JSON.parse(status.stdout)).toEqual({ status: "guest-panicked", running: false });

      // gdb through the socket: the vCPU's stack, resolved with the guest's own symbols (nokaslr).
      const gdb = await execa(
        "gdb",
        ["-batch", "-nx", "-ex", `target remote ${gdbSocket}`, "-ex", "info registers rip", "-ex", "x/2048gx $sp"],
        { reject: false, timeout: 120_000 },
      );
      const symbols = textSymbols(readFileSync(path.join(path.dirname(gdbSocket), "shares/share/kallsyms"), "utf8"));
      const rip = BigInt(/^rip\s+(0x[0-9a-f]+)/m.exec(gdb.stdout)![1]!);
      expect(symbolOf(symbols, rip), gdb.stdout.slice(0, 400)).toBeDefined();
      const words = [...gdb.stdout.matchAll(/\b0x(ffffffff[0-9a-f]{8})\b/g)].map((m) => BigInt(`0x${m[1]}`));
      const onStack = new Set(words.map((w) => symbolOf(symbols, w)).filter(Boolean));
      expect(
        [...onStack].some((s) => /^v?panic$/.test(s!)),
        [...onStack].join(" "),
      ).toBe(true);
      expect(onStack).toContain("sysrq_handle_crash");

      // The one-liner that dumps guest memory writes an ELF core.
      const core = path.join(tmp, "guest.elf");
      const dump = await vmrig([
        "qmp",
        qmpSocket,
        "dump-guest-memory",
        JSON.stringify({ paging: false, protocol: `file:${core}` }),
      ]);
      expect(dump.exitCode, dump.stderr).toBe(0);
      const head = Buffer.alloc(4);
      const fd = openSync(core, "r");
      readSync(fd, head, 0, 4, 0);
      closeSync(fd);
      expect(head.toString("latin1")).toBe("\x7fELF");
      expect(statSync(core).size).toBeGreaterThan(512 * 1024 * 1024);
      rmSync(core);

      await checkKeptHang(out, hangGdbSocket, hangQmpSocket);

      child.kill("SIGINT");
      const r = await child;
      // Every cell met its expectation: the run's exit code, not the interruption's.
      expect(r.exitCode).toBe(0);
      expect(guestProcessesWithEnv("VMRIG_RESULTS", results)).toEqual([]);
      expect(existsSync(path.dirname(gdbSocket))).toBe(false);
      expect(existsSync(path.dirname(hangGdbSocket))).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  }, 900_000);
});

/** The hung guest: paused (not stopped, as a kill fault's guest is without --keep-failed), its stacks saved. */
async function checkKeptHang(out: string, gdbSocket: string, qmpSocket: string): Promise<void> {
  expect(out).toMatch(/kept: keep-hang deb73 kill \(HANG\): QEMU paused/);
  expect(out).toMatch(/saved: {2}deb73\/console\.log, deb73\/stacks-kill\.txt/);
  const [stamp] = readdirSync(path.join(results, "keep-hang"));
  const dir = path.join(results, "keep-hang", stamp!);
  const run = JSON.parse(readFileSync(path.join(dir, "results.json"), "utf8")) as RunResult;
  const cell = run.rows[0]!.cells[0]!;
  expect(cell.outcome).toMatchObject({ kind: "hang", what: expect.stringMatching(/wedged\); VM kept paused$/) });
  expect(cell.evidence).toMatchObject({
    vmStopped: "kept for a debugger (--keep-failed)",
    keptForDebugger: { gdbSocket, qmpSocket },
  });
  // The blocked reader's stack, from sysrq w before the pause: where a D-state task's stack is.
  expect(readFileSync(path.join(dir, "deb73", "stacks-kill.txt"), "utf8")).toMatch(/fuse|virtio_fs/);
  const status = await vmrig(["qmp", qmpSocket, "query-status"]);
  expect(JSON.parse(status.stdout)).toEqual({ status: "paused", running: false });
  const gdb = await execa("gdb", ["-batch", "-nx", "-ex", `target remote ${gdbSocket}`, "-ex", "info threads"], {
    reject: false,
    timeout: 120_000,
  });
  expect(gdb.stdout).toMatch(/\* 1 +Thread 1\.1 \(CPU#0 \[(halted|running)\]\) 0x[0-9a-f]+ in/);
  await checkBlockedTaskBacktrace(out, gdbSocket);
}

/**
 * The printed `hung:` line, run as printed (npx swapped for this checkout's vmrig): it fetches
 * Debian's DWARF vmlinux, and gdb prints the blocked reader's stack from the syscall down to
 * the FUSE wait, then puts the paused vCPU's registers back.
 */
async function checkBlockedTaskBacktrace(out: string, gdbSocket: string): Promise<void> {
  const line = out.slice(out.indexOf("kept: keep-hang")).match(/^ {2}hung: {3}(gdb -batch .+?) {3}\(/m)?.[1];
  expect(line).toContain(`-ex 'target remote ${gdbSocket}' -x `);
  const regs = `-ex 'info registers rip rsp'`;
  const command = line!.replace(/npx vmrig/g, `${process.execPath} ${path.join(root, "bin/vmrig.js")}`);
  const r = await execa("bash", ["-c", `${command.replace(" -x ", ` ${regs} -x `)} ${regs}`], {
    reject: false,
    timeout: 600_000,
    cwd: tmp,
    env: { VMRIG_RESULTS: results, CI: "1" },
  });
  expect(r.exitCode, r.stderr.slice(-2000)).toBe(0);
  const [, blocked] = r.stdout.split(/^(blocked task [\s\S]+?^\d+ blocked tasks?$)/m);
  expect(blocked, r.stdout.slice(-3000)).toMatch(/^blocked task \d+ \(vmrig-probe\), state 0x2:$/m);
  // An inlined frame has no address, so no " in " before its name.
  const frame = (name: string) => new RegExp(`^#\\d+ +(?:0x[0-9a-f]+ in )?${name} \\(`, "m");
  expect(blocked).toMatch(frame("schedule"));
  expect(blocked).toMatch(frame("fuse_\\w+"));
  expect(blocked).toMatch(frame("ksys_read"));
  expect(blocked).toMatch(/ in entry_SYSCALL_64 \(\) at arch\/x86\/entry\/entry_64\.S:\d+\n1 blocked task$/);
  const [before, after] = [...r.stdout.matchAll(/^rip +(0x[0-9a-f]+)[^\n]*\nrsp +(0x[0-9a-f]+)/gm)].map((m) => m[0]);
  expect(before).toBeDefined();
  expect(after).toBe(before);
}
