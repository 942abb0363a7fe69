// --keep-failed's pure parts: the duration and outcome options, which guest a scenario keeps
// (outcomes classified from real captured consoles), the attach instructions, QEMU's panic
// arguments, and `vmrig qmp`'s arguments.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { CellOutcome } from "../../harness/types.ts";
import {
  attachInstructions,
  BLOCKED_TASKS_GDB,
  formatDuration,
  GuestKeeper,
  keepPolicy,
  normalizeKeepArgs,
  parseDuration,
  type KeptGuestInfo,
} from "../../harness/run/keep-failed.ts";
import { debianDebugPackage } from "../../harness/kernels/debian-debug.ts";
import { lostGuestVerdict, timedOutVerdict, verdictAfterFaults } from "../../harness/classify/cell-outcome.ts";
import { firstFatalFinding } from "../../harness/classify/console-witness.ts";
import { buildQemuArgv, panicArgs } from "../../harness/qemu/argv.ts";
import { qmpArguments } from "../../harness/commands/qmp.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { VmrigError } from "../../harness/util/errors.ts";

const consoleText = (f: string) => readFileSync(path.join(repoRoot, "test/fixtures/consoles", f), "utf8");
// A real sysrq panic (Debian 7.3), as the cell's rules classify it once SSH is gone.
const crash: CellOutcome = lostGuestVerdict({
  workloadId: "sysrq-crash",
  error: "the guest kernel panicked",
  crash: firstFatalFinding(consoleText("x86-7.3-sysrq-panic.log"), 0),
  guestPanicked: true,
  consoleSinceStart: "",
}).outcome;
const hang: CellOutcome = timedOutVerdict({
  workloadId: "kill",
  stepMs: 60_000,
  firedFaults: "virtiofsd-kill share at 1.5 s",
  liveness: { ok: false, detail: "no answer in 10 s" },
}).outcome;
const fail: CellOutcome = { kind: "fail", detail: "exit 1, expected 0" };
const enomem: CellOutcome = { kind: "errno", errno: "ENOMEM", mountHealthy: true };

describe("--keep-failed options", () => {
  it("parses durations in s, m, h and their sums", () => {
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration("10m")).toBe(600_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    for (const bad of ["", "10", "m", "1.5h", "-1m", "10 m", "0s", "1d"]) expect(parseDuration(bad)).toBeUndefined();
    expect(formatDuration(5_400_000)).toBe("1h30m");
    expect(formatDuration(90_000)).toBe("1m30s");
  });

  it("defaults to 30 minutes on hang and crash; names the bad value", () => {
    expect(keepPolicy(undefined, undefined)).toBeUndefined();
    expect(keepPolicy(true, undefined)).toEqual({ durationMs: 1_800_000, on: ["hang", "crash"] });
    expect(keepPolicy("90s", "fail,HANG, crash,fail")).toEqual({ durationMs: 90_000, on: ["fail", "hang", "crash"] });
    expect(() => keepPolicy("soon", undefined)).toThrow(/--keep-failed takes a duration.*"soon"/);
    expect(() => keepPolicy("10m", "hang,boom")).toThrow(/--keep-failed-on: unknown outcome "boom"/);
    expect(() => keepPolicy(undefined, "hang")).toThrow(VmrigError);
  });

  it("a bare --keep-failed takes the default instead of the next argument", () => {
    expect(normalizeKeepArgs(["--keep-failed", "s.yaml", "--keep-failed=5m"])).toEqual([
      "--keep-failed=30m",
      "s.yaml",
      "--keep-failed=5m",
    ]);
  });
});

