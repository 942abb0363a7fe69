// One builder per work slot at a time, across vmrig processes: a lock file holding the pid.
// A lock whose process is gone is stale and taken over.
import fs from "node:fs/promises";
import path from "node:path";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Locks this process holds (a lock file with our own pid that is not here is stale). */
const held = new Set<string>();

export async function lockDir(
  dir: string,
  opts: { signal: AbortSignal; log: (line: string) => void },
): Promise<() => Promise<void>> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, "lock");
  let told = false;
  for (;;) {
    try {
      await fs.writeFile(file, `${process.pid}\n`, { flag: "wx" });
      held.add(file);
      return async () => {
        held.delete(file);
        await fs.rm(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const pid = Number((await fs.readFile(file, "utf8").catch(() => "")).trim());
    if (!Number.isInteger(pid) || pid <= 0 || (pid === process.pid && !held.has(file)) || !alive(pid)) {
      await fs.rm(file, { force: true });
      continue;
    }
    if (!told) opts.log(`waiting for vmrig process ${pid}, which is building in ${dir}`);
    told = true;
    if (opts.signal.aborted) throw opts.signal.reason ?? new Error("aborted");
    await new Promise((r) => setTimeout(r, 2000));
  }
}
