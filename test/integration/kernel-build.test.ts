// Kernels built from Debian's linux-source-7.3 with the shipped fragments and patches: booted
// under QEMU through a scenario, rebuilt incrementally when a patch line changes, served from
// the cache when nothing changed; and an arm64 64K-page cross build whose guest reports 64 KiB
// pages, booted with vmrig's arm64 guest image. A cold x86 build takes ~8 minutes on an idle
// 2-core host, the arm64 one ~7; ccache makes repeats fast.
import { readFileSync, writeFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { buildKernel, artifactOf } from "../../harness/kernels/from-source/builder.ts";
import { buildScenarioKernels, kernelListCommand } from "../../harness/commands/kernel.ts";
import { listEntries } from "../../harness/kernels/from-source/cache.ts";
import { buildPaths } from "../../harness/kernels/from-source/paths.ts";
import { debianSourceBuild } from "../../harness/kernels/from-source/spec.ts";
import { PatchError } from "../../harness/kernels/from-source/patches.ts";
import { runScenarioFile } from "../../harness/run/run-file.ts";
import { discardOutput, type Progress } from "../../harness/run/progress.ts";
import { cacheDir, repoRoot } from "../../harness/util/paths.ts";
import { ownGuestProcesses } from "../helpers/processes.ts";
import { withEnv } from "../helpers/env.ts";
import { testScratch } from "../helpers/scratch.ts";
import { testVerbose } from "../../harness/util/env.ts";

// Removed afterwards; a failed test's guest consoles are kept (the path is printed).
const tmp = testScratch("vmrig-test-kbuild-");

const fragment = (name: string) => path.join(repoRoot, "kernels", name);
const patch = (name: string) => path.join(repoRoot, "kernels", "patches", name);
const signal = new AbortController().signal;
const lines: string[] = [];
const log = (l: string) => {
  lines.push(l);
  if (testVerbose()) process.stderr.write(`${l}\n`);
};
const quiet: Progress = {
  info: log,
  stage: (k, w) => log(`[${k}] ${w}`),
  cell: () => undefined,
  done: () => undefined,
};
const sink = discardOutput;

function scenario(name: string, body: string): string {
  const f = path.join(tmp, `${name}.yaml`);
  writeFileSync(f, `name: ${name}\n${body}`);
  return f;
}

const execInitramfs = "for i in 1 2 3; do /usr/sbin/dropbear -V 2>&1 | grep -q '^Dropbear v' || exit 1; done";
// The host's programs are x86_64: an arm64 guest copies its image's dropbear and libraries to the share, drops its
// caches so the kernel reads them back from virtiofsd, and runs them from there.
const execFromShareByGuest =
  "d=/mnt/share/exec && mkdir -p $d/usr/sbin && cp -a /lib $d/ && cp -a /usr/lib $d/usr/ && " +
  "cp /usr/sbin/dropbear $d/usr/sbin/ && sync && " +
  "echo 3 > /proc/sys/vm/drop_caches && " +
  "for i in 1 2 3; do chroot $d /usr/sbin/dropbear -V 2>&1 | grep -q '^Dropbear v' || exit 1; done";

describe("x86_64 kernels built from linux-source-7.3", () => {
  const x86 = `{ source: "debian:linux-source-7.3", arch: x86_64, config: [${fragment("guest-x86_64.config")}]`;
  const allBuiltIn =
    "test ! -e /proc/modules && grep -qw virtiofs /proc/filesystems && grep -qw overlay /proc/filesystems";
  // Userland as a real kernel runs it: a dynamically linked host program mapped from the share (exec), and the
  // image's own dynamically linked dropbear from the initramfs, each three times (later runs reuse freed pages).
  const file = scenario(
    "built-x86",
    `machine: { arch: x86_64, memory: 1G, cpus: 2 }
kernels:
  stock: { build: ${x86} } }
  patched: { build: ${x86}, patches: [${patch("virtio-fs-clamp-max-pages-dma.patch")}] } }
shares:
  - { tag: share }
workloads:
  - { id: getdents-64K, readdir: { share: share, entries: 1500, bufferSize: 64K } }
  - { id: uname, shell: { command: "uname -r", expectExit: 0 } }
  - { id: all-built-in, shell: { command: "${allBuiltIn}", expectExit: 0 } }
  - { id: exec-share, exec: { share: share } }
  - { id: exec-initramfs, shell: { command: "${execInitramfs}", expectExit: 0 } }
expect: { default: PASS }
`,
  );

  it(
    "builds stock and patched kernels and boots both under QEMU through a scenario",
    async () => {
      const { result, exitCode } = await runScenarioFile(file, {
        resultsRoot: path.join(tmp, "results"),
        progress: quiet,
        out: sink,
      });
      expect(result.rows.map((r) => [r.label, r.description])).toEqual([
        ["stock", "built linux-source-7.3 (x86_64, tinyconfig+guest-x86_64.config)"],
        [
          "patched",
          "built linux-source-7.3 +virtio-fs-clamp-max-pages-dma.patch (x86_64, tinyconfig+guest-x86_64.config)",
        ],
      ]);
      for (const row of result.rows) {
        expect(
          row.cells.map((c) => [c.workload, c.outcome.kind]),
          row.label,
        ).toEqual([
          ["getdents-64K", "pass"],
          ["uname", "pass"],
          ["all-built-in", "pass"],
          ["exec-share", "pass"],
          ["exec-initramfs", "pass"],
        ]);
        expect(String(row.evidence.uname)).toMatch(/^7\.3\.4/);
      }
      expect(exitCode).toBe(0);
      expect(ownGuestProcesses()).toEqual([]);
    },
    45 * 60_000,
  );

  it(
    "rebuilds only what a changed patch line touches, in the same build directory",
    async () => {
      // Lines unique to this run, so neither kernel is cached already. v1 brings the shared build
      // directory to "clamp applied" (whatever another build left there); v2 differs by one line.
      const text = readFileSync(patch("virtio-fs-clamp-max-pages-dma.patch"), "utf8");
      const line = "(256 KiB through swiotlb bounce buffers)";
      expect(text).toContain(line);
      const run = Date.now();
      const spec = (version: string) => {
        const file = path.join(tmp, `clamp-${version}.patch`);
        writeFileSync(file, text.replace(line, `(256 KiB through swiotlb bounce buffers; run ${run} ${version})`));
        return debianSourceBuild(
          `clamp-${version}`,
          "linux-source-7.3",
          "x86_64",
          [fragment("guest-x86_64.config")],
          [file],
        );
      };
      const v1 = await buildKernel(spec("v1"), { arch: "x86_64", signal, log });
      const t0 = Date.now();
      const v2 = await buildKernel(spec("v2"), { arch: "x86_64", signal, log });
      const ms = Date.now() - t0;
      process.stderr.write(
        `x86_64 one patch line changed: ${(ms / 1000).toFixed(1)} s ` +
          `(make ${((v2.make?.ms ?? 0) / 1000).toFixed(1)} s), compiled ${v2.make?.compiled.join(" ")}\n`,
      );
      try {
        expect([v1.how, v2.how]).toEqual(["built", "built"]);
        expect(v2.manifest.key).not.toBe(v1.manifest.key);
        // Of the kernel's own sources only virtio_fs.c; the rest is what every link regenerates.
        expect(
          v2.make!.compiled.filter(
            (o) => !/^(init\/version-timestamp\.o|\.tmp_vmlinux\d\.kallsyms\.o|arch\/x86\/boot\/.*)$/.test(o),
          ),
        ).toEqual(["fs/fuse/virtio_fs.o"]);
        const log = readFileSync(path.join(buildPaths.entry(v2.manifest.key), "build.log"), "utf8");
        expect(log).toMatch(/^ {2}CC {6}fs\/fuse\/virtio_fs\.o$/m);
      } finally {
        for (const r of [v1, v2]) await fs.rm(buildPaths.entry(r.manifest.key), { recursive: true, force: true });
      }
    },
    20 * 60_000,
  );

  it(
    "serves unchanged inputs from the cache without running make, and lists them",
    async () => {
      const t0 = Date.now();
      const results = await buildScenarioKernels(file, undefined, { out: () => undefined, progress: quiet, signal });
      const ms = Date.now() - t0;
      process.stderr.write(`x86_64 no change: ${(ms / 1000).toFixed(1)} s\n`);
      expect(results.map((r) => [r.artifact.label, r.outcome.how])).toEqual([
        ["stock", "cached"],
        ["patched", "cached"],
      ]);
      const out: string[] = [];
      await kernelListCommand({ out: (l) => out.push(l) });
      for (const r of results) expect(out.join("\n")).toContain(r.artifact.identity);
    },
    10 * 60_000,
  );

  it(
    "every shipped patch (series) applies to linux-source-7.3 and compiles",
    async () => {
      const series = [
        ["fuse-readdir-single-buffer.patch"],
        ["fuse-readdir-single-buffer.patch", "virtio-fs-clamp-max-pages-dma.patch"],
        ["fuse-readdir-cap-max-io.patch"],
      ];
      for (const names of series) {
        const fragments = [fragment("guest-x86_64.config")];
        const spec = debianSourceBuild(names.join("+"), "linux-source-7.3", "x86_64", fragments, names.map(patch));
        const r = await buildKernel(spec, { arch: "x86_64", signal, log });
        process.stderr.write(
          `x86_64 ${names.join(" + ")}: ${r.how}` +
            `${r.make ? ` in ${(r.make.ms / 1000).toFixed(1)} s, compiled ${r.make.compiled.join(" ")}` : ""}\n`,
        );
        expect(r.manifest.patches.map((p) => p.name)).toEqual(names);
        // The slot keeps the previous series' objects: what must recompile is what the last patch touches.
        const touched = readFileSync(patch(names.at(-1)!), "utf8").match(/^\+\+\+ b\/(\S+)\.c$/m)![1]!;
        if (r.make) expect(r.make.compiled).toContain(`${touched}.o`);
        const warnings = lines.filter((l) => /warning: .*fuzz/.test(l));
        expect(warnings).toEqual([]);
      }
    },
    30 * 60_000,
  );

  it(
    "fails on a fragment option that does not stick, or a patch that does not apply, leaving no cache entry",
    async () => {
      // A private cache (other vmrig processes may add entries to the shared one meanwhile),
      // sharing only the Debian downloads and the unpacked source.
      const real = cacheDir();
      const own = await fs.mkdtemp(path.join(real, "test-kbuild-"));
      await fs.mkdir(path.join(own, "kernels"), { recursive: true });
      await fs.symlink(path.join(real, "debian"), path.join(own, "debian"));
      await fs.symlink(path.join(real, "kernels", "build-src"), path.join(own, "kernels", "build-src"));
      await withEnv({ VMRIG_CACHE: own }, failsCleanly).finally(() => fs.rm(own, { recursive: true, force: true }));
    },
    10 * 60_000,
  );
});

/** Bad inputs fail with the file and item named, before make, and no cache entry appears. */
async function failsCleanly(): Promise<void> {
  const extra = path.join(tmp, "extra.config");
  writeFileSync(extra, "CONFIG_PROC_SYSCTL=y\nCONFIG_VMRIG_NO_SUCH_OPTION=y\n# CONFIG_SWIOTLB is not set\n");
  const bad = debianSourceBuild("bad-config", "linux-source-7.3", "x86_64", [fragment("guest-x86_64.config"), extra]);
  await expect(buildKernel(bad, { arch: "x86_64", signal, log })).rejects.toThrow(
    new RegExp(
      [
        'Kernel "bad-config": build\\.config\\[1\\]: 3 config options from the fragments did not stick ' +
          "after olddefconfig \\(final config: .*\\):",
        "  CONFIG_PROC_SYSCTL =y \\(extra.config:1\\): .config has it absent; " +
          "no Kconfig in this tree defines it \\(renamed or removed\\?\\)",
        "  CONFIG_VMRIG_NO_SUCH_OPTION =y \\(extra.config:2\\): .config has it absent; " +
          "no Kconfig in this tree defines it \\(renamed or removed\\?\\)",
        "  CONFIG_SWIOTLB not set \\(extra.config:3\\): .config has it =y; " +
          "another option selects it, or it cannot be turned off",
      ].join("\n"),
    ),
  );
  const twice = debianSourceBuild(
    "twice",
    "linux-source-7.3",
    "x86_64",
    [fragment("guest-x86_64.config")],
    [patch("virtio-fs-clamp-max-pages-dma.patch"), patch("virtio-fs-clamp-max-pages-dma.patch")],
  );
  const err = await buildKernel(twice, { arch: "x86_64", signal, log }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PatchError);
  expect((err as Error).message).toMatch(
    /build\.patches\[1\]: .*virtio-fs-clamp-max-pages-dma\.patch \(patch 2 of 2\) does not apply to linux-source-7\.3 7\.3\.4-1~bpo13\+1 \(trixie-backports\) with patch 1 applied:\n {2}fs\/fuse\/virtio_fs\.c: is already applied/,
  );
  expect(await listEntries()).toEqual([]);
  expect(await fs.readdir(buildPaths.entries()).catch(() => [])).toEqual([]);
}

describe("arm64 with 64K pages, cross-built", () => {
  it(
    "builds linux-source-7.3 with guest-arm64-64k.config and the guest reports a 64 KiB page size",
    async () => {
      const fragment64k = fragment("guest-arm64-64k.config");
      const spec = debianSourceBuild("arm64-64k", "linux-source-7.3", "aarch64", [fragment64k]);
      const t0 = Date.now();
      const built = await buildKernel(spec, { arch: "aarch64", signal, log });
      process.stderr.write(`aarch64 64K: ${built.how} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      const kernel = artifactOf(spec, built.manifest);
      expect(readFileSync(kernel.config!, "utf8")).toMatch(/^CONFIG_ARM64_64K_PAGES=y$/m);
      expect(readFileSync(kernel.image).subarray(0x38, 0x3c).toString("latin1")).toBe("ARM\x64"); // arm64 Image magic

      const file = scenario(
        "built-arm64-64k",
        `machine: { arch: aarch64, memory: 1G, cpus: 2 }
kernels:
  arm64-64k: { build: { source: "debian:linux-source-7.3", arch: aarch64, config: [${fragment64k}] } }
shares:
  - { tag: share }
workloads:
  - { id: pagesize-64K, shell: { command: "grep -q 'KernelPageSize: *64 kB' /proc/self/smaps", expectExit: 0 } }
  - { id: getdents-64K, readdir: { share: share, entries: 1500, bufferSize: 64K } }
  - { id: exec-share, shell: { command: "${execFromShareByGuest}", expectExit: 0 } }
  - { id: exec-initramfs, shell: { command: "${execInitramfs}", expectExit: 0 } }
expect: { default: PASS }
`,
      );
      const { result, exitCode } = await runScenarioFile(file, {
        resultsRoot: path.join(tmp, "results"),
        progress: quiet,
        out: sink,
      });
      expect(result.rows[0]!.description).toBe("built linux-source-7.3 (aarch64, tinyconfig+guest-arm64-64k.config)");
      expect(
        result.rows[0]!.cells.map((c) => [c.workload, c.outcome.kind]),
        JSON.stringify({
          outcomes: result.rows[0]!.cells.map((c) => c.outcome),
          bootRetry: result.rows[0]!.evidence.bootRetry,
        }),
      ).toEqual([
        ["pagesize-64K", "pass"],
        ["getdents-64K", "pass"],
        ["exec-share", "pass"],
        ["exec-initramfs", "pass"],
      ]);
      expect(exitCode).toBe(0);
      expect(ownGuestProcesses()).toEqual([]);
    },
    40 * 60_000,
  );
});
