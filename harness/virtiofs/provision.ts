// Finding a virtiofsd to run, or providing one. bookworm does not package virtiofsd, and
// trixie's needs glibc >= 2.39, so on older hosts vmrig unpacks trixie's virtiofsd together
// with trixie's libc and runs it through that libc's own dynamic loader: no root, no apt, no
// effect on the host's libraries.
import { constants as fsConstants } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import { archRecord, hostArchOf } from "../arch.ts";
import { HostError } from "../util/errors.ts";
import { cachePaths } from "../util/paths.ts";
import { buildDirAtomic, exists } from "../util/atomic-fs.ts";
import { type DebPackage, debianArch, downloadDeb, loadSuiteIndex, unpackDeb } from "../debian/archive.ts";
import { compareDebianVersions } from "../debian/version.ts";

export interface VirtiofsdCommand {
  /** Program to execute: virtiofsd itself, or the private dynamic loader that runs it. */
  argv0: string;
  /** Arguments before virtiofsd's own (loader options and the virtiofsd path), else []. */
  prefixArgs: string[];
  version: string;
  source: "system" | "debian-trixie";
}

/** The trixie packages a private virtiofsd needs (its Depends, minus uidmap: vmrig runs it as root). */
export const trixieVirtiofsdPackages = ["virtiofsd", "libc6", "libcap-ng0", "libseccomp2", "libgcc-s1"] as const;

const manifestName = "vmrig-virtiofsd.json";

interface ProvisionManifest {
  version: string;
  /** Relative to the provision directory. */
  loader: string;
  libraryPath: string[];
  binary: string;
  packages: Array<{ name: string; version: string }>;
}

function systemCandidates(): string[] {
  const fromPath = (process.env.PATH ?? "").split(":").filter(Boolean).map((d) => path.join(d, "virtiofsd"));
  return [...new Set([...fromPath, "/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"])];
}

/**
 * The version a virtiofsd command reports, or undefined when it does not run or is QEMU's old
 * C virtiofsd (it takes `-o source=` instead of the Rust daemon's options vmrig passes).
 */
