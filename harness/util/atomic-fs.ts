// Cache entries are built beside their final place and renamed into it, so a reader sees
// either nothing or a complete entry, even when a run is killed half-way.
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

const TEMP_MARK = ".tmp-";

/** A unique sibling name for `target`: same directory, so rename(2) is atomic. */
export function tempSibling(target: string): string {
  return `${target}${TEMP_MARK}${process.pid}-${randomBytes(4).toString("hex")}`;
}

/** Whether a directory entry is a tempSibling: a build in progress, or one a kill abandoned. */
export function isTempSibling(name: string): boolean {
  return path.basename(name).includes(TEMP_MARK);
}

/**
 * Removes the temporary siblings of `target` that interrupted builds left behind. Only for a
 * caller that holds a lock on `target`: another process's build in progress looks the same.
 */
export async function removeTempSiblings(target: string): Promise<void> {
  const dir = path.dirname(target);
  const prefix = `${path.basename(target)}${TEMP_MARK}`;
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(prefix)) await fs.rm(path.join(dir, name), { recursive: true, force: true });
  }
}

/**
 * Makes the file `dest` with `build(tmpFile)` (a compiler's -o, a stream's destination) at a
 * temporary sibling, then renames it into place. On failure the temporary file is removed and
 * the error propagates; `dest` is left as it was.
 */
export async function buildFileAtomic(dest: string, build: (tmpFile: string) => Promise<void>): Promise<void> {
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const tmp = tempSibling(dest);
  try {
    await build(tmp);
    await fs.rename(tmp, dest);
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await buildFileAtomic(file, (tmp) => fs.writeFile(tmp, data));
}

/**
 * Builds a directory at a temporary sibling of `dest` with `build(tmpDir)`, then renames it to
 * `dest`. When another process installed `dest` first, its entry wins and ours is dropped.
 * On failure the temporary directory is removed and the error propagates. `createTemp: false`
 * leaves creating tmpDir to `build`, for tools that refuse an existing target (cp -a, git clone).
 */
export async function buildDirAtomic(
  dest: string,
  build: (tmpDir: string) => Promise<void>,
  opts: { createTemp?: boolean } = {},
): Promise<void> {
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const tmp = tempSibling(dest);
  if (opts.createTemp !== false) await fs.mkdir(tmp);
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
