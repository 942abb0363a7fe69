// Finding a virtiofsd to run, or providing one. bookworm does not package virtiofsd, and
// trixie's needs glibc >= 2.39, so on older hosts vmrig unpacks trixie's virtiofsd together
// with trixie's libc and runs it through that libc's own dynamic loader: no root, no apt, no
// effect on the host's libraries.
import { constants as fsConstants } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import { HostError } from "../util/errors.ts";
import { cachePaths } from "../util/paths.ts";
import { searchPath } from "../util/env.ts";
import { debianArch, loadSuiteIndex } from "../debian/archive.ts";
import {
  locateLoader,
  loaderCommand,
  newestPackages,
  privateHostArch,
  provisionUnpacked,
  readManifest,
  reusableEntry,
} from "../debian/private-program.ts";

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
  const fromPath = searchPath().map((d) => path.join(d, "virtiofsd"));
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
  const m = await readManifest<ProvisionManifest>(dir, manifestName);
  if (!m) return undefined;
  const cmd = commandFor(dir, m);
  return (await probeVirtiofsd(cmd.argv0, cmd.prefixArgs)) ? cmd : undefined;
}

function commandFor(dir: string, m: ProvisionManifest): VirtiofsdCommand {
  return { ...loaderCommand(dir, m, m.binary), version: m.version, source: "debian-trixie" };
}

/** findVirtiofsd(), else download trixie's virtiofsd and libraries into the cache (once). */
export async function provisionVirtiofsd(
  signal: AbortSignal,
  log: (line: string) => void = () => undefined,
): Promise<VirtiofsdCommand> {
  const found = await findVirtiofsd();
  if (found) return found;
  const dir = cachePaths.virtiofsd();
  // findVirtiofsd() tried a manifest there already: what is left does not run.
  await reusableEntry(dir, manifestName, () => false, { what: "provisioned virtiofsd", log });
  const arch = debianArch(process.arch);
  const index = await loadSuiteIndex("trixie", arch, { signal, log, extraPackages: trixieVirtiofsdPackages });
  const picked = newestPackages(index.packages, trixieVirtiofsdPackages, `trixie (${arch})`);
  await provisionUnpacked<ProvisionManifest>(
    {
      dir,
      manifestName,
      packages: picked,
      describe: async ({ tree }) => {
        const manifest: ProvisionManifest = {
          version: "",
          ...(await locateRuntime(tree, process.arch)),
          packages: picked.map((p) => ({ name: p.name, version: p.version })),
        };
        // Check it runs before the entry becomes visible; paths are absolute, so it can move after.
        const cmd = commandFor(tree, manifest);
        const version = await probeVirtiofsd(cmd.argv0, cmd.prefixArgs);
        if (!version) {
          const tried = [cmd.argv0, ...cmd.prefixArgs, "--version"].join(" ");
          throw new HostError(`trixie's virtiofsd does not run on this host (tried ${tried}).`);
        }
        return { ...manifest, version };
      },
    },
    { signal, log },
  );
  const ready = await cachedVirtiofsd();
  if (!ready) throw new HostError(`The provisioned virtiofsd in ${dir} does not run.`);
  log(`virtiofsd ${ready.version} provisioned from Debian trixie into ${dir}`);
  return ready;
}

/** The private loader, libraries and virtiofsd binary in an unpacked trixie virtiofsd. */
export async function locateRuntime(
  root: string,
  nodeArch: string,
): Promise<Pick<ProvisionManifest, "loader" | "libraryPath" | "binary">> {
  const { loader, libraryPath } = await locateLoader(root, privateHostArch(nodeArch));
  const isRealFile = async (rel: string) =>
    (await fs.lstat(path.join(root, rel)).catch(() => undefined))?.isFile() ?? false;
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
