// When SSH never answered: ask the guest itself, on its serial console, what it saw. Each
// section is headed by "@name" so the summary does not depend on what a tool printed before it.
import { GUEST_SETUP_DONE, GUEST_SSH_PORT } from "../image/guest-protocol.ts";

const SECTIONS: Record<string, string> = {
  uptime: "cat /proc/uptime",
  run: "ls /run",
  sshd: "ps -o pid,stat,args | grep -v ' \\[' | grep dropbear | grep -v grep",
  addr: "ip -o -4 addr",
  tcp: "cat /proc/net/tcp",
  log: "tail -n 3 /run/dropbear.log",
};

/** One console line: every section, headed. */
export const SSH_DIAGNOSIS_COMMAND = Object.entries(SECTIONS)
  .map(([name, cmd]) => `echo @${name}; ${cmd}`)
  .join("; ");

/** Pure: the sections of a diagnosis reply, name -> lines. */
export function diagnosisSections(stdout: string): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of stdout.split("\n")) {
    const head = /^@(\w+)$/.exec(line.trim());
    if (head && head[1]! in SECTIONS) sections.set(head[1]!, (current = []));
    else if (current && line.trim()) current.push(line.trim());
  }
  return sections;
}

/** Pure: one line saying what the guest saw: setup, sshd, its socket, the NIC, dropbear's last word. */
export function summarizeSshDiagnosis(stdout: string): string {
  const s = diagnosisSections(stdout);
  const get = (name: string) => s.get(name) ?? [];
  const facts: string[] = [];
  const uptime = Number(get("uptime")[0]?.split(/\s+/)[0]);
  if (Number.isFinite(uptime)) facts.push(`up ${uptime.toFixed(0)} s`);
  const setupFlag = GUEST_SETUP_DONE.slice(GUEST_SETUP_DONE.lastIndexOf("/") + 1);
  facts.push(get("run").some((l) => l.split(/\s+/).includes(setupFlag)) ? "setup done" : "setup NOT done");
  facts.push(get("sshd").length ? "dropbear running" : "dropbear NOT running");
  const port = GUEST_SSH_PORT.toString(16).toUpperCase().padStart(4, "0");
  const listening = get("tcp").some((l) => new RegExp(`^\\d+: [0-9A-F]{8}:${port} [0-9A-F]{8}:0000 0A `).test(l));
  facts.push(listening ? `listening on port ${GUEST_SSH_PORT}` : `NOT listening on port ${GUEST_SSH_PORT}`);
  const addrs = get("addr")
    .filter((l) => !/\blo\b/.test(l))
    .map((l) => /^\d+: (\S+)\s+inet (\S+)/.exec(l))
    .flatMap((m) => (m ? [`${m[1]} ${m[2]}`] : []));
  facts.push(addrs.length ? addrs.join(", ") : "no IPv4 address");
  const last = get("log").at(-1);
  if (last) facts.push(`dropbear's last log line: ${last.replace(/^\[\d+\] /, "")}`);
  return facts.join(", ");
}
