// Which Debian packages make up a kernel, and which kernel a scenario's version means.
// Pure: works on package records from any number of suites.
//
// Three naming schemes coexist in the archive:
//   6.1:   linux-image-6.1.0-56-cloud-amd64          Version 6.1.192-2   (ABI number in the name)
//   6.12+: linux-image-6.18.15+deb13-cloud-amd64     Version 6.18.15-1~bpo13+1
//   6.19+: linux-image-7.3.4+deb13-cloud-amd64 is a metapackage whose Depends name
//          linux-binary-* (kernel), linux-modules-* and linux-base-* (config) of the same version.
// Each may also exist as an "-unsigned" twin; "-dbg" packages and the unversioned
// metapackages (linux-image-cloud-amd64, linux-image-6.12-cloud-amd64) are not kernels.
import type { DebPackage } from "../debian/control.ts";
import { parseDepends } from "../debian/control.ts";
import {
  type VersionSpec,
  compareDebianVersions,
  nearestVersions,
  upstreamVersion,
  versionMatches,
} from "../debian/version.ts";

export type KernelPackageRole = "image" | "binary" | "modules" | "base";

export interface KernelPackageName {
  role: KernelPackageRole;
  /** "6.18.15+deb13", "6.1.0-56", "7.3". */
  abi: string;
  flavour: string;
  unsigned: boolean;
  dbg: boolean;
}

const kernelPackagePattern =
  /^linux-(image|binary|modules|base)-(unsigned-)?(\d+\.\d+[^-]*(?:-\d+)?)-(.+?)(-unsigned)?(-dbg)?$/;

export function parseKernelPackageName(name: string): KernelPackageName | undefined {
  const m = kernelPackagePattern.exec(name);
  if (!m) return undefined;
  return {
    role: m[1] as KernelPackageRole,
    abi: m[3]!,
    flavour: m[4]!,
    unsigned: Boolean(m[2] || m[5]),
    dbg: Boolean(m[6]),
  };
}

/**
 * Does the ABI in a package name belong to this version? This is what tells a kernel from a
 * version-series metapackage: linux-image-6.12-cloud-amd64 at 6.12.117 is a metapackage, while
 * linux-image-7.3-cloud-amd64 at 7.3~rc7 (experimental) is the kernel.
 */
function abiFitsVersion(abi: string, version: string): boolean {
  const upstream = upstreamVersion(version);
  const majorMinor = /^\d+\.\d+/.exec(upstream)?.[0];
  if (abi === upstream || abi.startsWith(`${upstream}+`)) return true;
  if (majorMinor && new RegExp(`^${majorMinor.replace(".", "\\.")}\\.0-\\d+$`).test(abi)) return true; // 6.1.0-56
  return upstream.includes("~") && abi === upstream.slice(0, upstream.indexOf("~"));
}

export interface KernelCandidate {
  /** The linux-image-* package; its name and version are the kernel's identity. */
  image: DebPackage;
  /** Packages to unpack, all of the same version: the image itself or its split parts. */
  parts: DebPackage[];
  /** Same-version packages the kernel needs that the archive no longer has. */
  missing: string[];
  /** Same-version packages that are gone but only add files vmrig can do without (linux-base: config). */
  missingOptional: string[];
}

export const packageKey = (name: string, version: string): string => `${name}=${version}`;

/** Lookup by name and version; with duplicates across suites the first one listed wins. */
export function packageLookup(packages: readonly DebPackage[]): Map<string, DebPackage> {
  const byKey = new Map<string, DebPackage>();
  for (const p of packages) {
    const k = packageKey(p.name, p.version);
    if (!byKey.has(k)) byKey.set(k, p);
  }
  return byKey;
}

