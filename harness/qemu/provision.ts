// QEMU builds as table rows: a row may run a QEMU other than the host's, taken from
// Debian's archive (`qemu: { debian: "11.1" }` = newest 11.1.x in any suite vmrig knows). Like
// the private virtiofsd, it is unpacked with its own libc and libraries into vmrig's cache and
// run through that libc's loader, so a bookworm host runs trixie-backports' or sid's QEMU
// without installing anything. The command carries its firmware directories (-L) and module
// directory, because a QEMU started through a loader cannot find them from its own path.
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import type { Arch, QemuChoice } from "../types.ts";
import { archRecord } from "../arch.ts";
import { HostError, VmrigError } from "../util/errors.ts";
import { cachePaths } from "../util/paths.ts";
import {
  type DebPackage,
  debianArch,
  isOffline,
  kernelSuites,
  loadSuiteIndexes,
  resolveWithDependencies,
} from "../debian/archive.ts";
import {
  locateLoader,
  loaderCommand,
  privateHostArch,
  provisionUnpacked,
  readManifest,
  reusableEntry,
} from "../debian/private-program.ts";
import {
  compareDebianVersions,
  nearestVersions,
  parseVersionSpec,
  upstreamVersion,
  versionMatches,
} from "../debian/version.ts";
import { qemuBinary, qemuInvocation, type QemuCommand } from "./argv.ts";

export type { QemuCommand } from "./argv.ts";

/** The host's own QEMU for `arch` (found on PATH). */
export function hostQemu(arch: Arch, version: string): QemuCommand {
  return { argv0: qemuBinary(arch), prefixArgs: [], env: {}, version, source: "host" };
}

/** Suites a Debian QEMU's own dependencies come from: its suite, then the release it builds on. */
export function dependencySuites(suite: string): string[] {
  if (suite === "experimental") return ["experimental", "sid"];
  const base = suite.replace(/-(backports|security|updates)$/, "");
  return base === suite ? [suite] : [suite, base];
}

/** Debian writes QEMU's upstream version with a repack suffix ("11.1.3+ds"): match without it. */
const withoutRepack = (v: string) => v.replace(/\+ds\d*(?=-|$)/, "");

/** Pure: the newest package matching `version` (a series "11.1", an upstream "11.1.3" or a Debian version). */
export function chooseDebianQemu(
  packages: readonly DebPackage[],
  version: string,
): { chosen?: DebPackage; below?: DebPackage; above?: DebPackage } {
  const spec = parseVersionSpec(version);
  if (!spec)
    throw new VmrigError(`qemu.debian: expected a version like "11.1", "11.1.3" or a Debian version, got "${version}"`);
  // A Debian version is matched as written; series and upstream versions without the repack suffix.
  const matching = packages
    .filter((p) => versionMatches(spec, spec.kind === "debian" ? p.version : withoutRepack(p.version)))
    .sort((a, b) => compareDebianVersions(b.version, a.version));
  if (matching[0]) return { chosen: matching[0] };
  return nearestVersions(version, packages, (p) => withoutRepack(p.version));
}

const manifestName = "vmrig-qemu.json";

interface QemuManifest {
  package: string;
  version: string;
  suite: string;
  reported: string;
  loader: string;
  libraryPath: string[];
  binary: string;
  firmwareDirs: string[];
  moduleDir?: string;
  packages: Array<{ name: string; version: string; suite: string }>;
}

function commandFor(dir: string, m: QemuManifest): QemuCommand {
  const { argv0, prefixArgs } = loaderCommand(dir, m, m.binary);
  return {
    argv0,
    prefixArgs: [...prefixArgs, ...m.firmwareDirs.flatMap((d) => ["-L", path.join(dir, d)])],
    env: m.moduleDir ? { QEMU_MODULE_DIR: path.join(dir, m.moduleDir) } : {},
    version: m.reported,
    source: `debian ${m.suite} ${m.package} ${m.version}`,
  };
}

async function reportedVersion(cmd: QemuCommand): Promise<string | undefined> {
  const { binary, args } = qemuInvocation(cmd, ["--version"]);
  const r = await execa(binary, args, { reject: false, timeout: 20_000, all: true });
  if (r.exitCode !== 0) return undefined;
  return /QEMU emulator version (\S+(?: \([^)]*\))?)/.exec(String(r.all))?.[1];
}

