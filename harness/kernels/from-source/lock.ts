// One builder per work slot at a time, across vmrig processes: a lock file holding the pid.
// A lock whose process is gone is stale and taken over.
import fs from "node:fs/promises";
import path from "node:path";
import { processAlive as alive } from "../../util/process-alive.ts";

/** Locks this process holds (a lock file with our own pid that is not here is stale). */
const held = new Set<string>();

/** What a lock file holds: the builder's pid, what it builds and since when (ISO time), one per line. */
export function parseLockFile(text: string): { pid: number; what?: string; since?: string } {
  const [pid, what, since] = text.split("\n").map((l) => l.trim());
  return { pid: Number(pid), ...(what ? { what } : {}), ...(since ? { since } : {}) };
}

/** Pure: the line said while waiting for another builder, and again each minute of the wait. */
export function waitingLine(holder: ReturnType<typeof parseLockFile>, dir: string, waitedMs: number): string {
  const building = holder.what ? `building ${holder.what}` : "building";
  const since = holder.since ? ` since ${holder.since.replace(/\.\d+Z$/, "Z")}` : "";
  const waited = waitedMs >= 60_000 ? ` (waited ${Math.floor(waitedMs / 60_000)} min so far)` : "";
  return `waiting for vmrig process ${holder.pid}, ${building}${since} in ${dir}${waited}`;
}

export async function lockDir(
  dir: string,
  opts: { signal: AbortSignal; log: (line: string) => void; what?: string },
): Promise<() => Promise<void>> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, "lock");
  const started = Date.now();
  let toldAt = -Infinity;
  for (;;) {
    try {
      const content = [process.pid, opts.what ?? "", new Date().toISOString()].join("\n") + "\n";
      await fs.writeFile(file, content, { flag: "wx" });
      held.add(file);
      return async () => {
        held.delete(file);
        await fs.rm(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const holder = parseLockFile(await fs.readFile(file, "utf8").catch(() => ""));
    const pid = holder.pid;
    if (!Number.isInteger(pid) || pid <= 0 || (pid === process.pid && !held.has(file)) || !alive(pid)) {
      await fs.rm(file, { force: true });
      continue;
    }
    if (Date.now() - toldAt >= 60_000) {
      opts.log(waitingLine(holder, dir, Date.now() - started));
      toldAt = Date.now();
    }
    if (opts.signal.aborted) throw opts.signal.reason ?? new Error("aborted");
    await new Promise((r) => setTimeout(r, 2000));
  }
}
