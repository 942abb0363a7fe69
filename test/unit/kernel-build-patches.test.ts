import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  PatchError,
  applyPatches,
  parsePatch,
  parsePatchOutput,
  touchedFiles,
} from "../../harness/kernels/from-source/patches.ts";
import { checkBuildFiles } from "../../harness/kernels/from-source/spec.ts";
import { patchInput, prepareWorkTree } from "../../harness/kernels/from-source/worktree.ts";
import { loadScenario } from "../../harness/scenario/load.ts";
import { repoRoot } from "../../harness/util/paths.ts";

const shipped = (name: string) => fs.readFile(path.join(repoRoot, "kernels", "patches", name), "utf8");

describe("parsePatch", () => {
  it("finds the files and hunks of the shipped format-patch mails", async () => {
    const clamp = parsePatch(await shipped("virtio-fs-clamp-max-pages-dma.patch"));
    expect(clamp).toEqual([
      {
        oldPath: "fs/fuse/virtio_fs.c",
        newPath: "fs/fuse/virtio_fs.c",
        hunks: ["@@ -1761,6 +1761,15 @@ static int virtio_fs_get_tree(struct fs_context *fsc)"],
        firstHunkLine: expect.any(Number),
      },
    ]);
    const revert = parsePatch(await shipped("fuse-readdir-single-buffer.patch"));
    expect(revert.map((f) => [f.newPath, f.hunks.length])).toEqual([["fs/fuse/readdir.c", 4]]);
    expect(touchedFiles(await shipped("fuse-readdir-cap-max-io.patch"))).toEqual(["fs/fuse/readdir.c"]);
  });

  it("does not take a removed '-- ' line for a file header, and knows created and deleted files", () => {
    const text = [
      "--- a/notes.txt",
      "+++ b/notes.txt",
      "@@ -1,3 +1,2 @@",
      " keep",
      "--- a/looks-like-a-header",
      "-+++ b/but-is-not",
      "+new",
      "--- /dev/null",
      "+++ b/created.c",
      "@@ -0,0 +1 @@",
      "+int x;",
      "--- a/gone.c",
      "+++ /dev/null",
      "@@ -1 +0,0 @@",
      "-int y;",
      "",
    ].join("\n");
    expect(parsePatch(text).map((f) => [f.oldPath, f.newPath, f.hunks.length])).toEqual([
      ["notes.txt", "notes.txt", 1],
      [undefined, "created.c", 1],
      ["gone.c", undefined, 1],
    ]);
    expect(touchedFiles(text)).toEqual(["created.c", "gone.c", "notes.txt"]);
  });

  it("reads GNU patch's verdicts", () => {
    const files = parsePatch(
      "--- a/f.c\n+++ b/f.c\n@@ -1,3 +1,3 @@ int f(void)\n a\n-b\n+B\n c\n" +
        "@@ -10,3 +10,3 @@ int g(void)\n x\n-y\n+Y\n z\n" +
        "--- a/missing.c\n+++ b/missing.c\n@@ -1 +1 @@\n-q\n+Q\n",
    );
    const out = [
      "checking file f.c",
      "Hunk #1 succeeded at 4 with fuzz 1 (offset 3 lines).",
      "Hunk #2 FAILED at 10.",
      "1 out of 2 hunks FAILED",
      "can't find file to patch at input line 15",
      "Perhaps you used the wrong -p or --strip option?",
      "No file to patch.  Skipping patch.",
    ].join("\n");
    expect(parsePatchOutput(out, files)).toEqual({
      failed: [
        {
          file: "f.c",
          hunk: 2,
          header: "@@ -10,3 +10,3 @@ int g(void)",
          problem: "does not match the tree (tried at line 10)",
        },
        { file: "missing.c", problem: "the file does not exist in the tree" },
      ],
      loose: ["f.c: hunk #1 applied at line 4 with fuzz 1 (offset 3 lines)"],
    });
  });
});

