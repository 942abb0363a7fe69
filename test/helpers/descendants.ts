import { readdirSync, readFileSync } from "node:fs";

/** Live descendants of `root` (default: this process) whose command line matches `needle`, from /proc. */
export function descendantsMatching(needle: RegExp, root = process.pid): Array<{ pid: number; cmdline: string }> {
  const parent = new Map<number, number>();
  const cmd = new Map<number, string>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // The command name may hold spaces and parentheses: the ppid is the 2nd field after the last ")".
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      cmd.set(Number(d), readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0/g, " ").trim());
    } catch {
      // exited meanwhile
    }
  }
  const isDescendant = (pid: number): boolean => {
    for (let p = parent.get(pid), hops = 0; p !== undefined && p > 0 && hops < 64; p = parent.get(p), hops++)
      if (p === root) return true;
    return false;
  };
  return [...cmd].filter(([pid, c]) => isDescendant(pid) && needle.test(c)).map(([pid, cmdline]) => ({ pid, cmdline }));
}

/** QEMU, virtiofsd and relays started by this test process (other sessions' guests on the host do not count). */
export const ownGuestProcesses = () => descendantsMatching(/qemu-system|virtiofsd|vhost-user-relay/);
