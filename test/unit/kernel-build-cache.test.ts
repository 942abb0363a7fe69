import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  BUILD_FORMAT,
  type BuildManifest,
  buildKey,
  collectGarbage,
  inputsKey,
  installEntry,
  listEntries,
  lookupInputs,
  readEntry,
  recordInputs,
  slotKey,
} from "../../harness/kernels/from-source/cache.ts";
import { buildPaths } from "../../harness/kernels/from-source/paths.ts";
import { formatBytes, kernelGcCommand, kernelListCommand } from "../../harness/commands/kernel.ts";
import { planToolchain } from "../../harness/kernels/from-source/toolchain.ts";
import { cleanBuildEnv, formatElapsed, kbuildStep } from "../../harness/kernels/from-source/make.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { freshCachePerTest } from "../helpers/env.ts";

const configText = await fs.readFile(
  path.join(repoRoot, "test", "fixtures", "kernel-build", "config-7.3-x86_64.excerpt"),
  "utf8",
);
const base = {
  sourceIdentity: "debian:linux-source-7.3=7.3.4-1~bpo13+1 sha256:abc",
  config: configText,
  patches: ["p1", "p2"],
  arch: "x86_64" as const,
  compiler: "gcc (Debian 12.2.0-14+deb12u1) 12.2.0 | GNU ld (GNU Binutils for Debian) 2.40",
};

describe("cache keys", () => {
  it("is stable, and changes with every input that changes the binary", () => {
    const k = buildKey(base);
    expect(k).toMatch(/^[0-9a-f]{32}$/);
    expect(buildKey({ ...base })).toBe(k);
    const variants = [
      { ...base, sourceIdentity: "debian:linux-source-7.3=7.3.5-1~bpo13+1 sha256:def" },
      { ...base, config: configText.replace("CONFIG_NR_CPUS=2", "CONFIG_NR_CPUS=8") },
      { ...base, config: configText.replace("# CONFIG_CUSE is not set", "CONFIG_CUSE=y") },
      { ...base, patches: ["p1"] },
      { ...base, patches: ["p2", "p1"] }, // order matters: patches apply in sequence
      { ...base, patches: ["p1", "p2-with-one-line-changed"] },
      { ...base, arch: "aarch64" as const },
      { ...base, compiler: "gcc (Debian 12.2.0-14+deb12u2) 12.2.0 | GNU ld (GNU Binutils for Debian) 2.40" },
    ];
    const keys = variants.map(buildKey);
    expect(new Set([k, ...keys]).size).toBe(variants.length + 1);
  });

  it("ignores .config's generated header and stray comments", () => {
    const reheaded = configText
      .replace("# Linux/x86_64 7.3.4 Kernel Configuration", "# Linux/x86_64 7.3.4 Kernel Configuration (regenerated)")
      .replace("# (excerpt:", "\n\n# (a different comment:");
    expect(buildKey({ ...base, config: reheaded })).toBe(buildKey(base));
  });

  it("keys the inputs lookup by everything the user gave, and the work slot by all but patches and compiler", () => {
    const inputs = {
      sourceIdentity: base.sourceIdentity,
      arch: base.arch,
      base: "tinyconfig",
      fragments: ["f1"],
      patches: ["p1"],
      compiler: base.compiler,
    };
    const k = inputsKey(inputs);
    expect(inputsKey({ ...inputs, patches: ["p1-changed"] })).not.toBe(k);
    expect(inputsKey({ ...inputs, fragments: ["f1", "f2"] })).not.toBe(k);
    expect(inputsKey({ ...inputs, base: "defconfig" })).not.toBe(k);
    // Stock and patched builds of one source and config share a slot: make reuses its objects.
    expect(slotKey(inputs)).toBe(slotKey({ ...inputs, patches: [] } as typeof inputs));
    expect(slotKey(inputs)).not.toBe(slotKey({ ...inputs, fragments: ["f1-changed"] }));
    expect(slotKey(inputs)).not.toBe(slotKey({ ...inputs, arch: "aarch64" }));
  });
});

