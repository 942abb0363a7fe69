import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  checkBuildFiles,
  debianSourceBuild,
  describeBuild,
  sourceName,
} from "../../harness/kernels/from-source/spec.ts";
import type { BuildSpec } from "../../harness/types.ts";
import { parseScenario } from "../../harness/scenario/load.ts";
import { SpecError, VmrigError } from "../../harness/util/errors.ts";
import { repoRoot } from "../../harness/util/paths.ts";

const frag = path.join(repoRoot, "kernels", "guest-x86_64.config");
const clamp = path.join(repoRoot, "kernels", "patches", "virtio-fs-clamp-max-pages-dma.patch");

const sourceHelp =
  'expected "debian:linux-source-X.Y" (optionally "=<debian version>" and/or "@<suite>"), ' +
  "{ git: <repository>, ref: <branch, tag or commit> } or { tarball: <file.tar.xz> }";

/** A scenario whose one kernel `b` is `build: <build>`, on line 4 (machine on line 2). */
const withBuild = (build: string, machine = "{}") =>
  `name: t\nmachine: ${machine}\nkernels:\n  b: { build: ${build} }\nworkloads: [{ id: w, shell: { command: x } }]\n`;

const buildOf = (build: string, machine?: string, file = "/s/t.yaml"): BuildSpec => {
  const source = parseScenario(withBuild(build, machine), file).kernels[0]!.source;
  if (source.kind !== "build") throw new Error("expected a build kernel");
  return source.spec;
};

/** The loader's lines for a bad build entry. */
function problems(build: string, machine?: string): string[] {
  try {
    parseScenario(withBuild(build, machine), "s.yaml");
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    return (e as Error).message.split("\n");
  }
  throw new Error("expected the scenario to be refused");
}

