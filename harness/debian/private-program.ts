// Debian programs vmrig runs without installing them: a QEMU build, trixie's virtiofsd, the
// guest's busybox and dropbear of a foreign architecture. Each is a set of .debs, downloaded
// against the signed index, unpacked into one cache entry and described by a manifest. A host
// program runs through the unpacked libc's own loader with --library-path, so it never mixes
// with the host's libraries. The entry is built beside its place and renamed into it: a reader
// sees a complete entry with its manifest, or none (a miss just provisions again).
import fs from "node:fs/promises";
import path from "node:path";
import type { Arch } from "../types.ts";
import { archRecord, hostArchOf } from "../arch.ts";
import { HostError } from "../util/errors.ts";
import { buildDirAtomic, exists, writeFileAtomic } from "../util/atomic-fs.ts";
import { type ArchiveOptions, type DebPackage, downloadDeb, unpackDeb } from "./archive.ts";
import { compareDebianVersions } from "./version.ts";

/** The loader and library directories of an unpacked libc6, relative to the tree. */
export interface PrivateLoader {
  loader: string;
  libraryPath: string[];
}

/** What a program's command starts with: the loader, its options, then the program itself. */
export interface LoaderCommand {
  argv0: string;
  prefixArgs: string[];
}

/** The host's architecture for running Debian programs privately (x86_64 and aarch64 hosts). */
export function privateHostArch(nodeArch: string = process.arch): Arch {
  const arch = hostArchOf(nodeArch);
  if (!arch) {
    throw new HostError(
      `Cannot run Debian's programs privately on host architecture ${nodeArch} (x64 and arm64 are supported).`,
    );
  }
  return arch;
}

/**
 * Where the unpacked libc6 put its loader and libraries. trixie ships the real files under
 * usr/lib/<triplet>; the usual /lib64 (x86) or /lib (arm64) loader names are symlinks with
 * absolute targets, which would lead back to the host's loader, so only real files count.
 */
export async function locateLoader(root: string, arch: Arch): Promise<PrivateLoader> {
  const { gnuTriplet, dynamicLoader } = archRecord(arch);
  const isRealFile = async (rel: string) => (await fs.lstat(path.join(root, rel)).catch(() => undefined))?.isFile();
  const isRealDir = async (rel: string) => (await fs.lstat(path.join(root, rel)).catch(() => undefined))?.isDirectory();
  const libDirs = [`usr/lib/${gnuTriplet}`, `lib/${gnuTriplet}`];
  let loader: string | undefined;
  for (const rel of [
    ...libDirs.map((d) => `${d}/${dynamicLoader}`),
    `usr/lib64/${dynamicLoader}`,
    `lib64/${dynamicLoader}`,
  ]) {
    if (await isRealFile(rel)) {
      loader = rel;
      break;
    }
  }
  if (!loader) throw new HostError(`No ${dynamicLoader} in the unpacked libc6 (${root}).`);
  const libraryPath: string[] = [];
  for (const d of libDirs) if (await isRealDir(d)) libraryPath.push(d);
  return { loader, libraryPath };
}

/** Pure: the command running `binary` (relative to `dir`) through the private loader in `dir`. */
export function loaderCommand(dir: string, runtime: PrivateLoader, binary: string): LoaderCommand {
  return {
    argv0: path.join(dir, runtime.loader),
    prefixArgs: ["--library-path", runtime.libraryPath.map((p) => path.join(dir, p)).join(":"), path.join(dir, binary)],
  };
}

/**
 * Pure: the newest package of each name in `names` (any suite of `packages`), in the order of
 * `names`; a name with no package is a HostError naming `where`.
 */
export function newestPackages(packages: readonly DebPackage[], names: readonly string[], where: string): DebPackage[] {
  return names.map((name) => {
    const newest = packages
      .filter((p) => p.name === name)
      .sort((a, b) => compareDebianVersions(b.version, a.version))[0];
    if (!newest) throw new HostError(`Debian ${where} has no ${name} package.`);
    return newest;
  });
}

export async function readManifest<M>(dir: string, manifestName: string): Promise<M | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(dir, manifestName), "utf8")) as M;
  } catch {
    return undefined;
  }
}

/**
 * The manifest of the cache entry `dir` when `usable` accepts it. An entry it refuses (one
 * that no longer runs, a manifest of an older format, a directory of an older layout without
 * a manifest) is removed, so that provisioning can put a complete one in its place.
 */
export async function reusableEntry<M>(
  dir: string,
  manifestName: string,
  usable: (manifest: M) => Promise<boolean> | boolean,
  opts: { what: string; log?: (line: string) => void },
): Promise<M | undefined> {
  const manifest = await readManifest<M>(dir, manifestName);
  if (manifest && (await usable(manifest))) return manifest;
  if (await exists(dir)) {
    opts.log?.(`removing unusable ${opts.what} at ${dir}`);
    await fs.rm(dir, { recursive: true, force: true });
  }
  return undefined;
}

export interface UnpackedEntry<M> {
  /** The cache entry to create; it must not exist yet (see reusableEntry). */
  dir: string;
  manifestName: string;
  packages: readonly DebPackage[];
  /** Where inside the entry the packages unpack ("" = the entry itself). */
  treeDir?: string;
  /**
   * Inspects the unpacked tree and returns the manifest; throwing abandons the entry. Paths in
   * `entry` and `tree` are temporary: a check that runs the program may use them, but the
   * manifest should hold paths relative to the entry.
   */
  describe: (where: { entry: string; tree: string }) => Promise<M>;
}

/**
 * Downloads `packages` (each checked against the signed index), unpacks them into a new cache
 * entry, writes the manifest `describe` returns, and makes the entry visible in one rename.
 * Returns the manifest as read back from the entry (another process may have won the race).
 */
export async function provisionUnpacked<M>(spec: UnpackedEntry<M>, opts: ArchiveOptions = {}): Promise<M> {
  const debs: string[] = [];
  for (const p of spec.packages) debs.push(await downloadDeb(p, opts));
  await buildDirAtomic(spec.dir, async (entry) => {
    const tree = path.join(entry, spec.treeDir ?? "");
    for (const deb of debs) await unpackDeb(deb, tree, { signal: opts.signal });
    const manifest = await spec.describe({ entry, tree });
    await writeFileAtomic(path.join(entry, spec.manifestName), JSON.stringify(manifest, null, 2) + "\n");
  });
  const ready = await readManifest<M>(spec.dir, spec.manifestName);
  if (!ready) throw new HostError(`The cache entry ${spec.dir} has no ${spec.manifestName}.`);
  return ready;
}