describe("entries", () => {
  const cacheDir = freshCachePerTest("vmrig-kcache-");

  const manifest = (key: string): BuildManifest => ({
    format: BUILD_FORMAT,
    key,
    description: "built linux-source-7.3 (x86_64, tinyconfig+guest-x86_64.config)",
    arch: "x86_64",
    release: "7.3.4",
    image: "bzImage",
    config: "config",
    log: "build.log",
    source: { identity: base.sourceIdentity, detail: "linux-source-7.3 7.3.4-1~bpo13+1 (trixie-backports)" },
    base: "tinyconfig",
    fragments: [{ name: "guest-x86_64.config", sha256: "f" }],
    patches: [],
    compiler: base.compiler,
    builtAt: new Date().toISOString(),
    buildSeconds: 480,
    compiledObjects: 1500,
  });

  it("installs atomically, is found by key and by inputs, lists and is collected when unused", async () => {
    const files = path.join(cacheDir(), "files");
    await fs.mkdir(files);
    for (const f of ["bzImage", "config", "build.log"]) await fs.writeFile(path.join(files, f), f);
    const key = buildKey(base);
    expect(await readEntry(key)).toBeUndefined();
    await installEntry(manifest(key), {
      bzImage: path.join(files, "bzImage"),
      config: path.join(files, "config"),
      "build.log": path.join(files, "build.log"),
    });
    expect((await fs.readdir(buildPaths.entries())).filter((n) => n.includes(".tmp-"))).toEqual([]);
    expect((await readEntry(key))?.release).toBe("7.3.4");
    await recordInputs("inputs1", key);
    expect(await lookupInputs("inputs1")).toBe(key);

    // A half-written entry of an interrupted build, and a slot nobody used for 40 days.
    await fs.mkdir(path.join(buildPaths.entries(), `${key}.tmp-123-abcd`), { recursive: true });
    const slot = path.join(buildPaths.work(), "oldslot");
    await fs.mkdir(slot, { recursive: true });
    const longAgo = new Date(Date.now() - 40 * 86400_000);
    await fs.utimes(slot, longAgo, longAgo);

    const listed = await listEntries();
    expect(listed.map((e) => e.key)).toEqual([key]);
    expect(listed[0]!.bytes).toBeGreaterThan(0);

    const dry = await collectGarbage({ dryRun: true });
    expect(dry.removed.map((r) => path.basename(r.path)).sort()).toEqual([`${key}.tmp-123-abcd`, "oldslot"]);
    expect(await fs.readdir(buildPaths.work())).toEqual(["oldslot"]);

    const report = await collectGarbage({});
    expect(report.removed.map((r) => r.why).sort()).toEqual([
      "left over from an interrupted build",
      "not used for 30 days",
    ]);
    expect(report.kept).toBe(1);
    expect(await readEntry(key)).toBeDefined();

    // Everything older than 0 days: the entry and its index record go too.
    await collectGarbage({ maxAgeDays: 0, now: new Date(Date.now() + 1000) });
    expect(await readEntry(key)).toBeUndefined();
    expect(await lookupInputs("inputs1")).toBeUndefined();
  });
});

