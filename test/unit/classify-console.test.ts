// Every pattern against real consoles captured under QEMU TCG (test/fixtures/consoles/README.md
// says how each was made).
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CONSOLE_PATTERNS } from "../../harness/classify/console-patterns.ts";
import {
  callTraceFrames,
  classifyConsole,
  crashSignature,
  kernelText,
} from "../../harness/classify/classify-console.ts";

const DIR = new URL("../fixtures/consoles/", import.meta.url);
const load = (f: string) => readFileSync(new URL(f, DIR), "utf8");
const fixtures = readdirSync(DIR)
  .filter((f) => f.endsWith(".log"))
  .sort();
const brief = (f: string) => classifyConsole(load(f)).map(({ name, title, fatal }) => ({ name, title, fatal }));

type Expected = Array<[name: string, title: string, fatal: boolean]>;
const X86_BUG = "kernel BUG at /tmp/vmk/mod/provoke.c:16";
const ARM64_BUG = "kernel BUG at /tmp/vmk/mod-arm64/provoke.c:16";
const ARM64_CT_WARN = "WARNING: at kernel/context_tracking.c:128 ct_kernel_exit";
const NULL_DEREF = "BUG: kernel NULL pointer dereference";
const HUNG = "INFO: task init blocked for more than N seconds";
// Built out of tree (make O=...): the console says "../src/fs/notify/...", the title does not.
const DNOTIFY_BUG = "kernel BUG at fs/notify/dnotify/dnotify.c:134";
const VFS_HUNG = "INFO: task vmrig-probe blocked for more than N seconds";

