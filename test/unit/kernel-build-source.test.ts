import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DebPackage } from "../../harness/debian/control.ts";
import { chooseSourcePackage, preparePristineSource } from "../../harness/kernels/from-source/source.ts";
import { buildPaths } from "../../harness/kernels/from-source/paths.ts";
import { parseScenario } from "../../harness/scenario/load.ts";

const pkg = (name: string, version: string, suite: string): DebPackage => ({
  name,
  version,
  architecture: "all",
  suite,
  archiveUrl: "http://deb.debian.org/debian",
  filename: `pool/main/l/linux/${name}_${version}_all.deb`,
  size: 1,
  sha256: "0",
  depends: "binutils, xz-utils",
  fields: {},
});

describe("chooseSourcePackage", () => {
  const packages = [
    pkg("linux-source-6.12", "6.12.117-1~deb12u1", "bookworm-security"),
    pkg("linux-source-6.12", "6.12.117-1", "trixie-security"),
    pkg("linux-source-6.12", "6.12.95-1~bpo12+1", "bookworm-backports"),
    pkg("linux-source-7.3", "7.3~rc7-1~exp1", "experimental"),
    pkg("linux-source-7.3", "7.3.4-1~bpo13+1", "trixie-backports"),
    pkg("linux-source", "7.3.4-1~bpo13+1", "trixie-backports"),
  ];
  it("takes the newest Debian version of the named package, or exactly the pinned one", () => {
    // Not the rc.
    expect(chooseSourcePackage(packages, { package: "linux-source-7.3" })?.version).toBe("7.3.4-1~bpo13+1");
    expect(chooseSourcePackage(packages, { package: "linux-source-6.12" })?.suite).toBe("trixie-security");
    expect(chooseSourcePackage(packages, { package: "linux-source-6.12", version: "6.12.117-1~deb12u1" })?.suite).toBe(
      "bookworm-security",
    );
    expect(chooseSourcePackage(packages, { package: "linux-source-7.4" })).toBeUndefined();
  });
});

describe("local sources", () => {
  let dir: string;
  const saved = process.env.VMRIG_CACHE;
  const opts = { signal: new AbortController().signal, log: () => undefined, label: "k" };

  async function fakeKernel(root: string, version: string) {
    await fs.mkdir(path.join(root, "scripts", "kconfig"), { recursive: true });
    await fs.writeFile(path.join(root, "Makefile"), `VERSION = ${version}\n`);
    await fs.writeFile(path.join(root, "Kconfig"), "config FOO\n\tbool\n");
    await fs.writeFile(path.join(root, "scripts", "kconfig", "merge_config.sh"), "#!/bin/sh\n", { mode: 0o755 });
  }

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "vmrig-src-"));
    process.env.VMRIG_CACHE = path.join(dir, "cache");
  });
  afterEach(async () => {
    if (saved === undefined) delete process.env.VMRIG_CACHE;
    else process.env.VMRIG_CACHE = saved;
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("unpacks a tarball once, identified by its content", async () => {
    await fakeKernel(path.join(dir, "linux-7.3"), "7");
    const tarball = path.join(dir, "linux-7.3.tar.xz");
    await execa("tar", ["-cJf", tarball, "-C", dir, "linux-7.3"]);
    const a = await preparePristineSource({ kind: "tarball", file: tarball }, opts);
    expect(a.identity).toMatch(/^tarball:sha256:[0-9a-f]{64}$/);
    expect(await fs.readFile(path.join(a.tree, "Makefile"), "utf8")).toBe("VERSION = 7\n");
    expect(path.dirname(a.tree).startsWith(buildPaths.sources())).toBe(true);
    const b = await preparePristineSource({ kind: "tarball", file: tarball }, opts);
    expect(b).toEqual(a);

    await fs.writeFile(path.join(dir, "notakernel.txt"), "x");
    const bad = path.join(dir, "bad.tar.gz");
    await execa("tar", ["-czf", bad, "-C", dir, "notakernel.txt"]);
    await expect(preparePristineSource({ kind: "tarball", file: bad }, opts)).rejects.toThrow(
      /does not unpack into one directory/,
    );
    expect((await fs.readdir(buildPaths.sources())).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("exports a git ref without touching the user's repository", async () => {
    const repo = path.join(dir, "linux");
    await fakeKernel(repo, "7");
    const git = (...args: string[]) => execa("git", ["-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", ...args]);
    await git("init", "-q");
    await git("add", "-A");
    await git("commit", "-qm", "v7.3");
    await git("tag", "v7.3");
    // Uncommitted work in the user's checkout must neither leak into the build nor be disturbed.
    await fs.writeFile(path.join(repo, "Makefile"), "VERSION = dirty\n");
    const listing = async () =>
      (await execa("find", [path.join(repo, ".git"), "-printf", "%P %s %T@\\n"])).stdout.split("\n").sort().join("\n");
    const before = await listing();

    const src = await preparePristineSource({ kind: "git", repo, ref: "v7.3" }, opts);
    const commit = (await git("rev-parse", "v7.3^{commit}")).stdout.trim();
    expect(src.identity).toBe(`git:${commit}`);
    expect(await fs.readFile(path.join(src.tree, "Makefile"), "utf8")).toBe("VERSION = 7\n");
    expect(await listing()).toBe(before);
    expect(await fs.readFile(path.join(repo, "Makefile"), "utf8")).toBe("VERSION = dirty\n");
    expect((await git("worktree", "list")).stdout.split("\n")).toHaveLength(1);

    await expect(preparePristineSource({ kind: "git", repo, ref: "v9.9" }, opts)).rejects.toThrow(
      `Kernel "k": build.source.ref: "v9.9" is not a commit in ${repo}.`,
    );
    // From a scenario file: at the line that wrote the ref.
    const scenario = path.join(dir, "scenario.yaml");
    const yaml =
      "name: t\nkernels:\n  k:\n    build:\n" + `      source: { git: ${repo}, ref: v9.9 }\n      config: [g.config]\n`;
    const kernel = parseScenario(`${yaml}workloads: [{ id: w, shell: { command: x } }]\n`, scenario).kernels[0]!;
    if (kernel.source.kind !== "build") throw new Error("expected a build kernel");
    const { spec } = kernel.source;
    await expect(
      preparePristineSource(spec.source, { ...opts, label: spec.label, writtenAt: spec.writtenAt }),
    ).rejects.toThrow(
      `${scenario}:5:${29 + repo.length} kernels.k.build.source.ref: "v9.9" is not a commit in ${repo}.`,
    );
  });
});
