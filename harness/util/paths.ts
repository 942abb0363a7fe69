import path from "node:path";
import { fileURLToPath } from "node:url";
import { resultsOverride, vmrigCacheOverride, xdgCacheHome } from "./env.ts";

/** The repository root (where package.json lives). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** vmrig's cache: $VMRIG_CACHE, else $XDG_CACHE_HOME/vmrig, else ~/.cache/vmrig. */
export function cacheDir(): string {
  return vmrigCacheOverride() ?? path.join(xdgCacheHome(), "vmrig");
}

/** Where runs, history and baselines go: $VMRIG_RESULTS, else results/ in the repository. */
export function resultsRoot(): string {
  return resultsOverride() ?? path.join(repoRoot, "results");
}

export const cachePaths = {
  debianIndex: () => path.join(cacheDir(), "debian", "index"),
  debianDebs: () => path.join(cacheDir(), "debian", "debs"),
  kernels: () => path.join(cacheDir(), "kernels"),
  images: () => path.join(cacheDir(), "images"),
  tools: () => path.join(cacheDir(), "tools"),
  virtiofsd: () => path.join(cacheDir(), "tools", "virtiofsd"),
  /** QEMU builds from Debian's archive, one directory each (harness/qemu/provision.ts). */
  qemuBuilds: () => path.join(cacheDir(), "tools", "qemu"),
  probes: () => path.join(cacheDir(), "probes"),
};
