// The atomic-write helpers on a real directory: the target is either absent or complete, and
// a failed build leaves no temporary file behind.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  buildDirAtomic,
  buildFileAtomic,
  isTempSibling,
  removeTempSiblings,
  tempSibling,
} from "../../harness/util/atomic-fs.ts";
import { freshCachePerTest } from "../helpers/env.ts";

describe("atomic-fs", () => {
  const dir = freshCachePerTest("vmrig-atomic-fs-");

  it("buildFileAtomic publishes what the build wrote, and on failure keeps the old file", async () => {
    const target = path.join(dir(), "deep", "vhost-user-relay-0123");
    await buildFileAtomic(target, async (tmp) => {
      expect(path.dirname(tmp)).toBe(path.dirname(target));
      execFileSync("cp", ["/bin/true", tmp]);
    });
    expect(readFileSync(target)).toEqual(readFileSync("/bin/true"));

    await expect(
      buildFileAtomic(target, async (tmp) => {
        writeFileSync(tmp, "half a binary");
        throw new Error("compiler killed");
      }),
    ).rejects.toThrow("compiler killed");
    expect(readFileSync(target)).toEqual(readFileSync("/bin/true"));
    expect(await fs.readdir(path.dirname(target))).toEqual(["vhost-user-relay-0123"]);
  });

  it("buildDirAtomic with createTemp: false lets a tool that refuses an existing target make it", async () => {
    const pristine = path.join(dir(), "pristine");
    mkdirSync(path.join(pristine, "kernel"), { recursive: true });
    writeFileSync(path.join(pristine, "Makefile"), "VERSION = 6\n");
    const src = path.join(dir(), "slot", "src");
    await buildDirAtomic(src, async (tmp) => void execFileSync("cp", ["-al", pristine, tmp]), { createTemp: false });
    expect((await fs.readdir(src)).sort()).toEqual(["Makefile", "kernel"]);
    expect(await fs.readdir(path.dirname(src))).toEqual(["src"]);
  });

  it("names temporary siblings recognisably, and removes only those of one target", async () => {
    const src = path.join(dir(), "src");
    const left = [tempSibling(src), tempSibling(src)];
    const other = tempSibling(path.join(dir(), "srcs"));
    for (const d of [...left, other, src]) mkdirSync(d);
    expect(left.map(isTempSibling)).toEqual([true, true]);
    expect(isTempSibling(src)).toBe(false);
    expect(isTempSibling("6f1c2d.tmp-1234-89abcdef")).toBe(true);
    await removeTempSiblings(src);
    expect((await fs.readdir(dir())).sort()).toEqual(["src", path.basename(other)].sort());
  });
});
