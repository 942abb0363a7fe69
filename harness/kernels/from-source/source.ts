// Pristine kernel trees, unpacked once into the cache and never modified afterwards: Debian's
// linux-source-X.Y package, a local git repository at a ref (exported with `git archive`, so
// the user's checkout is never touched), or a local tarball.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { execa } from "execa";
import { HostError, VmrigError } from "../../util/errors.ts";
import { buildDirAtomic, exists } from "../../util/atomic-fs.ts";
import {
  NotInArchiveError,
  type ArchiveOptions,
  type DebPackage,
  debianArch,
  downloadDeb,
  kernelSuites,
  loadSuiteIndexes,
  unpackDeb,
} from "../../debian/archive.ts";
import { compareDebianVersions } from "../../debian/version.ts";
import { buildProblem, type BuildNaming, type BuildSource } from "./spec.ts";
import { buildPaths, touchUsed } from "./paths.ts";

export interface PristineSource {
  /** The unpacked tree. Shared by every build of this source: treat it as read-only. */
  tree: string;
  /** Exactly which tree: "debian:linux-source-7.3=7.3.4-1~bpo13+1 sha256:…", "git:<commit>", "tarball:sha256:…". */
  identity: string;
  /** For logs: "linux-source-7.3 7.3.4-1~bpo13+1 (trixie-backports)". */
  detail: string;
}

interface SourceRecord {
  identity: string;
  detail: string;
  unpackedAt: string;
}

export interface SourceOptions extends BuildNaming {
  signal: AbortSignal;
  log: (line: string) => void;
}

export async function preparePristineSource(source: BuildSource, opts: SourceOptions): Promise<PristineSource> {
  switch (source.kind) {
    case "debian":
      return debianSource(source, opts);
    case "git":
      return gitSource(source, opts);
    case "tarball":
      return tarballSource(source, opts);
  }
}

/** The unpacked source `dirName`, if it is in the cache. */
async function existingSource(dirName: string): Promise<PristineSource | undefined> {
  const dir = path.join(buildPaths.sources(), dirName);
  let saved: SourceRecord;
  try {
    saved = JSON.parse(await fs.readFile(path.join(dir, "source.json"), "utf8")) as SourceRecord;
  } catch {
    return undefined;
  }
  await touchUsed(dir);
  return { tree: path.join(dir, "tree"), identity: saved.identity, detail: saved.detail };
}