describe("build: in a scenario file", () => {
  it("accepts the issue's example and fills the defaults", () => {
    const spec = buildOf(`{ source: "debian:linux-source-7.3", arch: x86_64, config: [${frag}], patches: [${clamp}] }`);
    expect(spec).toEqual({
      label: "b",
      source: { kind: "debian", package: "linux-source-7.3" },
      arch: "x86_64",
      base: "tinyconfig",
      fragments: [frag],
      patches: [clamp],
      writtenAt: {
        source: { file: "/s/t.yaml", line: 4, column: 25, key: "kernels.b.build.source" },
        config: { file: "/s/t.yaml", line: 4, column: 66, key: "kernels.b.build.config" },
        "config[0]": { file: "/s/t.yaml", line: 4, column: 75, key: "kernels.b.build.config[0]" },
        "patches[0]": { file: "/s/t.yaml", line: 4, column: 75 + frag.length + 13, key: "kernels.b.build.patches[0]" },
      },
    });
    expect(describeBuild(spec)).toBe(
      "built linux-source-7.3 +virtio-fs-clamp-max-pages-dma.patch (x86_64, tinyconfig+guest-x86_64.config)",
    );
  });

  it("reads a pinned Debian version and suite, git and tarball sources, arm64 spelt either way", () => {
    const a = buildOf(`{ source: "debian:linux-source-6.12=6.12.117-1~deb12u1@bookworm-security", config: ${frag} }`);
    expect(a.source).toEqual({
      kind: "debian",
      package: "linux-source-6.12",
      version: "6.12.117-1~deb12u1",
      suite: "bookworm-security",
    });
    expect(a.arch).toBe("x86_64"); // the row's, when not given
    expect(a.fragments).toEqual([frag]); // a single string is a one-element list
    const gitBuild = `{ source: { git: /src/linux, ref: v7.3 }, arch: arm64, base: defconfig, config: [${frag}] }`;
    const g = buildOf(gitBuild, "{ arch: aarch64 }");
    expect(g.source).toEqual({ kind: "git", repo: "/src/linux", ref: "v7.3" });
    expect(g.arch).toBe("aarch64");
    expect(g.base).toBe("defconfig");
    expect(sourceName(g.source)).toBe("linux@v7.3");
    const t = buildOf(`{ source: { tarball: /dl/linux-7.3.tar.xz }, config: [${frag}] }`);
    expect(t.source).toEqual({ kind: "tarball", file: "/dl/linux-7.3.tar.xz" });
    expect(describeBuild(t)).toBe("built linux-7.3.tar.xz (x86_64, tinyconfig+guest-x86_64.config)");
  });

  it("reports each bad key at its line and column, all at once", () => {
    expect(problems(`{ source: "linux-7.3", arch: riscv64, base: allyesconfig, config: [f, 3], patchs: [] }`)).toEqual([
      `s.yaml:4:25 kernels.b.build.source: "linux-7.3" is not a source: ${sourceHelp}`,
      's.yaml:4:44 kernels.b.build.arch: expected one of x86_64, aarch64 (or amd64, arm64), got "riscv64"',
      's.yaml:4:59 kernels.b.build.base: expected one of tinyconfig, defconfig, got "allyesconfig"',
      "s.yaml:4:85 kernels.b.build.config[1]: expected a file path, got 3",
      "s.yaml:4:89 kernels.b.build.patchs: unknown key (known: source, arch, base, config, patches)",
    ]);
  });

  it("refuses a kernel for another architecture than its row's", () => {
    expect(problems(`{ source: "debian:linux-source-7.3", arch: aarch64, config: [f] }`)).toEqual([
      "s.yaml:4:58 kernels.b.build.arch: is aarch64, but the scenario's machine is x86_64: " +
        "the kernel could not boot there",
    ]);
  });

  it("requires a source and fragments; checks git and tarball sources' keys", () => {
    expect(problems("{ config: [f] }")).toEqual([
      expect.stringMatching(/^s\.yaml:4:8 kernels\.b\.build\.source: missing: expected "debian:/),
    ]);
    expect(problems(`{ source: "debian:linux-source-7.3" }`)).toEqual([
      "s.yaml:4:8 kernels.b.build.config: missing: list the config fragments to merge over the base " +
        "(e.g. kernels/guest-x86_64.config)",
    ]);
    expect(problems(`{ source: "debian:linux-source-7.3", config: [] }`)).toEqual([
      "s.yaml:4:52 kernels.b.build.config: is empty: list at least one fragment " +
        "(the guest image needs options tinyconfig lacks)",
    ]);
    expect(problems("{ source: { git: /src/linux }, config: [f] }")).toEqual([
      "s.yaml:4:17 kernels.b.build.source.ref: expected a branch, tag or commit, got nothing",
    ]);
    expect(problems(`{ source: { git: /src/linux, ref: "--upload-pack=x", depth: 1 }, config: [f] }`)).toEqual([
      's.yaml:4:49 kernels.b.build.source.ref: "--upload-pack=x" is not a ref',
      "s.yaml:4:75 kernels.b.build.source.depth: unknown key (a git source has git and ref)",
    ]);
    expect(problems(`{ source: { tarball: "https://cdn.kernel.org/linux-7.3.tar.xz" }, config: [f] }`)).toEqual([
      expect.stringMatching(/^s\.yaml:4:36 kernels\.b\.build\.source\.tarball: .*URLs are not supported/),
    ]);
    expect(problems("{ source: { svn: x }, config: [f] }")).toEqual([
      expect.stringMatching(/^s\.yaml:4:17 kernels\.b\.build\.source: expected "debian:.*, got a mapping$/),
    ]);
  });
});

describe("checkBuildFiles", () => {
  it("names every missing file, and points at the shipped one a relative path probably meant", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "vmrig-spec-"));
    try {
      const spec: BuildSpec = {
        ...debianSourceBuild("stock", "linux-source-7.3", "x86_64", [path.join(dir, "kernels", "guest-x86_64.config")]),
        source: { kind: "tarball", file: path.join(dir, "linux.tar.xz") },
        patches: [path.join(dir, "nope.patch")],
      };
      const err = await checkBuildFiles(spec).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(VmrigError);
      expect(err!.message).toBe(
        [
          'Kernel "stock":',
          `  build.config[0]: ${dir}/kernels/guest-x86_64.config does not exist ` +
            `(relative paths are resolved against the scenario's directory; vmrig ships ${frag})`,
          `  build.patches[0]: ${dir}/nope.patch does not exist`,
          `  build.source.tarball: ${dir}/linux.tar.xz does not exist`,
        ].join("\n"),
      );
      const ok = debianSourceBuild("ok", "linux-source-7.3", "x86_64", [frag], [clamp]);
      await expect(checkBuildFiles(ok)).resolves.toBeUndefined();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("reports a missing file of a scenario's build at the line that names it, like the loader", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "vmrig-spec-"));
    try {
      const file = path.join(dir, "s.yaml");
      const build = `{ source: { git: ./linux, ref: v7.3 },\n       config: [${frag}, extra.config] }`;
      const spec = buildOf(build, "{}", file);
      const err = await checkBuildFiles(spec).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(SpecError);
      expect(err!.message.split("\n")).toEqual([
        `${file}:5:${17 + frag.length + 2} kernels.b.build.config[1]: ${dir}/extra.config does not exist`,
        `${file}:4:32 kernels.b.build.source.git: ${dir}/linux does not exist`,
      ]);
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
    const built = scenario.kernels.map(({ source: s }) => s.kind === "build" && [s.spec.source, s.spec.fragments]);
    expect(built).toEqual([
      [{ kind: "git", repo: path.resolve(dir, "../linux"), ref: "v7.3" }, [path.join(dir, "frag.config")]],
      [{ kind: "tarball", file: path.join(dir, "dl/linux-7.3.tar.xz") }, [path.join(dir, "frag.config")]],
    ]);
  });

  it("reports a source that is neither a string nor a mapping at its line", () => {
    expect(problems("{ source: [x], config: [f] }")).toEqual([
      expect.stringMatching(/^s\.yaml:4:17 kernels\.b\.build\.source: .*, got a list$/),
    ]);
    expect(problems("{ source: 7, config: [f] }")).toEqual([
      `s.yaml:4:25 kernels.b.build.source: ${sourceHelp}, got 7`,
    ]);
  });
});
