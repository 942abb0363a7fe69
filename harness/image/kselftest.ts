// Kernel selftests for the guest, compiled static from Debian's linux-source package (the
// kernel's own tools/testing/selftests), cached by package, compiler and test list. Only the
// selftest files are taken out of the source tarball, so a build costs a download and seconds.

import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import type { Arch } from "../types.ts";
import { debianArch, downloadDeb, kernelSuites, loadSuiteIndexes } from "../debian/archive.ts";
import { compareDebianVersions } from "../debian/version.ts";
import { requireCapabilities } from "../host/check.ts";
import { compilerFor } from "../host/requirements.ts";
import { HostError } from "../util/errors.ts";
import { cachePaths } from "../util/paths.ts";
import { buildDirAtomic } from "../util/atomic-fs.ts";
import { KSELFTEST_GUEST_DIR } from "./guest-protocol.ts";
import { sha256File } from "./probe.ts";

/** The Debian package whose tree the selftests come from: the newest kernel vmrig's scenarios run. */
export const KSELFTEST_SOURCE_PACKAGE = "linux-source-7.3";

/**
 * The selftests vmrig builds, by the name a scenario writes (their path under
 * tools/testing/selftests without ".c"): each is one file using kselftest_harness.h, built with
 * the host's uapi headers only (no `make headers_install`).
 */
export const KSELFTESTS = {
  "filesystems/anon_inode_test": {},
  "filesystems/openat2/emptypath_test": {},
  "filesystems/empty_mntns/nullfs_atime_test": {},
  "filesystems/xattr/xattr_sockfs_test": {},
} as const;
export type KselftestName = keyof typeof KSELFTESTS;
export const kselftestNames = Object.keys(KSELFTESTS) as KselftestName[];

export const kselftestGuestPath = (name: KselftestName) => `${KSELFTEST_GUEST_DIR}/${name}`;

const CFLAGS = ["-static", "-O2", "-s", "-w", "-pthread"];

export interface KselftestBinary {
  name: KselftestName;
  path: string;
  sha256: string;
}

/** The binaries of `names` for `arch`, built on first use. */
export async function buildKselftests(
  arch: Arch,
  names: readonly KselftestName[],
  signal: AbortSignal,
  log: (line: string) => void = () => {},
): Promise<KselftestBinary[]> {
  if (names.length === 0) return [];
  const compiler = compilerFor(arch).gcc;
  const found = await execa(compiler, ["--version"], { cancelSignal: signal, reject: false });
  if (found.exitCode !== 0) await requireCapabilities([`guests-${arch}`]);
  const wanted = [...new Set(names)].sort();
  const key = createHash("sha256")
    .update(JSON.stringify({ package: KSELFTEST_SOURCE_PACKAGE, wanted, compiler, version: found.stdout, CFLAGS }))
    .digest("hex");
  const dir = path.join(cachePaths.probes(), arch, `kselftest-${key.slice(0, 24)}`);
  const binaries = async () =>
    Promise.all(
      wanted.map(async (name) => ({
        name,
        path: path.join(dir, name),
        sha256: await sha256File(path.join(dir, name)),
      })),
    );
  try {
    return await binaries();
  } catch {
    // not built yet
  }
  await buildDirAtomic(dir, async (tmp) => {
    const started = Date.now();
    const tree = await selftestTree(tmp, wanted, signal, log);
    for (const name of wanted) await compileSelftest(compiler, tree, name, path.join(tmp, name), signal);
    await fs.rm(path.join(tmp, "src"), { recursive: true, force: true });
    log(`kselftests built in ${((Date.now() - started) / 1000).toFixed(0)} s: ${wanted.join(" ")}`);
  });
  return binaries();
}

/** Downloads the source package and unpacks only the selftest headers and the wanted tests' folders. */
async function selftestTree(
  tmp: string,
  wanted: readonly KselftestName[],
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<string> {
  const indexes = await loadSuiteIndexes(kernelSuites, debianArch(process.arch), { signal, log });
  const pkg = indexes
    .flatMap((i) => i.packages)
    .filter((p) => p.name === KSELFTEST_SOURCE_PACKAGE)
    .sort((a, b) => compareDebianVersions(b.version, a.version))[0];
  if (!pkg) throw new HostError(`Debian has no ${KSELFTEST_SOURCE_PACKAGE} (searched: ${kernelSuites.join(", ")})`);
  const deb = await downloadDeb(pkg, { signal, log });
  log(`unpacking the selftests of ${pkg.name} ${pkg.version}`);
  const top = KSELFTEST_SOURCE_PACKAGE;
  const selftests = `${top}/tools/testing/selftests`;
  // A test's top folder (filesystems/) holds its shared headers; tar wants each member asked for once.
  const folders = [...new Set(wanted.map((n) => n.split("/")[0]!))];
  const members = [`${selftests}/kselftest*.h`, ...folders.map((f) => `${selftests}/${f}/*`)];
  await fs.mkdir(path.join(tmp, "src"));
  // The tarball inside the .deb is streamed: only the members asked for reach the disk.
  const script = `dpkg-deb --fsys-tarfile "$1" | tar -xO "./usr/src/$2.tar.xz" | tar -xJ -C "$3" --wildcards "\${@:4}"`;
  const r = await execa("bash", ["-o", "pipefail", "-c", script, "bash", deb, top, path.join(tmp, "src"), ...members], {
    cancelSignal: signal,
    reject: false,
  });
  if (r.exitCode !== 0) throw new HostError(`unpacking the selftests from ${deb} failed: ${r.stderr.trim()}`);
  return path.join(tmp, "src", selftests);
}

/** A test's folder and the filesystems/ folder hold its own headers (wrappers.h, utils.h). */
async function compileSelftest(
  compiler: string,
  tree: string,
  name: KselftestName,
  out: string,
  signal: AbortSignal,
): Promise<void> {
  const source = path.join(tree, `${name}.c`);
  const folders = [tree, path.join(tree, path.dirname(name)), path.join(tree, name.split("/")[0]!)];
  await fs.mkdir(path.dirname(out), { recursive: true });
  // A failed assertion names its file: "filesystems/anon_inode_test.c:19", not the build's temporary path.
  const relative = `-fmacro-prefix-map=${tree}/=`;
  await execa(compiler, [...CFLAGS, relative, ...folders.map((f) => `-I${f}`), "-o", out, source], {
    cancelSignal: signal,
  });
}