/** Titles exactly, in console order; a detector that repeats itself is a finding per report. */
const EXPECTED: Record<string, Expected> = {
  "x86-clean.log": [],
  "arm64-clean.log": [],
  "x86-7.3-vmrig-boot.log": [],
  "x86-sysrq-panic.log": [["kernel-panic", "Kernel panic - not syncing: sysrq triggered crash", true]],
  "x86-sysrq-panic-no-pvpanic.log": [["kernel-panic", "Kernel panic - not syncing: sysrq triggered crash", true]],
  "x86-no-root-panic.log": [
    ["kernel-panic", "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)", true],
  ],
  "x86-warning.log": [["warning", "WARNING: at /tmp/vmk/mod/provoke.c:15 provoke_WARNING", false]],
  "x86-bug-1.log": [["kernel-bug", X86_BUG, true]],
  "x86-bug-2.log": [["kernel-bug", X86_BUG, true]],
  "x86-bug-kills-init.log": [
    ["kernel-bug", X86_BUG, true],
    ["kernel-panic", "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b", true],
  ],
  "x86-null-deref-1.log": [["bug", NULL_DEREF, true]],
  "x86-null-deref-2.log": [["bug", NULL_DEREF, true]],
  "x86-null-deref-oops-panic.log": [
    ["bug", NULL_DEREF, true],
    ["kernel-panic", "Kernel panic - not syncing: Fatal exception", true],
  ],
  "x86-gpf.log": [["general-protection-fault", "general protection fault, probably for non-canonical address", true]],
  "x86-invalid-opcode.log": [["oops", "Oops: invalid opcode", true]],
  "x86-hung-task.log": [
    ["hung-task", HUNG, false],
    ["hung-task", HUNG, false],
  ],
  "x86-soft-lockup.log": [
    ["soft-lockup", "BUG: soft lockup - CPU#N stuck for Ns!", false],
    ["soft-lockup", "BUG: soft lockup - CPU#N stuck for Ns!", false],
  ],
  "x86-rcu-self-detected-stall.log": [
    ["rcu-stall", "INFO: rcu_preempt self-detected stall on CPU", false],
    ["rcu-stall", "INFO: rcu_preempt self-detected stall on CPU", false],
  ],
  "x86-rcu-detected-stalls.log": [
    ["rcu-stall", "INFO: rcu_preempt detected stalls on CPUs/tasks", false],
    ["rcu-stall", "INFO: rcu_preempt detected stalls on CPUs/tasks", false],
  ],
  // Self-built 6.12.117 with KASAN and the real lkdtm built in.
  "x86-kasan-clean.log": [],
  "x86-kasan-use-after-free-1.log": [["kasan", "BUG: KASAN: slab-use-after-free in lkdtm_WRITE_AFTER_FREE", false]],
  "x86-kasan-use-after-free-2.log": [["kasan", "BUG: KASAN: slab-use-after-free in lkdtm_WRITE_AFTER_FREE", false]],
  "x86-kasan-out-of-bounds.log": [["kasan", "BUG: KASAN: slab-out-of-bounds in lkdtm_SLAB_LINEAR_OVERFLOW", false]],
  "x86-lkdtm-warning.log": [["warning", "WARNING: at drivers/misc/lkdtm/bugs.c:112 lkdtm_WARNING", false]],
  "x86-lkdtm-bug.log": [["kernel-bug", "kernel BUG at drivers/misc/lkdtm/bugs.c:105", true]],
  // KASAN's inline check of address 0 faults on the non-canonical shadow address first.
  "x86-lkdtm-null-deref.log": [["general-protection-fault", "general protection fault, maybe for address", true]],
  "arm64-sysrq-panic.log": [["kernel-panic", "Kernel panic - not syncing: sysrq triggered crash", true]],
  "arm64-warning.log": [["warning", "WARNING: at /tmp/vmk/mod-arm64/provoke.c:15 provoke_WARNING", false]],
  // After BUG() kills the task, arm64 6.12 also warns from the idle loop's context tracking.
  "arm64-bug-1.log": [
    ["kernel-bug", ARM64_BUG, true],
    ["warning", ARM64_CT_WARN, false],
  ],
  "arm64-bug-2.log": [
    ["kernel-bug", ARM64_BUG, true],
    ["warning", ARM64_CT_WARN, false],
  ],
  "arm64-null-deref.log": [["unable-to-handle", "Unable to handle kernel NULL pointer dereference", true]],
  "arm64-undefined.log": [["oops", "Oops - Undefined instruction: 02000000", true]],
  // Debian 7.3.4 under vmrig: virtiofsd SIGSTOPped during an O_DIRECT read (scenarios/virtiofsd-faults.yaml).
  // linux-source-7.3 with the bad-inode fix reverted (scenarios/dnotify-bad-inode.yaml), PANIC_ON_OOPS.
  "x86-dnotify-bad-inode-bug-1.log": [
    ["kernel-bug", DNOTIFY_BUG, true],
    ["kernel-panic", "Kernel panic - not syncing: Fatal exception", true],
  ],
  "x86-dnotify-bad-inode-bug-2.log": [
    ["kernel-bug", DNOTIFY_BUG, true],
    ["kernel-panic", "Kernel panic - not syncing: Fatal exception", true],
  ],
  "x86-7.3-sysrq-panic.log": [["kernel-panic", "Kernel panic - not syncing: sysrq triggered crash", true]],
  "x86-hung-task-virtiofsd-stopped-1.log": [
    ["hung-task", VFS_HUNG, false],
    ["hung-task", VFS_HUNG, false],
  ],
  "x86-hung-task-virtiofsd-stopped-2.log": [
    ["hung-task", VFS_HUNG, false],
    ["hung-task", VFS_HUNG, false],
  ],
};