/** Reads a cached source dir, or builds it atomically with `fill(tmp)` (which creates tmp/tree). */
async function cachedSource(
  dirName: string,
  record: Omit<SourceRecord, "unpackedAt">,
  opts: SourceOptions,
  fill: (tmp: string) => Promise<void>,
): Promise<PristineSource> {
  const cached = await existingSource(dirName);
  if (cached) return cached;
  const started = Date.now();
  opts.log(`unpacking ${record.detail}`);
  await buildDirAtomic(path.join(buildPaths.sources(), dirName), async (tmp) => {
    await fill(tmp);
    await checkKernelTree(path.join(tmp, "tree"), record.detail);
    const full: SourceRecord = { ...record, unpackedAt: new Date().toISOString() };
    await fs.writeFile(path.join(tmp, "source.json"), JSON.stringify(full, null, 2) + "\n");
  });
  opts.log(`unpacked ${record.detail} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const made = await existingSource(dirName);
  if (!made) throw new Error(`${dirName} vanished from ${buildPaths.sources()} right after it was unpacked`);
  return made;
}

async function checkKernelTree(tree: string, what: string): Promise<void> {
  for (const f of ["Makefile", "scripts/kconfig/merge_config.sh", "Kconfig"]) {
    if (!(await exists(path.join(tree, f)))) {
      throw new VmrigError(`${what} is not a Linux kernel tree: it has no ${f}.`);
    }
  }
}

// ---- Debian ---------------------------------------------------------------------------------

/**
 * The newest `linux-source-X.Y` package (of `version`, if pinned) in `suite` or every kernel
 * suite. linux-source is Architecture: all; Debian's per-architecture Packages indexes list
 * those packages too (their Release files say `No-Support-for-Architecture-all: Packages`,
 * i.e. binary-all is extra, not instead), so the host architecture's index is enough.
 */
export function chooseSourcePackage(
  packages: readonly DebPackage[],
  want: { package: string; version?: string },
): DebPackage | undefined {
  const matching = packages.filter((p) => p.name === want.package && (!want.version || p.version === want.version));
  return [...matching].sort((a, b) => compareDebianVersions(b.version, a.version))[0];
}

async function debianSource(
  source: Extract<BuildSource, { kind: "debian" }>,
  opts: SourceOptions,
): Promise<PristineSource> {
  const suites = source.suite ? [source.suite] : kernelSuites;
  const find = async (archive: ArchiveOptions) => {
    const indexes = await loadSuiteIndexes(suites, debianArch(process.arch), archive);
    const packages = indexes.flatMap((i) => i.packages);
    const pkg = chooseSourcePackage(packages, source);
    if (pkg) return pkg;
    const have = [
      ...new Set(
        packages.filter((p) => p.name.startsWith("linux-source-")).map((p) => `${p.name}=${p.version} (${p.suite})`),
      ),
    ];
    const what = source.version ? `${source.package}=${source.version}` : source.package;
    throw new HostError(
      buildProblem(
        opts,
        "source",
        `Debian has no ${what} (searched: ${suites.join(", ")}). ` +
          `Available: ${have.length ? have.join(", ") : "none"}.`,
      ),
    );
  };
  const dirName = (p: { name: string; version: string }) => `${p.name}_${p.version}`;
  if (source.version) {
    // A pinned version already unpacked needs no index: it keeps working after Debian drops it.
    const pinned = await existingSource(dirName({ name: source.package, version: source.version }));
    if (pinned) return pinned;
  }
  const archive: ArchiveOptions = { signal: opts.signal, log: opts.log };
  let pkg = await find(archive);
  // Once unpacked, the .deb is not needed again (nor downloaded, nor re-hashed).
  let deb: string | undefined;
  if (!(await exists(path.join(buildPaths.sources(), dirName(pkg), "source.json")))) {
    try {
      deb = await downloadDeb(pkg, archive);
    } catch (e) {
      if (!(e instanceof NotInArchiveError)) throw e;
      // The cached index (up to 12 h old) named a file Debian has since replaced.
      opts.log(`${e.message}: refreshing the Debian index`);
      pkg = await find({ ...archive, forceRefresh: true });
      deb = await downloadDeb(pkg, archive);
    }
  }
  const record = {
    identity: `debian:${pkg.name}=${pkg.version} sha256:${pkg.sha256}`,
    detail: `${pkg.name} ${pkg.version} (${pkg.suite})`,
  };
  return cachedSource(dirName(pkg), record, opts, async (tmp) => {
    deb ??= await downloadDeb(pkg, archive);
    const debDir = path.join(tmp, "deb");
    await unpackDeb(deb, debDir, { signal: opts.signal });
    const srcDir = path.join(debDir, "usr", "src");
    const tarballs = (await fs.readdir(srcDir).catch(() => [] as string[])).filter((n) =>
      /^linux-source-.*\.tar(\.\w+)?$/.test(n),
    );
    if (tarballs.length !== 1) {
      throw new HostError(
        `${pkg.name} ${pkg.version} holds ${tarballs.length} source tarballs in /usr/src (expected one): ` +
          tarballs.join(", "),
      );
    }
    await untar(path.join(srcDir, tarballs[0]!), tmp, opts.signal);
    await fs.rm(debDir, { recursive: true, force: true });
    await moveSingleTopDir(tmp, ["deb"], `${pkg.name} ${pkg.version}`);
  });
}

// ---- git ------------------------------------------------------------------------------------

async function gitSource(source: Extract<BuildSource, { kind: "git" }>, opts: SourceOptions): Promise<PristineSource> {
  const r = await execa(
    "git",
    ["-C", source.repo, "rev-parse", "--verify", "--quiet", "--end-of-options", `${source.ref}^{commit}`],
    {
      reject: false,
      cancelSignal: opts.signal,
    },
  );
  if ((r as { code?: string }).code === "ENOENT")
    throw new HostError("git is not installed: install the git package to build from a repository.");
  const commit = String(r.stdout).trim();
  if (r.exitCode !== 0 || !/^[0-9a-f]{40,64}$/.test(commit)) {
    const why = String(r.stderr).trim();
    throw new VmrigError(
      buildProblem(
        opts,
        "source.ref",
        `${JSON.stringify(source.ref)} is not a commit in ${source.repo}${why ? ` (git: ${why})` : ""}.`,
      ),
    );
  }
  const record = {
    identity: `git:${commit}`,
    detail: `${path.basename(source.repo)} ${source.ref} (${commit.slice(0, 12)})`,
  };
  return cachedSource(`git-${commit}`, record, opts, async (tmp) => {
    const tree = path.join(tmp, "tree");
    await fs.mkdir(tree);
    // `git archive` reads objects only: no worktree, no index, no lock in the user's repository.
    await execa("git", ["-C", source.repo, "archive", "--format=tar", commit], {
      cancelSignal: opts.signal,
      buffer: { stdout: false },
    }).pipe("tar", ["-x", "-C", tree], { cancelSignal: opts.signal });
  });
}

// ---- tarball --------------------------------------------------------------------------------

async function tarballSource(
  source: Extract<BuildSource, { kind: "tarball" }>,
  opts: SourceOptions,
): Promise<PristineSource> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(source.file), hash);
  const sha = hash.digest("hex");
  const record = {
    identity: `tarball:sha256:${sha}`,
    detail: `${path.basename(source.file)} (sha256 ${sha.slice(0, 12)})`,
  };
  return cachedSource(`tarball-${sha.slice(0, 24)}`, record, opts, async (tmp) => {
    const x = path.join(tmp, "x");
    await fs.mkdir(x);
    await untar(source.file, x, opts.signal);
    const entries = await fs.readdir(x);
    if (entries.includes("Makefile")) await fs.rename(x, path.join(tmp, "tree"));
    else {
      await moveSingleTopDir(x, [], path.basename(source.file));
      await fs.rename(path.join(x, "tree"), path.join(tmp, "tree"));
      await fs.rm(x, { recursive: true });
    }
  });
}

async function untar(file: string, dest: string, signal: AbortSignal): Promise<void> {
  // GNU tar picks the decompressor from the file itself.
  const r = await execa("tar", ["-xf", file, "-C", dest], { reject: false, cancelSignal: signal });
  if (r.isCanceled) throw signal.reason ?? new Error("aborted");
  if (r.failed) throw new HostError(`tar -xf ${file} failed: ${String(r.stderr).trim() || r.shortMessage}`);
}

/** The one directory the archive unpacked into `dir` (besides `ignore`) becomes dir/tree. */
async function moveSingleTopDir(dir: string, ignore: string[], what: string): Promise<void> {
  const entries = (await fs.readdir(dir, { withFileTypes: true })).filter(
    (e) => !ignore.includes(e.name) && e.name !== "tree",
  );
  const dirs = entries.filter((e) => e.isDirectory());
  if (dirs.length !== 1 || entries.length !== 1) {
    throw new VmrigError(
      `${what} does not unpack into one directory (found: ${entries.map((e) => e.name).join(", ") || "nothing"}).`,
    );
  }
  await fs.rename(path.join(dir, dirs[0]!.name), path.join(dir, "tree"));
}
