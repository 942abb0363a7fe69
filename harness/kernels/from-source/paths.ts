// Where built kernels and their inputs live in vmrig's cache.
//
//   kernels/build/<key>/          finished kernels: image, config, build.log, manifest.json
//   kernels/build-index/<inputs>  inputs hash -> key, so unchanged inputs skip even kconfig
//   kernels/build-src/<source>/   pristine unpacked trees (never modified)
//   kernels/build-work/<slot>/    one work area per (source, arch, base + fragments): a patched
//                                 copy of the tree (src/) and the O= build directory (out/)
import fs from "node:fs/promises";
import path from "node:path";
import { cachePaths } from "../../util/paths.ts";

export const buildPaths = {
  entries: () => path.join(cachePaths.kernels(), "build"),
  entry: (key: string) => path.join(cachePaths.kernels(), "build", key),
  index: () => path.join(cachePaths.kernels(), "build-index"),
  sources: () => path.join(cachePaths.kernels(), "build-src"),
  work: () => path.join(cachePaths.kernels(), "build-work"),
};

export const USED_MARK = "last-used";

/** Records that a cache directory was used now (kernel gc removes what was not used for long). */
export async function touchUsed(dir: string): Promise<void> {
  await fs.writeFile(path.join(dir, USED_MARK), new Date().toISOString() + "\n").catch(() => undefined);
}

/** When `dir` was last used: its mark, else its own mtime. */
export async function lastUsed(dir: string): Promise<Date | undefined> {
  for (const p of [path.join(dir, USED_MARK), dir]) {
    try {
      return (await fs.stat(p)).mtime;
    } catch {
      // try the next
    }
  }
  return undefined;
}