describe("which guest is kept", () => {
  it("the first cell of a scenario with a kept outcome claims its guest, no later one", () => {
    expect(crash.kind).toBe("crash");
    const keeper = new GuestKeeper(keepPolicy("10m", undefined)!);
    expect(keeper.wantsPanics()).toBe(true);
    expect(keeper.claim(fail)).toBe(false);
    expect(keeper.claim(enomem)).toBe(false);
    expect(keeper.claim(hang)).toBe(true);
    // A later crash (another row under --jobs) is not kept, and panics need no pause any more.
    expect(keeper.claim(crash)).toBe(false);
    expect(keeper.wantsPanics()).toBe(false);
  });

  it("keeps FAIL and errno guests only when asked, and never pauses panics without crash", () => {
    const keeper = new GuestKeeper(keepPolicy("10m", "fail,errno")!);
    expect(keeper.wantsPanics()).toBe(false);
    expect(keeper.claim(crash)).toBe(false);
    expect(keeper.claim(enomem)).toBe(true);
    expect(new GuestKeeper(keepPolicy("10m", "fail")!).claim(fail)).toBe(true);
  });

  it("a kept HANG after a killed virtiofsd says the VM was kept paused, not stopped", () => {
    const faults = { unfired: [], networkCut: false, killedDaemon: true, crashed: false };
    const what = (vmKept: boolean) =>
      (
        verdictAfterFaults({ outcome: hang, guestSpoiled: true }, { ...faults, vmKept }, "kill", 20_000).outcome as {
          what: string;
        }
      ).what;
    expect(what(false)).toMatch(/; VM stopped$/);
    expect(what(true)).toMatch(/wedged\); VM kept paused$/);
  });

  it("releases every kept guest once", async () => {
    const keeper = new GuestKeeper(keepPolicy(true, undefined)!);
    let released = 0;
    keeper.add(info(), async () => void released++);
    expect(keeper.guests).toHaveLength(1);
    await keeper.releaseAll();
    await keeper.releaseAll();
    expect(released).toBe(1);
    expect(keeper.guests).toHaveLength(0);
  });
});

function info(over: Partial<KeptGuestInfo> = {}): KeptGuestInfo {
  return {
    scenario: "keep",
    scenarioFile: "/s/keep.yaml",
    kernel: "built",
    arch: "x86_64",
    workload: "sysrq-crash",
    outcome: "CRASH",
    gdbSocket: "/tmp/vmrig-built-Ab12/gdb.sock",
    qmpSocket: "/tmp/vmrig-built-Ab12/sock/qmp.sock",
    files: ["built/console.log"],
    ...over,
  };
}

