// A Debian kernel's DWARF vmlinux, for gdb on a kept guest: Debian ships it in
// linux-image-<release>-dbg (a few hundred MB, 2 GB unpacked with every module's symbols). Only
// vmlinux is kept, in the kernel cache; the package is checked against the signed index like
// every .deb vmrig downloads, then deleted.
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import type { KernelArtifact } from "../types.ts";
import { HostError } from "../util/errors.ts";
import { cachePaths } from "../util/paths.ts";
import { buildDirAtomic, exists } from "../util/atomic-fs.ts";
import { type ArchiveOptions, debianArch, downloadDeb, kernelSuites, loadSuiteIndexes } from "../debian/archive.ts";
import { archRecord } from "../arch.ts";

export interface DebugPackage {
  name: string;
  version: string;
  /** Where the package is in the mirror (pool/main/l/linux/, the source package of every flavour). */
  url: string;
  /** vmlinux's path inside the package. */
  vmlinux: string;
}

/**
 * Pure: a Debian kernel's debug-symbols package, from its artifact (identity
 * "debian:<image package>=<version>", release "6.18.15+deb13-cloud-amd64"): built from the source
 * package linux, so in pool/main/l/linux/ whoever signed the image, with the image's version.
 */
export function debianDebugPackage(
  a: Pick<KernelArtifact, "identity" | "release" | "arch">,
  mirror: string,
): DebugPackage | undefined {
  const version = /^debian:[^=]+=(.+)$/.exec(a.identity)?.[1];
  if (!version || !a.release) return undefined;
  const name = `linux-image-${a.release}-dbg`;
  const deb = `${name}_${version}_${archRecord(a.arch).debianArch}.deb`;
  return {
    name,
    version,
    url: `${mirror}/pool/main/l/linux/${deb}`,
    vmlinux: `/usr/lib/debug/boot/vmlinux-${a.release}`,
  };
}

/** Where fetchDebianVmlinux keeps a package's vmlinux. */
export function debugVmlinuxPath(pkg: Pick<DebugPackage, "name" | "version">): string {
  return path.join(cachePaths.kernels(), "debian-dbg", `${pkg.name}_${pkg.version}`, "vmlinux");
}

/** The DWARF vmlinux of a Debian kernel: from the cache, else downloaded and extracted once. */
export async function fetchDebianVmlinux(
  a: Pick<KernelArtifact, "identity" | "release" | "arch" | "label">,
  opts: ArchiveOptions,
): Promise<string> {
  const wanted = debianDebugPackage(a, "");
  if (!wanted) throw new HostError(`Kernel "${a.label}" is not a Debian kernel: it has no -dbg package.`);
  const dest = debugVmlinuxPath(wanted);
  if (await exists(dest)) return dest;
  const arch = debianArch(a.arch);
  const indexes = await loadSuiteIndexes(kernelSuites, arch, opts);
  const pkg = indexes.flatMap((i) => i.packages).find((p) => p.name === wanted.name && p.version === wanted.version);
  if (!pkg) {
    throw new HostError(
      `Debian's archive has no ${wanted.name} ${wanted.version} (searched ${kernelSuites.join(", ")} for ${arch}).`,
    );
  }
  const deb = await downloadDeb(pkg, opts);
  opts.log?.(`extracting vmlinux from ${path.basename(deb)}`);
  await buildDirAtomic(path.dirname(dest), async (entry) => {
    await extractVmlinux(deb, entry, wanted.vmlinux, opts.signal);
  });
  // Only vmlinux is ever read again: the package would hold 350 MB of the cache for nothing.
  await fs.rm(deb, { force: true });
  return dest;
}

/** Extracts only vmlinux (a symlink into lib/modules in 6.x packages, a file before) as `<entry>/vmlinux`. */
async function extractVmlinux(deb: string, entry: string, member: string, signal?: AbortSignal): Promise<void> {
  const tree = path.join(entry, "tree");
  await fs.mkdir(tree);
  const script = 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "./usr/lib/debug/*vmlinux*"';
  const r = await execa("bash", ["-o", "pipefail", "-c", script, "extract", deb, tree], {
    cancelSignal: signal,
    reject: false,
  });
  if (r.isCanceled) throw signal?.reason ?? new Error("aborted");
  if (r.failed) throw new HostError(`extracting vmlinux from ${deb} failed: ${String(r.stderr).trim() || r.message}`);
  const inTree = path.join(tree, member);
  const stat = await fs.lstat(inTree).catch(() => undefined);
  if (!stat) throw new HostError(`${deb} has no ${member}.`);
  const file = stat.isSymbolicLink() ? path.resolve(path.dirname(inTree), await fs.readlink(inTree)) : inTree;
  if (!file.startsWith(tree + path.sep)) throw new HostError(`${deb}: ${member} points outside the package.`);
  await fs.rename(file, path.join(entry, "vmlinux"));
  await fs.rm(tree, { recursive: true, force: true });
}
