// What Debian's archive holds between a good and a bad package version, across every suite
// the archive client knows: the kernels of one flavour (a row's `debian:` kernel), or the QEMU
// builds (a row's `qemu:`). Versions Debian removed are simply not listed: gaps, not errors.
import type { Arch } from "../types.ts";
import { archRecord } from "../arch.ts";
import {
  type ArchiveOptions,
  type DebPackage,
  type SuiteIndex,
  debianArch,
  kernelSuites,
  loadSuiteIndexes,
} from "../debian/archive.ts";
import { parseVersionSpec, upstreamVersion } from "../debian/version.ts";
import { type KernelCandidate, chooseKernel, kernelCandidates } from "../kernels/debian-select.ts";
import { chooseDebianQemu } from "../qemu/provision.ts";
import { ExitCode, VmrigError } from "../util/errors.ts";
import { type PackageFamily, type RangeVersion, versionsBetween } from "./debian-range.ts";

/** One package version a step can run: the package the row names, and the .debs it is made of. */
export interface PackageCandidate {
  name: string;
  version: string;
  suite: string;
  parts: DebPackage[];
}

export interface DebianRange {
  family: PackageFamily;
  /** The kernel flavour, or the QEMU package name. */
  what: string;
  suites: string[];
  good: PackageCandidate;
  bad: PackageCandidate;
  /** good .. bad inclusive, in Debian version order. */
  versions: Array<RangeVersion<PackageCandidate>>;
  /** Every candidate of the family in the archive (newer ones may carry the changelog). */
  all: PackageCandidate[];
  /** Packages of the same source that hold the family's docs (QEMU's are in qemu-system-common). */
  docPackages: DebPackage[];
  /** Versions in the range the archive has only part of (a split kernel's modules gone): left out. */
  gaps: string[];
}

export interface RangeEnds {
  good: string;
  bad: string;
}

const ofCandidate = (c: PackageCandidate) => ({ version: c.version, suite: c.suite });

/** Kernels of `flavour` for `arch` (the row's): per suite, so a version lists every suite that has it. */
export async function kernelRange(
  flavour: string,
  arch: Arch,
  ends: RangeEnds,
  opts: ArchiveOptions,
): Promise<DebianRange> {
  const indexes = await loadSuiteIndexes(kernelSuites, debianArch(arch), opts);
  // Per suite: a version several suites carry is listed with each of them.
  const listed = indexes.flatMap((i) => kernelCandidates(i.packages, flavour));
  const kernels = listed.filter((c) => !c.missing.length);
  const toCandidate = (c: KernelCandidate): PackageCandidate => ({
    name: c.image.name,
    version: c.image.version,
    suite: c.image.suite,
    parts: c.parts,
  });
  const pick = (end: string, which: "good" | "bad") => {
    const spec = parseVersionSpec(end);
    if (!spec)
      throw endError(
        "--debian-kernel",
        which,
        end,
        "is not a Debian kernel version (e.g. 6.12, 6.18.15, 6.18.15-1~bpo13+1)",
      );
    const choice = chooseKernel(kernels, spec);
    if (choice.kind === "found") return toCandidate(choice.candidate);
    const near = [choice.below, choice.above].flatMap((c) => (c ? [upstreamVersion(c.image.version)] : []));
    throw endError(
      "--debian-kernel",
      which,
      end,
      `is not in Debian's archive (${flavour}; nearest: ${near.join(", ") || "none"})`,
    );
  };
  const all = kernels.map(toCandidate);
  const range = rangeOf("kernel", flavour, indexes, all, pick(ends.good, "good"), pick(ends.bad, "bad"), []);
  const incomplete = listed.filter((c) => c.missing.length && !all.some((a) => a.version === c.image.version));
  const inRange = versionsBetween(incomplete, (c) => c.image, range.good.version, range.bad.version);
  range.gaps = inRange.map((v) => `${v.version} (${v.items[0]!.missing.join(", ")} gone)`);
  return range;
}

/** The host's QEMU package for `arch` guests (qemu-system-x86), every build in every suite. */
export async function qemuRange(arch: Arch, ends: RangeEnds, opts: ArchiveOptions): Promise<DebianRange> {
  const pkgName = archRecord(arch).qemu.debianPackage;
  const indexes = await loadSuiteIndexes(kernelSuites, debianArch(process.arch), {
    ...opts,
    extraPackages: [pkgName, "qemu-system-common"],
  });
  const packages = indexes.flatMap((i) => i.packages.filter((p) => p.name === pkgName));
  const all = packages.map((p) => ({ name: p.name, version: p.version, suite: p.suite, parts: [p] }));
  const pick = (end: string, which: "good" | "bad") => {
    if (!parseVersionSpec(end))
      throw endError("--debian-qemu", which, end, "is not a QEMU version (e.g. 10.0, 11.1.3, 1:11.1.3+ds-1)");
    const { chosen, below, above } = chooseDebianQemu(packages, end);
    if (chosen) return all.find((c) => c.version === chosen.version && c.suite === chosen.suite)!;
    const near = [below, above].flatMap((p) => (p ? [`${p.version} (${p.suite})`] : []));
    throw endError(
      "--debian-qemu",
      which,
      end,
      `is not in Debian's archive (${pkgName}; nearest: ${near.join(", ") || "none"})`,
    );
  };
  const docs = indexes.flatMap((i) => i.packages.filter((p) => p.name === "qemu-system-common"));
  return rangeOf("qemu", pkgName, indexes, all, pick(ends.good, "good"), pick(ends.bad, "bad"), docs);
}

function rangeOf(
  family: PackageFamily,
  what: string,
  indexes: readonly SuiteIndex[],
  all: PackageCandidate[],
  good: PackageCandidate,
  bad: PackageCandidate,
  docPackages: DebPackage[],
): DebianRange {
  const flag = family === "kernel" ? "--debian-kernel" : "--debian-qemu";
  const versions = versionsBetween(all, ofCandidate, good.version, bad.version);
  if (versions.length < 2) {
    throw new VmrigError(
      `${flag} ${good.version}..${bad.version}: GOOD must be older than BAD by Debian version order`,
      ExitCode.usage,
    );
  }
  const suites = indexes.map((i) => i.suite);
  return { family, what, suites, good, bad, versions, all, docPackages, gaps: [] };
}

function endError(flag: string, which: "good" | "bad", end: string, why: string): VmrigError {
  return new VmrigError(`${flag}: ${which.toUpperCase()} ${end} ${why}`, ExitCode.usage);
}