describe("classifyConsole on real captures", () => {
  it("has an expectation for every fixture", () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(fixtures);
  });

  it.each(Object.entries(EXPECTED))("%s", (file, expected) => {
    expect(brief(file)).toEqual(expected.map(([name, title, fatal]) => ({ name, title, fatal })));
  });

  it("has a real capture for every pattern", () => {
    const all = fixtures.flatMap((f) => classifyConsole(load(f)));
    for (const p of CONSOLE_PATTERNS) {
      // "cut here" only opens a report: it shows up inside the excerpts of WARNING and BUG().
      const seen = p.title
        ? all.some((f) => f.name === p.name)
        : all.some((f) => f.excerpt.split("\n").some((l) => p.start.test(kernelText(l.replace(/\r$/, "")))));
      expect(seen, `no capture exercises pattern ${p.name}`).toBe(true);
    }
  });

  it("gives byte offsets that point at the report's first line", () => {
    for (const f of fixtures) {
      const buf = Buffer.from(load(f));
      for (const x of classifyConsole(load(f))) {
        const firstLine = x.excerpt.split("\n")[0]!;
        expect(buf.subarray(x.offset, x.offset + Buffer.byteLength(firstLine)).toString()).toBe(firstLine);
      }
    }
  });

  it("ends a report at its end marker", () => {
    for (const f of [
      "x86-warning.log",
      "x86-bug-1.log",
      "x86-null-deref-1.log",
      "x86-gpf.log",
      "arm64-null-deref.log",
    ]) {
      const [x] = classifyConsole(load(f));
      expect(x!.excerpt.split("\n").at(-1)).toMatch(/---\[ end trace [0-9a-f]+ \]---/);
    }
    // KASAN closes its report with the row of "=" it opened it with.
    const [kasan] = classifyConsole(load("x86-kasan-use-after-free-1.log"));
    expect(kasan!.excerpt).toMatch(
      /Freed by task[\s\S]*Memory state around the buggy address[\s\S]*\n\[ *[\d.]+\] ={60,}\r?$/,
    );
  });

  it("keeps the Oops line inside the report it belongs to", () => {
    const [bug] = classifyConsole(load("x86-bug-1.log"));
    expect(bug!.excerpt).toMatch(/cut here[\s\S]*kernel BUG at[\s\S]*Oops: invalid opcode[\s\S]*Call Trace:/);
  });

  it("reads only what came after `since`", () => {
    const text = load("x86-null-deref-oops-panic.log");
    const [oops, panic] = classifyConsole(text);
    expect(classifyConsole(text, { since: panic!.offset }).map((x) => x.title)).toEqual([
      "Kernel panic - not syncing: Fatal exception",
    ]);
    // A `since` inside a line leaves that line to the window before.
    expect(classifyConsole(text, { since: panic!.offset + 3 })).toEqual([]);
    expect(classifyConsole(text, { since: oops!.offset }).map((x) => x.name)).toEqual(["bug", "kernel-panic"]);
    expect(classifyConsole(text, { since: Buffer.byteLength(text) })).toEqual([]);
  });

  it("reads a kernel line that follows user-space output on the same console line", () => {
    // arm64-bug-2: "Segmentation fault[    3.971705] sp : ffff8000800e3dd0", and a blank line
    // inside the call trace, both from the shell writing to the same serial port.
    expect(load("arm64-bug-2.log")).toMatch(/Segmentation fault\[ +\d+\.\d+\] sp : /);
    const [, warn] = classifyConsole(load("arm64-bug-2.log"));
    expect(callTraceFrames(warn!.excerpt)).toEqual(["ct_kernel_exit", "ct_idle_enter", "default_idle_call", "do_idle"]);
  });
});

describe("crashSignature", () => {
  const sig = (f: string, i = 0) => crashSignature(classifyConsole(load(f))[i]!);

  it.each([
    ["x86-bug-1.log", "x86-bug-2.log"],
    ["x86-null-deref-1.log", "x86-null-deref-2.log"],
    ["arm64-bug-1.log", "arm64-bug-2.log"],
    ["x86-kasan-use-after-free-1.log", "x86-kasan-use-after-free-2.log"],
  ])("is the same for two boots of the same bug: %s, %s", (a, b) => {
    expect(sig(a)).toBe(sig(b));
    expect(sig(a, 0)).not.toBe(sig("x86-warning.log"));
  });

  it("is the same for every report of a repeating detector", () => {
    for (const f of [
      "x86-hung-task.log",
      "x86-soft-lockup.log",
      "x86-rcu-self-detected-stall.log",
      "x86-rcu-detected-stalls.log",
    ]) {
      expect(new Set(classifyConsole(load(f)).map((x) => crashSignature(x))).size, f).toBe(1);
    }
  });

  it("is the title plus the culprit's top frames", () => {
    expect(sig("x86-bug-1.log")).toBe(
      `${X86_BUG} | provoke_BUG < direct_write < full_proxy_write < vfs_write < ksys_write`,
    );
    // Panic machinery and `? ` frames dropped, stops at the syscall entry.
    expect(sig("x86-sysrq-panic.log")).toBe(
      "Kernel panic - not syncing: sysrq triggered crash | " +
        "sysrq_handle_crash < __handle_sysrq < write_sysrq_trigger < proc_reg_write < vfs_write",
    );
    // Hung task: no PC, the scheduler frames say nothing.
    expect(sig("x86-hung-task.log")).toBe(`${HUNG} | direct_write < full_proxy_write < vfs_write < ksys_write`);
    // RCU stall: the stalled CPU's trace, not the grace-period kthread's that comes first.
    expect(sig("x86-rcu-self-detected-stall.log")).toBe(
      "INFO: rcu_preempt self-detected stall on CPU | " +
        "provoke_SPIN < direct_write < full_proxy_write < vfs_write < ksys_write",
    );
    // arm64 format; `.constprop.0` clones fold into their function.
    expect(sig("arm64-null-deref.log")).toBe(
      "Unable to handle kernel NULL pointer dereference | " +
        "provoke_EXCEPTION < full_proxy_write < vfs_write < ksys_write",
    );
    // KASAN: the reporting machinery (kasan_report, print_report) is not the culprit.
    expect(sig("x86-kasan-use-after-free-1.log")).toBe(
      "BUG: KASAN: slab-use-after-free in lkdtm_WRITE_AFTER_FREE | " +
        "lkdtm_WRITE_AFTER_FREE < lkdtm_do_action < direct_entry < full_proxy_write < vfs_write",
    );
    expect(sig("x86-no-root-panic.log")).toBe(
      "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) | " +
        "mount_root_generic < prepare_namespace < kernel_init_freeable < kernel_init",
    );
  });
});