// Only characters a shell never needs quoted: the command lines in qemu-cmdline.txt stay copy-pasteable.
const buildDirName = (pkgName: string, version: string, dArch: string) =>
  `${pkgName}_${version}_${dArch}`.replace(/[^A-Za-z0-9._-]+/g, "_");

type DebianQemu = Extract<QemuChoice, { kind: "debian" }>;
type ProvideOptions = { signal?: AbortSignal; log?: (line: string) => void };

/**
 * The QEMU a row asks for: the host's, or a Debian build provisioned into the cache (once).
 * A version Debian no longer has is a HostError naming the nearest ones.
 */
export async function provideQemu(
  choice: QemuChoice,
  arch: Arch,
  host: QemuCommand,
  opts: ProvideOptions = {},
): Promise<QemuCommand> {
  if (choice.kind === "host") return host;
  const pkgName = archRecord(arch).qemu.debianPackage;
  const dArch = debianArch(process.arch);
  if (isOffline()) return provisionedOffline(pkgName, dArch, choice);
  const suites = choice.suite ? [choice.suite] : [...kernelSuites];
  const indexes = await loadSuiteIndexes(suites, dArch, { ...opts, extraPackages: [pkgName] });
  const candidates = indexes.flatMap((i) => i.packages.filter((p) => p.name === pkgName));
  const { chosen, below, above } = chooseDebianQemu(candidates, choice.version);
  if (!chosen) {
    const earlier = await provisionedEarlier(pkgName, dArch, choice, opts.log);
    if (earlier) return earlier;
    throw new HostError(notInArchive(choice, suites, below, above));
  }
  const dir = path.join(cachePaths.qemuBuilds(), buildDirName(pkgName, chosen.version, dArch));
  const runs = async (m: QemuManifest) => (await reportedVersion(commandFor(dir, m))) !== undefined;
  const cached = await reusableEntry(dir, manifestName, runs, { what: "provisioned QEMU", log: opts.log });
  if (cached) return commandFor(dir, cached);
  const ready = await provisionFromDebian(dir, chosen, pkgName, dArch, arch, opts);
  opts.log?.(`QEMU ${ready.reported} provisioned from Debian ${ready.suite} into ${dir}`);
  return commandFor(dir, ready);
}

/** No archive: a build provisioned earlier is the only answer. */
async function provisionedOffline(pkgName: string, dArch: string, choice: DebianQemu): Promise<QemuCommand> {
  const hit = await provisionedMatch(pkgName, dArch, choice);
  if (hit) return commandFor(hit.dir, hit.manifest);
  throw new HostError(
    `VMRIG_OFFLINE=1 but no QEMU ${choice.version} was provisioned in ${cachePaths.qemuBuilds()}: ` +
      "run once online (npm run setup -- <scenario>).",
  );
}

/** Debian moved on, but a build provisioned earlier (that still runs) answers the same question. */
async function provisionedEarlier(
  pkgName: string,
  dArch: string,
  choice: DebianQemu,
  log: ProvideOptions["log"],
): Promise<QemuCommand | undefined> {
  const hit = await provisionedMatch(pkgName, dArch, choice);
  if (!hit || !(await reportedVersion(commandFor(hit.dir, hit.manifest)))) return undefined;
  log?.(
    `QEMU ${choice.version} is no longer in Debian's archive; ` +
      `using the copy provisioned earlier (${hit.manifest.version})`,
  );
  return commandFor(hit.dir, hit.manifest);
}

/** Pure: why a version is not to be had from Debian, with the nearest versions that are. */
export function notInArchive(choice: DebianQemu, suites: string[], below?: DebPackage, above?: DebPackage): string {
  const near = [below, above]
    .filter((p): p is DebPackage => p !== undefined)
    .map((p) => `${upstreamVersion(withoutRepack(p.version))} (${p.suite})`);
  return (
    `QEMU ${choice.version} is not in Debian's ${choice.suite ?? "archive"} (searched ${suites.join(", ")})` +
    (near.length ? `; nearest available: ${near.join(", ")}` : "; no QEMU package found at all")
  );
}