describe("applying patches to a real tree", () => {
  let dir: string;
  let pristine: string;
  const log: string[] = [];
  const opts = () => ({
    label: "patched",
    onto: "tiny-tree 1.0",
    signal: new AbortController().signal,
    log: (l: string) => log.push(l),
  });

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "vmrig-patch-"));
    pristine = path.join(dir, "pristine");
    await fs.mkdir(path.join(pristine, "fs", "fuse"), { recursive: true });
    await fs.writeFile(
      path.join(pristine, "fs", "fuse", "readdir.c"),
      ["int a;", "int b;", "int c;", "int d;", "int e;", "int f;", "int g;", ""].join("\n"),
    );
    await fs.writeFile(path.join(pristine, "fs", "fuse", "dir.c"), "int dir;\n");
    await fs.writeFile(path.join(pristine, "Makefile"), "all:\n");
    log.length = 0;
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const write = async (name: string, text: string) => {
    const file = path.join(dir, name);
    await fs.writeFile(file, text);
    return { file, text };
  };
  const changeB =
    "--- a/fs/fuse/readdir.c\n+++ b/fs/fuse/readdir.c\n@@ -1,4 +1,4 @@\n int a;\n-int b;\n+int B;\n int c;\n int d;\n";

  it("reports which hunk of which patch failed, and leaves the tree as the previous patches left it", async () => {
    const tree = path.join(dir, "tree");
    await fs.cp(pristine, tree, { recursive: true });
    const good = await write("01-good.patch", changeB);
    const bad = await write(
      "02-bad.patch",
      "From: someone\nSubject: [PATCH] does not apply\n---\n" +
        "--- a/fs/fuse/readdir.c\n+++ b/fs/fuse/readdir.c\n" +
        "@@ -1,3 +1,3 @@\n int a;\n-int B;\n+int BB;\n int c;\n" +
        "@@ -5,3 +5,3 @@ static int fuse_readdir_uncached(struct file *file)\n" +
        " int e;\n-int NOT_THERE;\n+int F;\n int g;\n",
    );
    const err = await applyPatches(tree, [good, bad], opts()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PatchError);
    const e = err as PatchError;
    expect(e.index).toBe(1);
    expect(e.exitCode).toBe(2);
    expect(e.message.split("\n").slice(0, 2)).toEqual([
      `Kernel "patched": build.patches[1]: ${bad.file} (patch 2 of 2) ` +
        "does not apply to tiny-tree 1.0 with patch 1 applied:",
      "  fs/fuse/readdir.c: hunk #2 (@@ -5,3 +5,3 @@ static int fuse_readdir_uncached(struct file *file)) " +
        "does not match the tree (tried at line 5)",
    ]);
    expect(e.message).toContain("Hunk #2 FAILED at 5.");
    // patch 1 is in, patch 2 (dry-run first) left no trace: no half-applied hunk #1, no .rej/.orig.
    expect(await fs.readFile(path.join(tree, "fs", "fuse", "readdir.c"), "utf8")).toContain("int B;\nint c;");
    expect((await fs.readdir(path.join(tree, "fs", "fuse"))).sort()).toEqual(["dir.c", "readdir.c"]);
  });

  it("reports a patch of a scenario file that does not apply, or is missing, at the line that lists it", async () => {
    const scenario = path.join(dir, "scenario.yaml");
    await fs.writeFile(
      scenario,
      [
        "name: patched-tree",
        "kernels:",
        "  patched:",
        "    build:",
        '      source: "debian:linux-source-7.3"',
        "      config: [guest.config]",
        "      patches:",
        "        - 01-good.patch",
        "        - 02-bad.patch",
        'workloads: [{ id: w, shell: { command: "true" } }]',
        "",
      ].join("\n"),
    );
    await write("guest.config", "CONFIG_FUSE_FS=y\n");
    await write("01-good.patch", changeB);
    await write(
      "02-bad.patch",
      "--- a/fs/fuse/readdir.c\n+++ b/fs/fuse/readdir.c\n@@ -5,3 +5,3 @@\n int e;\n-int NOT_THERE;\n+int F;\n int g;\n",
    );
    const kernel = (await loadScenario(scenario)).kernels[0]!;
    if (kernel.source.kind !== "build") throw new Error("expected a build kernel");
    const spec = kernel.source.spec;
    const patches = await Promise.all(
      spec.patches.map(async (file) => patchInput(file, await fs.readFile(file, "utf8"))),
    );
    const err = await prepareWorkTree(path.join(dir, "slot"), pristine, "tiny-1", patches, {
      ...opts(),
      label: spec.label,
      writtenAt: spec.writtenAt,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PatchError);
    expect((err as PatchError).message.split("\n").slice(0, 2)).toEqual([
      `${scenario}:9:11 kernels.patched.build.patches[1]: ${dir}/02-bad.patch (patch 2 of 2) ` +
        "does not apply to tiny-tree 1.0 with patch 1 applied:",
      "  fs/fuse/readdir.c: hunk #1 (@@ -5,3 +5,3 @@) does not match the tree (tried at line 5)",
    ]);

    // The same entry, when the file is gone before the build starts.
    await fs.rm(path.join(dir, "02-bad.patch"));
    await expect(checkBuildFiles(spec)).rejects.toThrow(
      `${scenario}:9:11 kernels.patched.build.patches[1]: ${dir}/02-bad.patch does not exist`,
    );
  });

  it("says so when a patch is already applied, or names a file the tree lacks", async () => {
    const tree = path.join(dir, "tree");
    await fs.cp(pristine, tree, { recursive: true });
    const good = await write("good.patch", changeB);
    const twice = await applyPatches(tree, [good, good], opts()).then(
      () => undefined,
      (e: PatchError) => e,
    );
    expect(twice!.message).toMatch(
      /patch 2 of 2\) does not apply to tiny-tree 1\.0 with patch 1 applied:\n {2}fs\/fuse\/readdir\.c: is already applied \(or the patch is reversed\)/,
    );
    const other = await write("other.patch", "--- a/fs/nfs/dir.c\n+++ b/fs/nfs/dir.c\n@@ -1 +1 @@\n-x\n+y\n");
    const missing = await applyPatches(tree, [other], opts()).then(
      () => undefined,
      (e: PatchError) => e,
    );
    expect(missing!.failed).toEqual([{ file: "fs/nfs/dir.c", problem: "the file does not exist in the tree" }]);
    const empty = await write("empty.patch", "just a mail, no diff\n");
    await expect(applyPatches(tree, [empty], opts())).rejects.toThrow(/contains no unified diff/);
  });

  it("work tree: patches a hard-linked copy without touching the pristine tree, and rebuilds only what changed", async () => {
    const slot = path.join(dir, "slot");
    const readdirPristine = path.join(pristine, "fs", "fuse", "readdir.c");
    const before = await fs.readFile(readdirPristine, "utf8");
    const v1 = patchInput(path.join(dir, "p.patch"), changeB);
    const src = await prepareWorkTree(slot, pristine, "tiny-1", [v1], opts());
    const readdir = path.join(src, "fs", "fuse", "readdir.c");
    expect(await fs.readFile(readdir, "utf8")).toContain("int B;");
    expect(await fs.readFile(readdirPristine, "utf8")).toBe(before);
    // Untouched files are hard links to the pristine ones; the patched one is not.
    expect((await fs.stat(path.join(src, "fs", "fuse", "dir.c"))).ino).toBe(
      (await fs.stat(path.join(pristine, "fs", "fuse", "dir.c"))).ino,
    );
    expect((await fs.stat(readdir)).ino).not.toBe((await fs.stat(readdirPristine)).ino);

    // Same patches again: nothing is touched (make sees no change).
    const old = new Date("2020-01-01T00:00:00Z");
    await fs.utimes(readdir, old, old);
    await prepareWorkTree(slot, pristine, "tiny-1", [patchInput(v1.file, v1.text)], opts());
    expect((await fs.stat(readdir)).mtime).toEqual(old);

    // One patch line changed: the file is re-patched and gets a new mtime.
    const v2 = patchInput(v1.file, changeB.replace("+int B;", "+int B2;"));
    await prepareWorkTree(slot, pristine, "tiny-1", [v2], opts());
    expect(await fs.readFile(readdir, "utf8")).toContain("int B2;");
    expect((await fs.stat(readdir)).mtime.getTime()).toBeGreaterThan(old.getTime());

    // A second patch on another file: readdir.c ends up as it was, so it keeps its mtime.
    await fs.utimes(readdir, old, old);
    const dirPatch = patchInput(
      path.join(dir, "d.patch"),
      "--- a/fs/fuse/dir.c\n+++ b/fs/fuse/dir.c\n@@ -1 +1 @@\n-int dir;\n+int dir2;\n",
    );
    await prepareWorkTree(slot, pristine, "tiny-1", [v2, dirPatch], opts());
    expect((await fs.stat(readdir)).mtime).toEqual(old);
    expect(await fs.readFile(path.join(src, "fs", "fuse", "dir.c"), "utf8")).toBe("int dir2;\n");

    // Back to no patches: every patched file is restored, with a fresh mtime; pristine intact.
    await prepareWorkTree(slot, pristine, "tiny-1", [], opts());
    expect(await fs.readFile(readdir, "utf8")).toBe(before);
    expect((await fs.stat(readdir)).mtime.getTime()).toBeGreaterThan(old.getTime());
    expect(await fs.readFile(path.join(src, "fs", "fuse", "dir.c"), "utf8")).toBe("int dir;\n");
    expect(await fs.readFile(path.join(pristine, "fs", "fuse", "dir.c"), "utf8")).toBe("int dir;\n");

    // A failing patch leaves the slot recoverable: the next call starts from pristine again.
    const bad = patchInput(path.join(dir, "bad.patch"), changeB.replace(" int c;", " int zzz;"));
    await expect(prepareWorkTree(slot, pristine, "tiny-1", [v2, bad], opts())).rejects.toBeInstanceOf(PatchError);
    await prepareWorkTree(slot, pristine, "tiny-1", [dirPatch], opts());
    expect(await fs.readFile(readdir, "utf8")).toBe(before);
    expect(await fs.readFile(readdirPristine, "utf8")).toBe(before);
  });
});