describe("titles of formats other kernels print", () => {
  // One-line variants from older kernels, not captured here: only the title logic is tested.
  it.each([
    ["[   1.0] invalid opcode: 0000 [#1] SMP PTI", "oops", "Oops: invalid opcode"],
    ["[   1.0] Oops: 0002 [#1] SMP", "oops", "Oops: 0002"],
    ["[   1.0] general protection fault: 0000 [#1] SMP KASAN", "general-protection-fault", "general protection fault"],
    [
      "[   1.0] WARNING: at fs/fuse/dev.c:1234 fuse_request_end+0x1/0x2()",
      "warning",
      "WARNING: at fs/fuse/dev.c:1234 fuse_request_end",
    ],
    [
      "[   1.0] WARNING: possible circular locking dependency detected",
      "warning",
      "WARNING: possible circular locking dependency detected",
    ],
    [
      "[   1.0] INFO: task kworker/0:1:23 blocked for more than 120 seconds.",
      "hung-task",
      "INFO: task kworker/0:1 blocked for more than N seconds",
    ],
    [
      "[   1.0] rcu: INFO: rcu_sched self-detected stall on CPU",
      "rcu-stall",
      "INFO: rcu_sched self-detected stall on CPU",
    ],
    [
      "[   1.0] BUG: unable to handle page fault for address: ffffffffc0a1b000",
      "bug",
      "BUG: unable to handle page fault",
    ],
    [
      "[   1.0] BUG: KASAN: slab-use-after-free in fuse_dev_do_read+0x1a/0x2b0 [fuse]",
      "kasan",
      "BUG: KASAN: slab-use-after-free in fuse_dev_do_read",
    ],
    [
      "[   1.0] kernel BUG at fs/notify/dnotify/dnotify.c:161!",
      "kernel-bug",
      "kernel BUG at fs/notify/dnotify/dnotify.c:161",
    ],
    [
      "[    1.0][    T1] Kernel panic - not syncing: Fatal exception in interrupt",
      "kernel-panic",
      "Kernel panic - not syncing: Fatal exception in interrupt",
    ],
  ])("%s", (line, name, title) => {
    expect(classifyConsole(line + "\n").map((x) => [x.name, x.title])).toEqual([[name, title]]);
  });

  it("does not take ordinary messages for reports", () => {
    const quiet = [
      "[    5.234127] INFO: NMI handler (nmi_cpu_backtrace_handler) took too long to run: 7.744 msecs",
      "[    2.311386] provoke: module verification failed: signature and/or required key missing - tainting kernel",
      "[    2.242950] Kernel command line: console=ttyS0 panic=-1 softlockup_panic=0 oops=panic",
    ];
    expect(classifyConsole(quiet.join("\n"))).toEqual([]);
  });

  it("ignores user space on a timestamped console, but reads a console without timestamps", () => {
    const user = "WARNING: CPU: 0 PID: 1 at fs/fuse/dev.c:1 f+0x1/0x2";
    expect(classifyConsole(`[    1.000000] Linux version 6.12\n${user}\n`)).toEqual([]);
    expect(classifyConsole(`Linux version 6.12\n${user}\n`).map((x) => x.title)).toEqual([
      "WARNING: at fs/fuse/dev.c:1 f",
    ]);
  });
});