describe("kernel list and kernel gc", () => {
  const cacheDir = freshCachePerTest("vmrig-kcmd-");

  it("lists entries with release, size and description; gc reports what it removes", async () => {
    const empty: string[] = [];
    await kernelListCommand({ out: (l) => empty.push(l) });
    expect(empty).toEqual([`no built kernels in ${buildPaths.entries()}`]);

    const image = path.join(cacheDir(), "bzImage");
    await fs.writeFile(image, Buffer.alloc(3 * 1024 * 1024));
    const key = "0123456789abcdef0123456789abcdef";
    await installEntry(
      {
        format: BUILD_FORMAT,
        key,
        description: "built linux-source-7.3 +x.patch (x86_64, tinyconfig+guest-x86_64.config)",
        arch: "x86_64",
        release: "7.3.4",
        image: "bzImage",
        config: "bzImage",
        log: "bzImage",
        source: { identity: "s", detail: "d" },
        base: "tinyconfig",
        fragments: [],
        patches: [],
        compiler: "gcc",
        builtAt: "2026-11-21T12:00:00.000Z",
        buildSeconds: 1,
        compiledObjects: 1,
      },
      { bzImage: image },
    );
    await fs.mkdir(path.join(buildPaths.work(), "slot1", "out"), { recursive: true });
    const listed: string[] = [];
    await kernelListCommand({ out: (l) => listed.push(l) });
    expect(listed[0]).toMatch(/^KEY +RELEASE +BUILT +LAST USED +SIZE +DESCRIPTION$/);
    expect(listed[1]).toMatch(
      new RegExp(
        `^${key}  7\\.3\\.4 +2026-11-21 12:00  \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d  ` +
          "3\\.0 MiB  built linux-source-7\\.3 \\+x\\.patch",
      ),
    );
    expect(listed[2]).toMatch(
      /^1 build work directory in .*build-work \(last used \d{4}-\d\d-\d\d\); `vmrig kernel gc --work` removes them$/,
    );

    const gc: string[] = [];
    await kernelGcCommand({ work: true, dryRun: true, out: (l) => gc.push(l) });
    expect(gc).toEqual([
      `would remove ${path.join(buildPaths.work(), "slot1")} (0 B): work directory (--work)`,
      "would free 0 B; kept 1",
    ]);
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(2.5 * 1024 ** 3)).toBe("2.5 GiB");
  });
});

describe("toolchain and make output", () => {
  it("plans native and cross builds with ccache in front of the compiler", () => {
    expect(planToolchain("x86_64", "x64")).toEqual({
      arch: "x86_64",
      kernelArch: "x86_64",
      crossCompile: "",
      target: "bzImage",
      imagePath: "arch/x86/boot/bzImage",
      makeVars: ["ARCH=x86_64", "CC=ccache gcc", "HOSTCC=ccache gcc"],
    });
    const cross = planToolchain("aarch64", "x64");
    expect(cross.makeVars).toEqual([
      "ARCH=arm64",
      "CC=ccache aarch64-linux-gnu-gcc",
      "HOSTCC=ccache gcc",
      "CROSS_COMPILE=aarch64-linux-gnu-",
    ]);
    expect(cross.target).toBe("Image");
    expect(planToolchain("aarch64", "arm64").crossCompile).toBe("");
  });

  it("reads kbuild's step lines and formats elapsed time", () => {
    expect(kbuildStep("  CC      fs/fuse/readdir.o")).toEqual({ tool: "CC", target: "fs/fuse/readdir.o" });
    expect(kbuildStep("  ZSTD22  arch/x86/boot/compressed/vmlinux.bin.zst")).toEqual({
      tool: "ZSTD22",
      target: "arch/x86/boot/compressed/vmlinux.bin.zst",
    });
    expect(kbuildStep("make[1]: Entering directory '/x'")).toBeUndefined();
    expect(kbuildStep("fs/fuse/readdir.c:12:1: error: expected ';'")).toBeUndefined();
    expect(
      cleanBuildEnv({
        PATH: "/bin",
        HOME: "/root",
        KCONFIG_CONFIG: "/x",
        KBUILD_OUTPUT: "/o",
        KCFLAGS: "-O0",
        LLVM: "1",
        ARCH: "arm",
        MAKEFLAGS: "-j8",
        O: "/o",
        CCACHE_DIR: "/c",
      }),
    ).toEqual({
      PATH: "/bin",
      HOME: "/root",
      CCACHE_DIR: "/c",
    });
    expect(formatElapsed(7_400)).toBe("7s");
    expect(formatElapsed(483_000)).toBe("8m03s");
  });
});
