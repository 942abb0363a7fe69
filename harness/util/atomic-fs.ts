// Cache entries are built beside their final place and renamed into it, so a reader sees
// either nothing or a complete entry, even when a run is killed half-way.
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

/** A unique sibling name for `target`: same directory, so rename(2) is atomic. */
export function tempSibling(target: string): string {
  return `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
}

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempSibling(file);
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Builds a directory at a temporary sibling of `dest` with `build(tmpDir)`, then renames it to
 * `dest`. When another process installed `dest` first, its entry wins and ours is dropped.
 * On failure the temporary directory is removed and the error propagates.
 */
export async function buildDirAtomic(dest: string, build: (tmpDir: string) => Promise<void>): Promise<void> {
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const tmp = tempSibling(dest);
  await fs.mkdir(tmp);
  try {
    await build(tmp);
    try {
      await fs.rename(tmp, dest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
      await fs.rm(tmp, { recursive: true, force: true });
    }
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}
