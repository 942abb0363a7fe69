import { readdirSync, readFileSync } from "node:fs";

/** Live processes whose command line contains `needle` (read from /proc, no mocks). */
export function processesMatching(needle: string | RegExp): Array<{ pid: number; cmdline: string }> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0/g, " ").trim();
    } catch {
      continue;
    }
    if (!cmdline) continue;
    if (typeof needle === "string" ? cmdline.includes(needle) : needle.test(cmdline))
      out.push({ pid: Number(d), cmdline });
  }
  return out;
}

/** vmrig's own guest processes: QEMU and daemons started with vmrig's scratch directories. */
export const vmrigProcesses = () => processesMatching(/(qemu-system|virtiofsd|vhost-user-relay).*vmrig-/);

function parentOf(pid: number): number {
  try {
    return Number(
      readFileSync(`/proc/${pid}/stat`, "utf8")
        .replace(/^.*\) /s, "")
        .split(" ")[1],
    );
  } catch {
    return 0;
  }
}

/**
 * vmrig guest processes this test process started (in-process runs: QEMU and daemons are its
 * descendants), so another vmrig run sharing the machine does not fail the test.
 */
export function ownGuestProcesses(): Array<{ pid: number; cmdline: string }> {
  const ours = (pid: number) => {
    for (let p = pid; p > 1; p = parentOf(p)) if (p === process.pid) return true;
    return false;
  };
  return vmrigProcesses().filter((p) => ours(p.pid));
}

/**
 * vmrig guest processes that inherited `name=value` (a CLI run's VMRIG_RESULTS): still found when
 * their vmrig died and they were re-parented, and never another run's.
 */
export function guestProcessesWithEnv(name: string, value: string): Array<{ pid: number; cmdline: string }> {
  return vmrigProcesses().filter((p) => {
    try {
      return readFileSync(`/proc/${p.pid}/environ`, "utf8").split("\0").includes(`${name}=${value}`);
    } catch {
      return false;
    }
  });
}
