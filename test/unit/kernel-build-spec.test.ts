import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { checkBuildFiles, describeBuild, parseBuildSpec, sourceName } from "../../harness/kernels/from-source/spec.ts";
import { parseScenario } from "../../harness/scenario/load.ts";
import { SpecError, VmrigError } from "../../harness/util/errors.ts";
import { repoRoot } from "../../harness/util/paths.ts";

const frag = path.join(repoRoot, "kernels", "guest-x86_64.config");
const clamp = path.join(repoRoot, "kernels", "patches", "virtio-fs-clamp-max-pages-dma.patch");

function problem(raw: Record<string, unknown>, arch: "x86_64" | "aarch64" = "x86_64"): string {
  try {
    parseBuildSpec("patched", raw, arch);
  } catch (e) {
    expect(e).toBeInstanceOf(VmrigError);
    return (e as Error).message;
  }
  throw new Error("expected parseBuildSpec to throw");
}

describe("parseBuildSpec", () => {
  it("accepts the issue's example and fills the defaults", () => {
    const spec = parseBuildSpec("patched", { source: "debian:linux-source-7.3", arch: "x86_64", config: [frag], patches: [clamp] }, "x86_64");
    expect(spec).toEqual({
      label: "patched",
      source: { kind: "debian", package: "linux-source-7.3" },
      arch: "x86_64",
      base: "tinyconfig",
      fragments: [frag],
      patches: [clamp],
    });
    expect(describeBuild(spec)).toBe("built linux-source-7.3 +virtio-fs-clamp-max-pages-dma.patch (x86_64, tinyconfig+guest-x86_64.config)");
  });

  it("reads a pinned Debian version and suite, git and tarball sources, arm64 spelt either way", () => {
    const a = parseBuildSpec("k", { source: "debian:linux-source-6.12=6.12.117-1~deb12u1@bookworm-security", config: frag }, "x86_64");
    expect(a.source).toEqual({ kind: "debian", package: "linux-source-6.12", version: "6.12.117-1~deb12u1", suite: "bookworm-security" });
    expect(a.arch).toBe("x86_64"); // the machine's, when not given
    expect(a.fragments).toEqual([frag]); // a single string is a one-element list
    const g = parseBuildSpec("k", { source: { git: "/src/linux", ref: "v7.3" }, arch: "arm64", base: "defconfig", config: [frag] }, "aarch64");
    expect(g.source).toEqual({ kind: "git", repo: "/src/linux", ref: "v7.3" });
    expect(g.arch).toBe("aarch64");
    expect(g.base).toBe("defconfig");
    expect(sourceName(g.source)).toBe("linux@v7.3");
    const t = parseBuildSpec("k", { source: { tarball: "/dl/linux-7.3.tar.xz" }, config: [frag] }, "x86_64");
    expect(t.source).toEqual({ kind: "tarball", file: "/dl/linux-7.3.tar.xz" });
    expect(describeBuild(t)).toBe("built linux-7.3.tar.xz (x86_64, tinyconfig+guest-x86_64.config)");
  });

  it("names the kernel and the key for each bad input, all at once", () => {
    const msg = problem({ source: "linux-7.3", arch: "riscv64", base: "allyesconfig", config: [frag, 3], patchs: [] });
    expect(msg).toBe(
      [
        'Kernel "patched":',
        "  build.patchs: unknown key (known: source, arch, base, config, patches)",
        '  build.source: "linux-7.3" is not a source: expected "debian:linux-source-X.Y" (optionally "=<debian version>" and/or "@<suite>"), { git: <repository>, ref: <branch, tag or commit> } or { tarball: <file.tar.xz> }',
        '  build.arch: expected one of x86_64, aarch64, got "riscv64"',
        '  build.base: expected tinyconfig or defconfig, got "allyesconfig"',
        "  build.config[1]: expected a file path, got 3",
      ].join("\n"),
    );
  });

  it("refuses a kernel for another architecture than the machine's", () => {
    expect(problem({ source: "debian:linux-source-7.3", arch: "aarch64", config: [frag] }, "x86_64")).toBe(
      'Kernel "patched": build.arch: is aarch64, but the scenario\'s machine is x86_64: the kernel could not boot there',
    );
  });

  it("requires a source and fragments; checks git and tarball sources' keys", () => {
    expect(problem({ config: [frag] })).toMatch(/^Kernel "patched": build\.source: missing: expected "debian:linux-source-X\.Y"/);
    expect(problem({ source: "debian:linux-source-7.3" })).toMatch(/build\.config: missing: list the config fragments/);
    expect(problem({ source: "debian:linux-source-7.3", config: [] })).toMatch(/build\.config: is empty/);
    expect(problem({ source: { git: "/src/linux" }, config: [frag] })).toBe('Kernel "patched": build.source.ref: expected a branch, tag or commit, got nothing');
    expect(problem({ source: { git: "/src/linux", ref: "--upload-pack=x" }, config: [frag] })).toMatch(/build\.source\.ref: "--upload-pack=x" is not a ref/);
    expect(problem({ source: { tarball: "https://cdn.kernel.org/linux-7.3.tar.xz" }, config: [frag] })).toMatch(/build\.source\.tarball: .*URLs are not supported/);
    expect(problem({ source: { svn: "x" }, config: [frag] })).toMatch(/^Kernel "patched": build\.source: expected "debian:/);
  });
});

describe("checkBuildFiles", () => {
  it("names every missing file, and points at the shipped one a relative path probably meant", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "vmrig-spec-"));
    try {
      const spec = parseBuildSpec(
        "stock",
        { source: { tarball: path.join(dir, "linux.tar.xz") }, config: [path.join(dir, "kernels", "guest-x86_64.config")], patches: [path.join(dir, "nope.patch")] },
        "x86_64",
      );
      const err = await checkBuildFiles(spec).then(() => undefined, (e: Error) => e);
      expect(err).toBeInstanceOf(VmrigError);
      expect(err!.message).toBe(
        [
          'Kernel "stock":',
          `  build.config[0]: ${dir}/kernels/guest-x86_64.config does not exist (relative paths are resolved against the scenario's directory; vmrig ships ${frag})`,
          `  build.patches[0]: ${dir}/nope.patch does not exist`,
          `  build.source.tarball: ${dir}/linux.tar.xz does not exist`,
        ].join("\n"),
      );
      await expect(checkBuildFiles(parseBuildSpec("ok", { source: "debian:linux-source-7.3", config: [frag], patches: [clamp] }, "x86_64"))).resolves.toBeUndefined();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe("build kernels in a scenario file", () => {
  it("resolves git and tarball sources like fragments and patches: against the scenario's directory", () => {
    const scenario = parseScenario(
      `name: t
kernels:
  g: { build: { source: { git: ../linux, ref: v7.3 }, config: [frag.config] } }
  t: { build: { source: { tarball: dl/linux-7.3.tar.xz }, config: [frag.config] } }
workloads: [{ id: w, shell: { command: x } }]
`,
      "some/dir/s.yaml",
    );
    const dir = path.resolve("some/dir");
    expect(scenario.kernels.map((k) => k.source)).toEqual([
      { kind: "build", spec: { source: { git: path.resolve(dir, "../linux"), ref: "v7.3" }, config: [path.join(dir, "frag.config")] } },
      { kind: "build", spec: { source: { tarball: path.join(dir, "dl/linux-7.3.tar.xz") }, config: [path.join(dir, "frag.config")] } },
    ]);
  });

  it("reports a source that is neither a string nor a mapping at its line", () => {
    expect(() =>
      parseScenario(`name: t\nkernels:\n  b: { build: { source: [x], config: [f] } }\nworkloads: [{ id: w, shell: { command: x } }]\n`, "s.yaml"),
    ).toThrow(SpecError);
    expect(() =>
      parseScenario(`name: t\nkernels:\n  b: { build: { source: 7, config: [f] } }\nworkloads: [{ id: w, shell: { command: x } }]\n`, "s.yaml"),
    ).toThrow(/s\.yaml:3:\d+ kernels\.b\.build\.source: expected "debian:linux-source-X\.Y", \{ git: <repository>, ref: <ref> \} or \{ tarball: <file> \}, got 7/);
  });
});
