// Kernel build times, each with its ratio to the cold build, per architecture:
//   cold            empty ccache, no build directory
//   warm ccache     no build directory (nor cached kernel), ccache filled by the cold build
//   one file        one line of the patch changed: make recompiles one object and relinks
//   no-op make      same inputs, cached kernel removed: kconfig + make with nothing to compile
//   no change       same inputs again: served from the cache, make does not run
// Runs in a private VMRIG_CACHE and CCACHE_DIR (the Debian downloads and the unpacked source
// are shared with the real cache), so it measures a cold build without touching the user's.
//
//   npx tsx bench/kernel-build.ts [x86_64] [aarch64]
import fs from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Arch } from "../harness/types.ts";
import { buildKernel } from "../harness/kernels/from-source/builder.ts";
import { buildPaths } from "../harness/kernels/from-source/paths.ts";
import { preparePristineSource } from "../harness/kernels/from-source/source.ts";
import { debianSourceBuild } from "../harness/kernels/from-source/spec.ts";
import { cacheDir, repoRoot } from "../harness/util/paths.ts";

export interface BuildTiming {
  step: string;
  ms: number;
  how: string;
  compiled: number;
}

const fragments: Record<Arch, string> = {
  x86_64: path.join(repoRoot, "kernels", "guest-x86_64.config"),
  aarch64: path.join(repoRoot, "kernels", "guest-arm64-64k.config"),
};
const clampPatch = path.join(repoRoot, "kernels", "patches", "virtio-fs-clamp-max-pages-dma.patch");

export async function kernelBuildBench(
  arch: Arch,
  log: (line: string) => void = () => undefined,
): Promise<BuildTiming[]> {
  const realCache = cacheDir();
  const saved = { cache: process.env.VMRIG_CACHE, ccache: process.env.CCACHE_DIR };
  // Inside the real cache: the same filesystem, so the work tree can hard-link the source.
  const root = await fs.mkdtemp(path.join(realCache, "bench-kernel-build-"));
  try {
    await fs.mkdir(path.join(root, "cache", "kernels"), { recursive: true });
    await fs.mkdir(path.join(realCache, "kernels", "build-src"), { recursive: true });
    await fs.mkdir(path.join(realCache, "debian"), { recursive: true });
    await fs.symlink(path.join(realCache, "debian"), path.join(root, "cache", "debian"));
    await fs.symlink(path.join(realCache, "kernels", "build-src"), path.join(root, "cache", "kernels", "build-src"));
    process.env.VMRIG_CACHE = path.join(root, "cache");
    process.env.CCACHE_DIR = path.join(root, "ccache");

    const patchV2 = path.join(root, "clamp-v2.patch");
    const text = await fs.readFile(clampPatch, "utf8");
    const changed = text.replace(
      "(256 KiB through swiotlb bounce buffers)",
      "(256 KiB through swiotlb bounce buffers!)",
    );
    if (changed === text) throw new Error("bench: the clamp patch no longer has the line the benchmark changes");
    await fs.writeFile(patchV2, changed);

    const spec = (patches: string[]) =>
      debianSourceBuild("bench", "linux-source-7.3", arch, [fragments[arch]], patches);
    const signal = new AbortController().signal;
    const timings: BuildTiming[] = [];
    const step = async (name: string, patches: string[]) => {
      const t0 = Date.now();
      const r = await buildKernel(spec(patches), { arch, signal, log });
      const t: BuildTiming = { step: name, ms: Date.now() - t0, how: r.how, compiled: r.make?.compiled.length ?? 0 };
      timings.push(t);
      log(`${arch} ${name}: ${(t.ms / 1000).toFixed(1)} s (${t.how}, ${t.compiled} objects compiled)`);
      return r;
    };
    const forget = async () => {
      for (const d of [buildPaths.entries(), buildPaths.index()]) await fs.rm(d, { recursive: true, force: true });
    };

    // The pristine source may need downloading and unpacking first: not part of any build time.
    await preparePristineSource(spec([]).source, { signal, log, label: "bench" });

    await step("cold", [clampPatch]);
    await forget();
    await fs.rm(buildPaths.work(), { recursive: true, force: true });
    await step("warm ccache", [clampPatch]);
    await step("one file", [patchV2]);
    await forget();
    await step("no-op make", [patchV2]);
    await step("no change", [patchV2]);
    return timings;
  } finally {
    if (saved.cache === undefined) delete process.env.VMRIG_CACHE;
    else process.env.VMRIG_CACHE = saved.cache;
    if (saved.ccache === undefined) delete process.env.CCACHE_DIR;
    else process.env.CCACHE_DIR = saved.ccache;
    await fs.rm(root, { recursive: true, force: true });
  }
}

export function formatBuildTimings(arch: Arch, timings: readonly BuildTiming[]): string {
  const cold = timings.find((t) => t.step === "cold")?.ms ?? NaN;
  const lines = timings.map(
    (t) =>
      `  ${t.step.padEnd(12)} ${(t.ms / 1000).toFixed(1).padStart(7)} s  ` +
      `${(t.ms / cold).toFixed(3).padStart(6)} x cold  ` +
      `${t.how === "built" ? `${t.compiled} objects compiled` : t.how}`,
  );
  return (
    `kernel build, ${arch} (linux-source-7.3, ${path.basename(fragments[arch])} + ${path.basename(clampPatch)}):\n` +
    `${lines.join("\n")}`
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const arches = (process.argv.slice(2).length ? process.argv.slice(2) : ["x86_64", "aarch64"]) as Arch[];
  for (const arch of arches) {
    const timings = await kernelBuildBench(arch, (l) => process.stderr.write(`${l}\n`));
    process.stdout.write(formatBuildTimings(arch, timings) + "\n");
  }
}