describe("attach instructions", () => {
  it("a built kernel: gdb on its vmlinux, the QMP dump, resume, and when vmrig stops it", () => {
    const text = attachInstructions(info({ vmlinux: "/c/kernels/build/k1/vmlinux" }), 600_000);
    expect(text).toBe(
      [
        "kept: keep built sysrq-crash (CRASH): QEMU paused, gdbstub on /tmp/vmrig-built-Ab12/gdb.sock",
        "  gdb:    gdb /c/kernels/build/k1/vmlinux -ex 'target remote /tmp/vmrig-built-Ab12/gdb.sock'" +
          "   (then: info threads, thread apply all bt; gdb's continue resumes the guest)",
        "  memory: npx vmrig qmp /tmp/vmrig-built-Ab12/sock/qmp.sock dump-guest-memory " +
          `'{"paging":false,"protocol":"file:/tmp/vmrig-guest.elf"}'` +
          `   (ELF core: crash, drgn; add "format":"kdump-zlib" for a kdump file)`,
        "  resume: npx vmrig qmp /tmp/vmrig-built-Ab12/sock/qmp.sock cont" +
          "   pause again: npx vmrig qmp /tmp/vmrig-built-Ab12/sock/qmp.sock stop",
        "  saved:  built/console.log",
        "  vmrig stops it in 10m, or now on Ctrl-C (SIGINT) or SIGTERM.",
      ].join("\n"),
    );
  });

  it("a Debian kernel: its -dbg package, as the archive's Packages index names it", () => {
    // The artifact of Debian 7.3.4 cloud-amd64 as vmrig resolves it; the captured index lists its -dbg package.
    const index = readFileSync(path.join(repoRoot, "test/fixtures/debian/trixie-backports_amd64.Packages"), "utf8");
    const a = {
      identity: "debian:linux-binary-7.3.4+deb13-cloud-amd64=7.3.4-1~bpo13+1",
      release: "7.3.4+deb13-cloud-amd64",
      arch: "x86_64" as const,
    };
    const pkg = debianDebugPackage(a, "http://deb.debian.org/debian")!;
    expect(index).toContain(`Package: ${pkg.name}\nSource: linux\nVersion: ${pkg.version}\n`);
    expect(index).toContain(`Filename: ${pkg.url.replace("http://deb.debian.org/debian/", "")}\n`);
    expect(pkg.vmlinux).toBe("/usr/lib/debug/boot/vmlinux-7.3.4+deb13-cloud-amd64");
    const text = attachInstructions(info({ kernel: "deb73", debugPackage: pkg }), 1_800_000);
    expect(text).toContain(`gdb "$(npx vmrig kernel debug-symbols /s/keep.yaml deb73)" -ex 'target remote `);
    expect(text).toContain(`  symbols: npx vmrig kernel debug-symbols /s/keep.yaml deb73\n`);
    expect(text).toContain(`Debian's ${pkg.name} 7.3.4-1~bpo13+1 once`);
    expect(debianDebugPackage({ ...a, identity: "path:/k/bzImage" }, "http://m")).toBeUndefined();
  });

  it("a hung x86_64 guest: the gdb command that prints the blocked tasks' backtraces", () => {
    const hung = attachInstructions(info({ outcome: "HANG", vmlinux: "/c/vmlinux" }), 60_000);
    expect(hung).toContain(
      `  hung:   gdb -batch /c/vmlinux -ex 'target remote /tmp/vmrig-built-Ab12/gdb.sock' -x ${BLOCKED_TASKS_GDB}` +
        " -ex vmrig-blocked-tasks",
    );
    expect(attachInstructions(info({ outcome: "CRASH", vmlinux: "/c/vmlinux" }), 60_000)).not.toContain("hung:");
    expect(attachInstructions(info({ outcome: "HANG", arch: "aarch64" }), 60_000)).not.toContain("hung:");
  });
});

describe("QEMU with a kept guest", () => {
  const plan = {
    arch: "x86_64" as const,
    accel: "tcg" as const,
    memoryBytes: 1 << 30,
    cpus: 2,
    kernelImage: "/k/bzImage",
    initrd: "/i/initrd",
    cmdline: ["console=ttyS0", "panic=-1"],
    virtioFs: [],
    sshHostPort: 0,
    qmpSocket: "/s/qmp.sock",
    consoleLog: "/a/console.log",
  };
  it("pauses on a panic and reports it on a second monitor; exits on it otherwise", () => {
    expect(panicArgs(undefined)).toEqual(["-action", "panic=exit-failure"]);
    const { args } = buildQemuArgv({ ...plan, onPanic: { action: "pause", eventsSocket: "/s/ev.sock" } });
    const line = args.join(" ");
    expect(line).toContain("-action panic=pause -qmp unix:/s/ev.sock,server=on,wait=off");
    expect(line).toContain("-qmp unix:/s/qmp.sock,server=on,wait=off");
    expect(line).not.toContain("exit-failure");
  });

  it("vmrig qmp takes a JSON object as the command's arguments", () => {
    expect(qmpArguments(undefined)).toBeUndefined();
    expect(qmpArguments('{"paging":false,"protocol":"file:/tmp/g.elf"}')).toEqual({
      paging: false,
      protocol: "file:/tmp/g.elf",
    });
    expect(() => qmpArguments("[1]")).toThrow(/must be a JSON object/);
    expect(() => qmpArguments("{paging")).toThrow(/not JSON/);
  });
});
