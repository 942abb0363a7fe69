// Kernel crash reports on a console, as a table (after LAVA's messages.py and syzkaller's
// pkg/report/linux.go). Each row names a report, matches its first line (timestamp already
// stripped), says whether it is fatal and builds its title. test/fixtures/consoles/ holds a
// real capture for every row; test/unit/classify-console.test.ts checks each one.

export interface ConsolePattern {
  name: string;
  /** Matches the start line with the `[   12.345678]` prefix removed. */
  start: RegExp;
  /**
   * Fatal: the kernel killed the running task (Oops, BUG()) or stopped (panic), so the guest
   * cannot be trusted for another cell. The rest are reports after which the kernel runs on.
   */
  fatal: boolean;
  /** Title from the match, before the shared normalisation; absent: the line only opens a report. */
  title?: (m: RegExpMatchArray) => string;
}

// Order matters: the first row that matches a line wins (soft lockup and KASAN before BUG:).
export const CONSOLE_PATTERNS: readonly ConsolePattern[] = [
  { name: "cut-here", start: /^-+\[ cut here \]-+\s*$/, fatal: false },
  {
    name: "kernel-panic",
    start: /^Kernel panic - not syncing: (.*)$/,
    fatal: true,
    title: (m) => `Kernel panic - not syncing: ${m[1]}`,
  },
  {
    name: "soft-lockup",
    start: /^(?:watchdog: )?BUG: soft lockup - CPU#\d+ stuck for \d+s!/,
    fatal: false,
    title: () => "BUG: soft lockup - CPU#N stuck for Ns!",
  },
  {
    name: "kasan",
    start: /^BUG: KASAN: ([\w-]+) in (\S+)/,
    fatal: false,
    title: (m) => `BUG: KASAN: ${m[1]} in ${m[2]}`,
  },
  { name: "kernel-bug", start: /^kernel BUG at (\S+?)!?$/, fatal: true, title: (m) => `kernel BUG at ${m[1]}` },
  // BUG: kernel NULL pointer dereference / unable to handle page fault / scheduling while atomic...
  // Not fatal by itself: the Oops that follows (and is folded into this report) makes it so.
  { name: "bug", start: /^BUG: (.*)$/, fatal: false, title: (m) => `BUG: ${m[1]}` },
  { name: "warning", start: /^WARNING: (.*)$/, fatal: false, title: (m) => warningTitle(m[1] ?? "") },
  {
    name: "general-protection-fault",
    start: /^(?:Oops: )?(general protection fault.*?)(?:: [0-9a-f]{4} \[#\d+\].*)?$/,
    fatal: true,
    title: (m) => m[1] ?? "general protection fault",
  },
  // x86 "Oops: 0002 [#1]", "Oops: invalid opcode: 0000 [#1]" (6.9+: "Oops: Oops: 0002"),
  // arm64 "Internal error: Oops: 0000000096000044 [#1]", "Internal error: Oops - BUG: ... [#1]".
  {
    name: "oops",
    start: /^(?:Internal error: )?(?:Oops: )?(Oops(?: - [\w ]+?)?|[a-z][\w ]*?): ([0-9a-f]{4,16}) \[#\d+\]/,
    fatal: true,
    title: (m) => (m[1]!.startsWith("Oops") ? `${m[1]}: ${m[2]!.replace(/^0{8}/, "")}` : `Oops: ${m[1]}`),
  },
  // arm64's line before its Oops (x86 says "BUG: kernel NULL pointer dereference" there).
  {
    name: "unable-to-handle",
    start: /^Unable to handle kernel (.+?) at virtual address/,
    fatal: true,
    title: (m) => `Unable to handle kernel ${m[1]}`,
  },
  {
    name: "hung-task",
    start: /^INFO: task (.+):\d+ blocked for more than \d+ seconds\./,
    fatal: false,
    title: (m) => `INFO: task ${m[1]} blocked for more than N seconds`,
  },
  {
    name: "rcu-stall",
    start: /^(?:rcu: )?INFO: (rcu_\w+) (self-detected stall on CPU|detected stalls on CPUs\/tasks)/,
    fatal: false,
    title: (m) => `INFO: ${m[1]} ${m[2]}`,
  },
];

/** `func.constprop.0`, `func.isra.0`, `func.cold`: compiler clones, named as their function. */
export const withoutCloneSuffix = (fn: string) => fn.replace(/\.(?:constprop|isra|part|cold|llvm)(?:\.\d+)?/g, "");

/** "CPU: 1 PID: 1 at fs/x.c:15 func+0x5/0x10 [mod]" -> "WARNING: at fs/x.c:15 func"; others as printed. */
function warningTitle(rest: string): string {
  const at = /\bat (\S+:\d+)(?: (\S+))?/.exec(rest);
  if (!at) return `WARNING: ${rest}`;
  const fn = at[2] && withoutCloneSuffix(at[2].replace(/\+0x.*$/, "").replace(/\(\)$/, ""));
  return fn ? `WARNING: at ${at[1]} ${fn}` : `WARNING: at ${at[1]}`;
}

/**
 * A report ends at this line, inclusive. KASAN brackets its report with a row of "=", so the
 * row after the start line is the end. A panic with panic=-1 reboots before printing its end.
 */
export const END_MARKER = /^---\[ end (?:trace|Kernel panic)|^={40,}\s*$/;

/**
 * Lines that belong to a report once it has started: headers, registers, traces, and the
 * detector's own chatter. A report runs on over these and stops at the first run of lines that
 * are not (other kernel messages, the workload's output).
 */
export const REPORT_BODY: readonly RegExp[] = [
  /^\s+(?:\? )?[\w.$]+\+0x[0-9a-f]+\/0x[0-9a-f]+/, // a frame: " ? func+0x1a/0x20 [mod]"
  /^\s*<\/?(?:TASK|IRQ|NMI|SOFTIRQ|#\w+)>\s*$/, // x86 context markers
  /^Call [Tt]race:/,
  /^(?:CPU: |Tainted: |\s+Tainted: |Hardware name: |Modules linked in:|Kernel Offset:|Workqueue: |Sending NMI|NMI backtrace|task:|"echo 0 >|rcu: |#PF: |PGD |Code: |Stack:)/,
  /^(?:RIP|RSP|RAX|RDX|RBP|R10|R13|FS|CS|CR2|DR0|DR3|PKRU):/, // x86 registers
  /^(?:pc|lr|sp|pstate) ?: |^x\d+ ?: |^(?:Mem abort info|Data abort info):|^\s+(?:ESR|EC|SET|FV|EA|S1PTW|FSC|ISV|ISS|ISS2|CM|WnR|TnD|TagAccess|GCS|Xs)\b|^user pgtable|^\[[0-9a-f]+\] (?:pgd|user address)/, // arm64
  /^(?:Read|Write) of size \d+|^(?:Allocated|Freed) by task|^The buggy address|^\s+(?:which belongs|freed|allocated) |^Memory state around|^\s*>?[0-9a-f]{16}: [0-9a-f ]+|^\s+\^$|^(?:page|head|flags|page_type|raw|page dumped because):/, // KASAN
  /^Kernel panic - not syncing/,
  /^---\[ end /,
];

/** Frames that never name the culprit: reporting and scheduling machinery. */
export const SKIP_FRAMES =
  /^(?:dump_stack\w*|show_stack|dump_backtrace|panic|vpanic|__warn|warn_slowpath\w*|report_bug|handle_bug|exc_\w+|asm_exc_\w+|die|do_trap\w*|__die\w*|__schedule|schedule|schedule_timeout|schedule_preempt_disabled|__pfx_\w+|kasan_report|print_report|__asan_\w+|__kasan_\w+)$/;

/** The trace below these is the way in from user space or thread start: same for every bug. */
export const ENTRY_FRAMES =
  /^(?:entry_SYSCALL_64\w*|do_syscall_64|ret_from_fork\w*|kthread|el0_svc\w*|el0t_64_\w+|invoke_syscall|do_el0_svc|__arm64_sys_\w+|__x64_sys_\w+|x64_sys_call|start_kernel|secondary_startup_64\w*|cpu_startup_entry)$/;
