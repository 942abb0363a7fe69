# gdb command `vmrig-blocked-tasks`: the backtrace of every task blocked in D state (what the
# kernel's hung-task detector reports), read from a paused x86_64 guest through QEMU's gdbstub
# with a DWARF vmlinux (a built kernel with kernels/debug.config, or Debian's -dbg package).
#
# A blocked task is on no vCPU, so `bt` cannot reach it. Its registers are where the context
# switch left them: thread.sp points at a struct inactive_task_frame (callee-saved registers and
# the return address into __schedule). For each task the paused vCPU's registers are set to that
# frame, `bt` unwinds with vmlinux's call frame information, and the vCPU's own registers are put
# back before the next task and at the end (the guest resumes exactly where it was paused).
import re

import gdb

TASK_UNINTERRUPTIBLE = 0x2
TASK_NOLOAD = 0x400  # idle kernel threads sleep uninterruptibly without being hung
ENTRY_FRAME = re.compile(r" in (entry_SYSCALL_64|ret_from_fork(_asm)?|asm_\w+) ")
SWITCH_REGISTERS = ("rip", "rsp", "rbp", "rbx", "r12", "r13", "r14", "r15")


def offset_of(type_name, member):
    return int(gdb.parse_and_eval("(unsigned long)&((%s *)0)->%s" % (type_name, member)))


def entries(head, type_name, member):
    """The structs on a kernel list_head, as pointers (list_for_each_entry)."""
    pointer = gdb.lookup_type(type_name).pointer()
    offset = offset_of(type_name, member)
    node = head["next"]
    seen = 0
    while int(node) != int(head.address):
        yield gdb.Value(int(node) - offset).cast(pointer)
        node = node["next"]
        seen += 1
        if seen > 1 << 20:
            raise gdb.GdbError("a task list longer than 2^20: memory is not what vmlinux says")


def all_threads():
    init = gdb.parse_and_eval("init_task")
    leaders = [init.address] + list(entries(init["tasks"], "struct task_struct", "tasks"))
    for leader in leaders:
        for task in entries(leader["signal"]["thread_head"], "struct task_struct", "thread_node"):
            yield task


def blocked(task):
    state = int(task["__state"])
    return state & TASK_UNINTERRUPTIBLE and not state & TASK_NOLOAD


class BlockedTasks(gdb.Command):
    """Backtrace of every task in D state (TASK_UNINTERRUPTIBLE), on a paused x86_64 kernel."""

    def __init__(self):
        super().__init__("vmrig-blocked-tasks", gdb.COMMAND_USER)

    def invoke(self, argument, from_tty):
        gdb.execute("frame 0", to_string=True)
        saved = {r: int(gdb.parse_and_eval("$" + r)) for r in SWITCH_REGISTERS}
        frame_type = gdb.lookup_type("struct inactive_task_frame")
        found = 0
        try:
            for task in list(all_threads()):
                if not blocked(task):
                    continue
                found += 1
                comm = task["comm"].string()
                print("blocked task %d (%s), state 0x%x:" % (int(task["pid"]), comm, int(task["__state"])))
                sp = int(task["thread"]["sp"])
                frame = gdb.Value(sp).cast(frame_type.pointer()).dereference()
                regs = {"rsp": sp + frame_type.sizeof, "rip": int(frame["ret_addr"]), "rbp": int(frame["bp"])}
                regs.update({"rbx": int(frame["bx"]), "r12": int(frame["r12"]), "r13": int(frame["r13"])})
                regs.update({"r14": int(frame["r14"]), "r15": int(frame["r15"])})
                set_registers(regs)
                print(kernel_frames(gdb.execute("bt", to_string=True)), end="")
        finally:
            set_registers(saved)
        print("%d blocked task%s" % (found, "" if found == 1 else "s"))


def kernel_frames(backtrace):
    """The frames up to the kernel's entry: past it gdb goes on unwinding user registers as if code."""
    kept = []
    for line in backtrace.splitlines(keepends=True):
        kept.append(line)
        if ENTRY_FRAME.search(line):
            break
    return "".join(kept)


def set_registers(values):
    gdb.execute("frame 0", to_string=True)
    for name, value in values.items():
        gdb.execute("set $%s = %d" % (name, value))


BlockedTasks()