/** Downloads `chosen` with its dependencies and unpacks them into `dir`, checking the result runs here. */
async function provisionFromDebian(
  dir: string,
  chosen: DebPackage,
  pkgName: string,
  dArch: string,
  arch: Arch,
  opts: ProvideOptions,
): Promise<QemuManifest> {
  const packages = await resolveWithDependencies(dependencySuites(chosen.suite), dArch, [pkgName], opts);
  const root = packages.find((p) => p.name === pkgName)!;
  opts.log?.(
    `QEMU ${upstreamVersion(withoutRepack(root.version))}: ${packages.length} Debian packages ` +
      `(${(packages.reduce((n, p) => n + p.size, 0) / 1e6).toFixed(0)} MB) ` +
      `from ${dependencySuites(chosen.suite).join(" + ")}`,
  );
  return provisionUnpacked<QemuManifest>(
    { dir, manifestName, packages, describe: ({ tree }) => describeUnpacked(tree, arch, root, packages) },
    opts,
  );
}

/** The manifest of a QEMU unpacked into `tree`; a HostError when it lacks the binary or does not run. */
async function describeUnpacked(
  tree: string,
  arch: Arch,
  root: DebPackage,
  packages: DebPackage[],
): Promise<QemuManifest> {
  const pkgName = root.name;
  const { loader, libraryPath } = await locateLoader(tree, privateHostArch());
  const binary = `usr/bin/${qemuBinary(arch)}`;
  const isDir = async (d: string) => (await fs.stat(path.join(tree, d)).catch(() => undefined))?.isDirectory();
  if (!(await fs.stat(path.join(tree, binary)).catch(() => undefined))) {
    throw new HostError(`no ${binary} in Debian's ${pkgName} ${root.version}`);
  }
  // Debian's QEMU loads its accelerator, display and device modules from here.
  const moduleDir = `usr/lib/${path.posix.basename(libraryPath[0]!)}/qemu`;
  const firmwareDirs: string[] = [];
  for (const d of ["usr/share/qemu", "usr/share/seabios", "usr/lib/ipxe/qemu"]) {
    if (await isDir(d)) firmwareDirs.push(d);
  }
  const manifest: QemuManifest = {
    package: pkgName,
    version: root.version,
    suite: root.suite,
    reported: "",
    loader,
    libraryPath,
    binary,
    firmwareDirs,
    ...((await isDir(moduleDir)) ? { moduleDir } : {}),
    packages: packages.map((p) => ({ name: p.name, version: p.version, suite: p.suite })),
  };
  const reported = await reportedVersion(commandFor(tree, manifest));
  if (!reported) {
    const how = `through its own loader in ${tree}`;
    throw new HostError(`Debian's QEMU ${root.version} does not run on this host (${how}).`);
  }
  return { ...manifest, reported };
}

/** Debian QEMU builds already in the cache, as packages (for matching a version against them). */
async function provisionedBuilds(
  pkgName: string,
  dArch: string,
): Promise<Array<{ dir: string; manifest: QemuManifest; pkg: DebPackage }>> {
  const root = cachePaths.qemuBuilds();
  const names = await fs.readdir(root).catch(() => [] as string[]);
  const out: Array<{ dir: string; manifest: QemuManifest; pkg: DebPackage }> = [];
  for (const name of names.filter((n) => n.startsWith(`${pkgName}_`) && n.endsWith(`_${dArch}`))) {
    const dir = path.join(root, name);
    const manifest = await readManifest<QemuManifest>(dir, manifestName);
    // Only the directory its version names now (one from an older naming is not reused).
    if (!manifest || name !== buildDirName(pkgName, manifest.version, dArch)) continue;
    const pkg: DebPackage = {
      name: pkgName,
      version: manifest.version,
      architecture: dArch,
      suite: manifest.suite,
      archiveUrl: "",
      filename: "",
      size: 0,
      sha256: "",
      depends: "",
      fields: {},
    };
    out.push({ dir, manifest, pkg });
  }
  return out;
}

/** The newest provisioned build matching the choice (its version, and its suite when it names one), if any. */
async function provisionedMatch(pkgName: string, dArch: string, choice: Extract<QemuChoice, { kind: "debian" }>) {
  const kept = (await provisionedBuilds(pkgName, dArch)).filter(
    (k) => !choice.suite || k.manifest.suite === choice.suite,
  );
  const version = choice.version;
  const best = chooseDebianQemu(
    kept.map((k) => k.pkg),
    version,
  ).chosen;
  return best ? kept.find((k) => k.pkg === best) : undefined;
}
