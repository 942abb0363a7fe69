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
    if (typeof needle === "string" ? cmdline.includes(needle) : needle.test(cmdline)) out.push({ pid: Number(d), cmdline });
  }
  return out;
}

/** vmrig's own guest processes: QEMU and daemons started with vmrig's scratch directories. */
export const vmrigProcesses = () => processesMatching(/(qemu-system|virtiofsd|vhost-user-relay).*vmrig-/);
