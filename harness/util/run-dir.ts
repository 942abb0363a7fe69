// A run's directory is named by the second it started; runs of one scenario started in the same
// second each get their own (a -2, -3 suffix), created exclusively so no two runs ever share one.
import fs from "node:fs/promises";
import path from "node:path";

/** Pure: the directory name of a run started at `at` ("2026-12-02T18-06-22Z"). */
export function runStamp(at: Date): string {
  return at.toISOString().replace(/[:]/g, "-").replace(/\..+$/, "Z");
}

/** Creates `<parent>/<stamp>` (or the first free `<stamp>-N`) and returns it; mkdir is the lock. */
export async function createRunDir(parent: string, at: Date = new Date()): Promise<string> {
  await fs.mkdir(parent, { recursive: true });
  const stamp = runStamp(at);
  for (let n = 1; ; n++) {
    const dir = path.join(parent, n === 1 ? stamp : `${stamp}-${n}`);
    try {
      await fs.mkdir(dir);
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
}
