// Run directories on a real directory: runs of one scenario started in the same second, even in
// separate processes, each get a directory of their own.
import { execa } from "execa";
import { readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createRunDir, runStamp } from "../../harness/util/run-dir.ts";
import { freshCachePerTest } from "../helpers/env.ts";

describe("run directories", () => {
  const dir = freshCachePerTest("vmrig-run-dir-");
  const at = new Date("2026-12-02T18:06:22.512Z");

  it("names a run by its second", () => {
    expect(runStamp(at)).toBe("2026-12-02T18-06-22Z");
  });

  it("gives runs started in the same second distinct directories", async () => {
    const parent = path.join(dir(), "getdents-swiotlb-debian");
    const made = await Promise.all(Array.from({ length: 8 }, () => createRunDir(parent, at)));
    expect(new Set(made).size).toBe(8);
    expect(made.map((d) => path.basename(d)).sort()).toContain("2026-12-02T18-06-22Z");
    expect(readdirSync(parent)).toHaveLength(8);
  });

  it("holds across processes: each process gets its own directory", async () => {
    const parent = path.join(dir(), "across");
    const script = `import { createRunDir } from ${JSON.stringify(path.resolve("harness/util/run-dir.ts"))};
      console.log(await createRunDir(${JSON.stringify(parent)}, new Date(${at.getTime()})));`;
    const runs = await Promise.all(
      Array.from({ length: 4 }, () => execa("node", ["--import", "tsx", "--input-type=module", "-e", script])),
    );
    const dirs = runs.map((r) => r.stdout.trim());
    expect(new Set(dirs).size).toBe(4);
    expect(readdirSync(parent).sort()).toEqual(dirs.map((d) => path.basename(d)).sort());
  });
});