export async function probeVirtiofsd(argv0: string, prefixArgs: string[] = []): Promise<string | undefined> {
  const run = (arg: string) => execa(argv0, [...prefixArgs, arg], { reject: false, timeout: 10_000, all: true });
  const v = await run("--version");
  if (v.exitCode !== 0) return undefined;
  const version = /virtiofsd\s+(?:version\s+)?v?(\d+(?:\.\d+)+\S*)/.exec(String(v.all))?.[1];
  if (!version) return undefined;
  const help = await run("--help");
  return String(help.all).includes("--shared-dir") ? version : undefined;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await fs.access(file, fsConstants.X_OK);
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

/** A runnable virtiofsd: the system's (PATH, /usr/libexec, /usr/lib/qemu), else one provisioned earlier. */
export async function findVirtiofsd(): Promise<VirtiofsdCommand | undefined> {
  for (const candidate of systemCandidates()) {
    if (!(await isExecutable(candidate))) continue;
    const version = await probeVirtiofsd(candidate);
    if (version) return { argv0: candidate, prefixArgs: [], version, source: "system" };
  }
  return cachedVirtiofsd();
}

async function cachedVirtiofsd(): Promise<VirtiofsdCommand | undefined> {
  const dir = cachePaths.virtiofsd();
  let m: ProvisionManifest;
  try {
    m = JSON.parse(await fs.readFile(path.join(dir, manifestName), "utf8")) as ProvisionManifest;
  } catch {
    return undefined;
  }
  const cmd = commandFor(dir, m);
  return (await probeVirtiofsd(cmd.argv0, cmd.prefixArgs)) ? cmd : undefined;
}

function commandFor(dir: string, m: ProvisionManifest): VirtiofsdCommand {
  return {
    argv0: path.join(dir, m.loader),
    prefixArgs: ["--library-path", m.libraryPath.map((p) => path.join(dir, p)).join(":"), path.join(dir, m.binary)],
    version: m.version,
    source: "debian-trixie",
  };
}

/** findVirtiofsd(), else download trixie's virtiofsd and libraries into the cache (once). */
export async function provisionVirtiofsd(signal: AbortSignal, log: (line: string) => void = () => undefined): Promise<VirtiofsdCommand> {
  const found = await findVirtiofsd();
  if (found) return found;
  const dir = cachePaths.virtiofsd();
  if (await exists(dir)) {
    log(`removing unusable provisioned virtiofsd at ${dir}`);
    await fs.rm(dir, { recursive: true, force: true });
  }
  const arch = debianArch(process.arch);
  const index = await loadSuiteIndex("trixie", arch, { signal, log, extraPackages: trixieVirtiofsdPackages });
  const debs: string[] = [];
  const picked: DebPackage[] = [];
  for (const name of trixieVirtiofsdPackages) {
    const pkg = index.packages.filter((p) => p.name === name).sort((a, b) => compareDebianVersions(b.version, a.version))[0];
    if (!pkg) throw new HostError(`Debian trixie (${arch}) has no ${name} package: cannot provision virtiofsd.`);
    picked.push(pkg);
    debs.push(await downloadDeb(pkg, { signal, log }));
  }
  await buildDirAtomic(dir, async (tmp) => {
    for (const deb of debs) await unpackDeb(deb, tmp, { signal });
    const manifest: ProvisionManifest = {
      version: "",
      ...(await locateRuntime(tmp, process.arch)),
      packages: picked.map((p) => ({ name: p.name, version: p.version })),
    };
    // Check it runs before the entry becomes visible; paths are absolute, so it can move after.
    const cmd = commandFor(tmp, manifest);
    const version = await probeVirtiofsd(cmd.argv0, cmd.prefixArgs);
    if (!version) {
      throw new HostError(`trixie's virtiofsd does not run on this host (tried ${[cmd.argv0, ...cmd.prefixArgs, "--version"].join(" ")}).`);
    }
    manifest.version = version;
    await fs.writeFile(path.join(tmp, manifestName), JSON.stringify(manifest, null, 2));
  });
  const ready = await cachedVirtiofsd();
  if (!ready) throw new HostError(`The provisioned virtiofsd in ${dir} does not run.`);
  log(`virtiofsd ${ready.version} provisioned from Debian trixie into ${dir}`);
  return ready;
}

/**
 * Where the unpacked libc6 put its loader and libraries. trixie ships the real files under
 * usr/lib/<triplet>; the usual /lib64 (x86) or /lib (arm64) loader names are symlinks with
 * absolute targets, which would lead back to the host's loader, so only real files count.
 */
export async function locateLoader(root: string, nodeArch: string): Promise<{ loader: string; libraryPath: string[] }> {
  const host = hostArchOf(nodeArch);
  const rt = host && { triplet: archRecord(host).gnuTriplet, loader: archRecord(host).dynamicLoader };
  if (!rt) throw new HostError(`Cannot run Debian's programs privately on host architecture ${nodeArch} (x64 and arm64 are supported).`);
  const isRealFile = async (rel: string) => (await fs.lstat(path.join(root, rel)).catch(() => undefined))?.isFile() ?? false;
  const isRealDir = async (rel: string) => (await fs.lstat(path.join(root, rel)).catch(() => undefined))?.isDirectory() ?? false;
  const libDirs = [`usr/lib/${rt.triplet}`, `lib/${rt.triplet}`];
  let loader: string | undefined;
  for (const rel of [...libDirs.map((d) => `${d}/${rt.loader}`), `usr/lib64/${rt.loader}`, `lib64/${rt.loader}`]) {
    if (await isRealFile(rel)) {
      loader = rel;
      break;
    }
  }
  if (!loader) throw new HostError(`No ${rt.loader} in the unpacked libc6 (${root}).`);
  const libraryPath: string[] = [];
  for (const d of libDirs) if (await isRealDir(d)) libraryPath.push(d);
  return { loader, libraryPath };
}

/** The private loader, libraries and virtiofsd binary in an unpacked trixie virtiofsd. */
export async function locateRuntime(root: string, nodeArch: string): Promise<Pick<ProvisionManifest, "loader" | "libraryPath" | "binary">> {
  const { loader, libraryPath } = await locateLoader(root, nodeArch);
  const isRealFile = async (rel: string) => (await fs.lstat(path.join(root, rel)).catch(() => undefined))?.isFile() ?? false;
  let binary: string | undefined;
  for (const rel of ["usr/libexec/virtiofsd", "usr/bin/virtiofsd"]) {
    if (await isRealFile(rel)) {
      binary = rel;
      break;
    }
  }
  if (!binary) throw new HostError(`No virtiofsd binary in the unpacked trixie package (${root}).`);
  return { loader, libraryPath, binary };
}
