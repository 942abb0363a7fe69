// A patch series is checked against the pristine tree before a build waits for its slot: with real
// GNU patch on a scratch copy of the touched files, the pristine tree untouched. And while a build
// waits for another, it says for what and since when.
import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { PatchError } from "../../harness/kernels/from-source/patches.ts";
import { checkPatchSeries, patchInput } from "../../harness/kernels/from-source/worktree.ts";
import { parseLockFile, waitingLine } from "../../harness/kernels/from-source/lock.ts";
import { freshCachePerTest } from "../helpers/env.ts";

const first = ["--- a/fs/a.c", "+++ b/fs/a.c", "@@ -1,2 +1,2 @@", " int a;", "-int b;", "+int b2;", ""].join("\n");
// Needs the first patch: it changes the line the first one wrote.
const second = ["--- a/fs/a.c", "+++ b/fs/a.c", "@@ -1,2 +1,2 @@", " int a;", "-int b2;", "+int b3;", ""].join("\n");
const opts = { label: "patched", onto: "linux-source-7.3", signal: new AbortController().signal, log: () => undefined };

describe("checking a patch series before the build slot", () => {
  const dir = freshCachePerTest("vmrig-patch-series-");

  async function pristine(): Promise<string> {
    const tree = path.join(dir(), "pristine");
    await fs.mkdir(path.join(tree, "fs"), { recursive: true });
    await fs.writeFile(path.join(tree, "fs", "a.c"), "int a;\nint b;\n");
    await fs.writeFile(path.join(tree, "Makefile"), "all:\n");
    return tree;
  }

  it("applies a series whose second patch needs the first, leaving the pristine tree as it was", async () => {
    const tree = await pristine();
    await checkPatchSeries(tree, [patchInput("/p/1.patch", first), patchInput("/p/2.patch", second)], opts);
    expect(await fs.readFile(path.join(tree, "fs", "a.c"), "utf8")).toBe("int a;\nint b;\n");
  });

  it("refuses a series in the wrong order with the patch that failed and where the scenario names it", async () => {
    const tree = await pristine();
    const writtenAt = {
      "patches[0]": { file: "s.yaml", line: 9, column: 11, key: "kernels.patched.build.patches[0]" },
    };
    const err = await checkPatchSeries(tree, [patchInput("/p/2.patch", second)], { ...opts, writtenAt }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PatchError);
    expect((err as Error).message).toMatch(/^s\.yaml:9:11 kernels\.patched\.build\.patches\[0\]: .*2\.patch/);
    expect(await fs.readFile(path.join(tree, "fs", "a.c"), "utf8")).toBe("int a;\nint b;\n");
  });
});

describe("waiting for another build", () => {
  it("says who builds what since when, and how long it has waited", () => {
    const holder = parseLockFile("4242\npatched (linux-source-7.3, x86_64)\n2026-12-02T19:30:05.123Z\n");
    expect(holder).toEqual({
      pid: 4242,
      what: "patched (linux-source-7.3, x86_64)",
      since: "2026-12-02T19:30:05.123Z",
    });
    expect(waitingLine(holder, "/c/slot", 1000)).toBe(
      "waiting for vmrig process 4242, building patched (linux-source-7.3, x86_64) since 2026-12-02T19:30:05Z in /c/slot",
    );
    expect(waitingLine(holder, "/c/slot", 14 * 60_000 + 5)).toMatch(/ \(waited 14 min so far\)$/);
    // A lock written by an older vmrig holds only the pid.
    expect(waitingLine(parseLockFile("4242\n"), "/c/slot", 0)).toBe(
      "waiting for vmrig process 4242, building in /c/slot",
    );
  });
});