/** The same-version linux-binary/-modules/-base packages an image names in its Depends. */
export function splitPartsOf(
  image: DebPackage,
  lookup: ReadonlyMap<string, DebPackage>,
): Omit<KernelCandidate, "image"> {
  const parts: DebPackage[] = [];
  const missing: string[] = [];
  const missingOptional: string[] = [];
  let isSplit = false;
  for (const group of parseDepends(image.depends)) {
    const rel = group[0];
    if (!rel || group.length !== 1 || rel.op !== "=" || rel.version !== image.version) continue;
    const role = parseKernelPackageName(rel.name)?.role;
    if (role !== "binary" && role !== "modules" && role !== "base") continue;
    // Prefer the signed kernel the metapackage names; its -unsigned twin holds the same files.
    const found =
      lookup.get(packageKey(rel.name, image.version)) ??
      (role === "binary"
        ? lookup.get(packageKey(rel.name.replace(/^linux-binary-/, "linux-binary-unsigned-"), image.version))
        : undefined);
    if (role !== "base") isSplit = true;
    if (found) parts.push(found);
    else if (role === "base") missingOptional.push(rel.name);
    else missing.push(rel.name);
  }
  const order: Record<string, number> = { binary: 0, image: 0, modules: 1, base: 2 };
  const rank = (p: DebPackage) => order[parseKernelPackageName(p.name)?.role ?? "image"] ?? 3;
  // A pre-split image carries the kernel, its modules and config itself.
  if (!isSplit) parts.unshift(image);
  parts.sort((a, b) => rank(a) - rank(b));
  return { parts, missing, missingOptional };
}

/**
 * Every kernel of `flavour` in `packages`, one per version (signed preferred over unsigned),
 * newest first.
 */
export function kernelCandidates(packages: readonly DebPackage[], flavour: string): KernelCandidate[] {
  const lookup = packageLookup(packages);
  const byVersion = new Map<string, DebPackage>();
  for (const p of lookup.values()) {
    const n = parseKernelPackageName(p.name);
    if (!n || n.role !== "image" || n.dbg || n.flavour !== flavour || !abiFitsVersion(n.abi, p.version)) continue;
    const prev = byVersion.get(p.version);
    if (!prev || (parseKernelPackageName(prev.name)!.unsigned && !n.unsigned)) byVersion.set(p.version, p);
  }
  return [...byVersion.values()]
    .sort((a, b) => compareDebianVersions(b.version, a.version))
    .map((image) => ({ image, ...splitPartsOf(image, lookup) }));
}

/** Flavours that have at least one kernel in `packages`, for "unknown flavour" messages. */
export function kernelFlavours(packages: readonly DebPackage[]): string[] {
  const flavours = new Set<string>();
  for (const p of packages) {
    const n = parseKernelPackageName(p.name);
    if (n && n.role === "image" && !n.dbg && abiFitsVersion(n.abi, p.version)) flavours.add(n.flavour);
  }
  return [...flavours].sort();
}

export type KernelChoice =
  | { kind: "found"; candidate: KernelCandidate }
  /** Nothing usable matches: `incomplete` is the newest match whose parts are gone, if any. */
  | { kind: "none"; incomplete?: KernelCandidate; below?: KernelCandidate; above?: KernelCandidate };

/** The newest usable candidate matching `spec`, else the nearest usable ones around it. */
export function chooseKernel(candidates: readonly KernelCandidate[], spec: VersionSpec): KernelChoice {
  const usable = candidates.filter((c) => c.missing.length === 0);
  const newestFirst = (a: KernelCandidate, b: KernelCandidate) =>
    compareDebianVersions(b.image.version, a.image.version);
  const match = usable.filter((c) => versionMatches(spec, c.image.version)).sort(newestFirst)[0];
  if (match) return { kind: "found", candidate: match };
  const incomplete = candidates.filter((c) => versionMatches(spec, c.image.version)).sort(newestFirst)[0];
  // Sorted newest first, so among equal upstream versions the newest Debian revision is named.
  const { below, above } = nearestVersions(spec.text, [...usable].sort(newestFirst), (c) => c.image.version);
  return { kind: "none", incomplete, below, above };
}
