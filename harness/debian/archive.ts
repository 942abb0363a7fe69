// A small, verified client of Debian's archive: signed InRelease -> checksummed Packages.xz ->
// a filtered, cached index; .deb downloads checked against that index. It does not use apt, so
// it behaves the same whatever the host's apt sources are (Ubuntu too).
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { execa } from "execa";
import pRetry from "p-retry";
import { archNamed, archRecord, hostArchOf } from "../arch.ts";
import { HostError } from "../util/errors.ts";
import { cachePaths } from "../util/paths.ts";
import { debianKeyring, debianMirror, debianSecurityMirror, offline } from "../util/env.ts";
import { buildFileAtomic, writeFileAtomic } from "../util/atomic-fs.ts";
import { type DebPackage, type Stanza, StanzaCollector, parseRelease, toDebPackage } from "./control.ts";

import { dependencyClosure } from "./deps.ts";

export type { DebPackage } from "./control.ts";

export { debianKeyring, debianMirror, debianSecurityMirror } from "../util/env.ts";
import { allowExpiredSuites } from "../util/env.ts";

/** Suites searched for kernels when a scenario names none, oldest first (ties keep the first). */
export const kernelSuites: readonly string[] = [
  "bookworm",
  "bookworm-security",
  "bookworm-backports",
  "trixie",
  "trixie-security",
  "trixie-backports",
  "sid",
  "experimental",
];

/** Non-kernel packages every index keeps: virtiofsd and its libraries, the guest image's tools. */
export const defaultExtraPackages: readonly string[] = [
  "virtiofsd",
  "libc6",
  "libcap-ng0",
  "libseccomp2",
  "libgcc-s1",
  "busybox-static",
  "dropbear-bin",
  "libcrypt1",
  "libtomcrypt1",
  "libtommath1",
  "zlib1g",
];

const maxIndexAgeMs = 12 * 3600 * 1000;
const indexFormat = 1;

export interface ArchiveOptions {
  signal?: AbortSignal;
  log?: (message: string) => void;
  /** More package names to keep in the index besides linux-* and defaultExtraPackages. */
  extraPackages?: readonly string[];
  /** Refetch InRelease even when the cached index is younger than 12 h. */
  forceRefresh?: boolean;
  /** Keep the extra packages' dependencies (within this suite) too: see resolveWithDependencies. */
  keepDependencies?: boolean;
}

export interface SuiteIndex {
  suite: string;
  arch: string;
  archiveUrl: string;
  /** When InRelease was last fetched and verified (ISO time). */
  fetchedAt: string;
  /** The Date: of the InRelease the index came from. */
  releaseDate?: string;
  packages: DebPackage[];
}

/** Cached form: stanzas rather than records, so a format change only touches toDebPackage. */
interface CachedIndex {
  format: number;
  suite: string;
  arch: string;
  archiveUrl: string;
  fetchedAt: string;
  releaseDate?: string;
  validUntil?: string;
  packagesSha256: string;
  extraPackages: string[];
  stanzas: Stanza[];
}

export const isOffline = (): boolean => offline();

export function archiveUrlFor(suite: string): string {
  return suite.endsWith("-security") ? debianSecurityMirror() : debianMirror();
}

/** Node's process.arch / vmrig's Arch -> Debian architecture name. */
export function debianArch(arch: string): string {
  const known = archNamed(arch) ?? hostArchOf(arch);
  if (!known) throw new HostError(`No Debian architecture for ${arch} (vmrig supports x86_64 and aarch64).`);
  return archRecord(known).debianArch;
}

function indexFile(suite: string, arch: string): string {
  return path.join(cachePaths.debianIndex(), `${suite}_${arch}.json`);
}

async function readCachedIndex(file: string): Promise<CachedIndex | undefined> {
  try {
    const c = JSON.parse(await fs.readFile(file, "utf8")) as CachedIndex;
    return c.format === indexFormat && Array.isArray(c.stanzas) ? c : undefined;
  } catch {
    return undefined;
  }
}

function toSuiteIndex(c: CachedIndex): SuiteIndex {
  const packages = c.stanzas
    .map((s) => toDebPackage(s, c.suite, c.archiveUrl))
    .filter((p): p is DebPackage => p !== undefined);
  return {
    suite: c.suite,
    arch: c.arch,
    archiveUrl: c.archiveUrl,
    fetchedAt: c.fetchedAt,
    releaseDate: c.releaseDate,
    packages,
  };
}

/**
 * The filtered index of `suite` (main, binary-`arch`): every linux-* package plus the extra
 * names. Served from the cache while younger than 12 h (always with VMRIG_OFFLINE=1).
 */
export async function loadSuiteIndex(suite: string, arch: string, opts: ArchiveOptions = {}): Promise<SuiteIndex> {
  const file = indexFile(suite, arch);
  const cached = await readCachedIndex(file);
  const wanted = new Set([...defaultExtraPackages, ...(opts.extraPackages ?? [])]);
  const hasWanted = (c: CachedIndex) => [...wanted].every((n) => c.extraPackages.includes(n));

  if (isOffline()) {
    if (!cached)
      throw new HostError(`VMRIG_OFFLINE=1 but there is no cached Debian index for ${suite}/${arch} (${file}).`);
    if (!hasWanted(cached)) opts.log?.(`offline: the cached ${suite} index was built without some requested packages`);
    return toSuiteIndex(cached);
  }
  const age = cached ? Date.now() - Date.parse(cached.fetchedAt) : Infinity;
  if (cached && !opts.forceRefresh && age < maxIndexAgeMs && hasWanted(cached)) return toSuiteIndex(cached);

  // Keep what earlier callers asked for too, so two callers do not evict each other's names.
  for (const n of cached?.extraPackages ?? []) wanted.add(n);
  try {
    return toSuiteIndex(await refreshIndex(suite, arch, [...wanted].sort(), cached, opts));
  } catch (e) {
    if (cached && (isTransient(e) || e instanceof RolledBackError) && !opts.signal?.aborted) {
      opts.log?.(
        `could not refresh the Debian ${suite} index (${(e as Error).message}); ` +
          `using the copy from ${cached.fetchedAt}`,
      );
      return toSuiteIndex(cached);
    }
    throw e;
  }
}

/**
 * Loads several suites, two at a time (the large ones are ~10 MB of xz each). Offline, suites
 * never cached are skipped (with a log line) as long as at least one is there.
 */
export async function loadSuiteIndexes(
  suites: readonly string[],
  arch: string,
  opts: ArchiveOptions = {},
): Promise<SuiteIndex[]> {
  const out = new Array<SuiteIndex | undefined>(suites.length);
  let next = 0;
  const worker = async () => {
    while (next < suites.length) {
      const i = next++;
      const suite = suites[i]!;
      if (isOffline() && !(await readCachedIndex(indexFile(suite, arch)))) {
        opts.log?.(`offline: no cached Debian index for ${suite}/${arch}, not searching it`);
        continue;
      }
      out[i] = await loadSuiteIndex(suite, arch, opts);
    }
  };
  await Promise.all([worker(), worker()]);
  const loaded = out.filter((x): x is SuiteIndex => x !== undefined);
  if (loaded.length === 0) {
    throw new HostError(
      `VMRIG_OFFLINE=1 but no Debian index for ${suites.join(", ")} (${arch}) ` +
        `is cached in ${cachePaths.debianIndex()}.`,
    );
  }
  return loaded;
}

async function refreshIndex(
  suite: string,
  arch: string,
  extraPackages: string[],
  cached: CachedIndex | undefined,
  opts: ArchiveOptions,
): Promise<CachedIndex> {
  const archiveUrl = archiveUrlFor(suite);
  const release = await fetchVerifiedRelease(suite, archiveUrl, cached, opts);
  const indexPath = `main/binary-${arch}/Packages.xz`;
  const entry = release.sha256.get(indexPath);
  if (!entry) throw new HostError(`Debian suite ${suite} lists no ${indexPath} in its InRelease (${archiveUrl}).`);

  const base = {
    format: indexFormat,
    suite,
    arch,
    archiveUrl,
    fetchedAt: new Date().toISOString(),
    releaseDate: release.fields["Date"],
    validUntil: release.fields["Valid-Until"],
    packagesSha256: entry.sha256,
    extraPackages,
  };
  let stanzas: Stanza[];
  if (
    cached &&
    cached.packagesSha256 === entry.sha256 &&
    extraPackages.every((n) => cached.extraPackages.includes(n))
  ) {
    stanzas = cached.stanzas; // Packages unchanged since last time: only the InRelease was refetched.
  } else {
    const keepNames = new Set(extraPackages);
    const keep = (name: string) => name.startsWith("linux-") || keepNames.has(name);
    const started = Date.now();
    if (opts.keepDependencies) {
      // Every stanza is needed to follow Depends; then only the closure is kept (and cached).
      const all = await fetchFilteredPackages(`${archiveUrl}/dists/${suite}/${indexPath}`, entry, () => true, opts);
      const pool = new Map(all.map((st) => [st["Package"]!, [st]]));
      for (const name of dependencyClosure(extraPackages, pool).chosen.keys()) keepNames.add(name);
      stanzas = all.filter((st) => keep(st["Package"] ?? ""));
      base.extraPackages = [...keepNames].sort();
    } else {
      stanzas = await fetchFilteredPackages(`${archiveUrl}/dists/${suite}/${indexPath}`, entry, keep, opts);
    }
    opts.log?.(
      `Debian ${suite}/${arch}: ${(entry.size / 1e6).toFixed(1)} MB index, ` +
        `${stanzas.length} packages kept, ${Date.now() - started} ms`,
    );
  }
  const index: CachedIndex = { ...base, stanzas };
  await writeFileAtomic(indexFile(suite, arch), JSON.stringify(index));
  return index;
}

/**
 * The packages `roots` need to run unpacked (dependencyClosure), across `suites` in order of
 * preference ("trixie-backports", then "trixie" for what backports does not carry). Each round
 * keeps, per suite, the closure within that suite; names that only another suite has come back
 * as wanted names in the next round, so it settles in two or three rounds.
 */
export async function resolveWithDependencies(
  suites: readonly string[],
  arch: string,
  roots: readonly string[],
  opts: ArchiveOptions = {},
): Promise<DebPackage[]> {
  const wanted = new Set(roots);
  for (let round = 0; round < 6; round++) {
    const indexes = await Promise.all(
      suites.map((suite) =>
        loadSuiteIndex(suite, arch, { ...opts, extraPackages: [...wanted], keepDependencies: true }),
      ),
    );
    const pool = new Map<string, Stanza[]>();
    const bySuite = new Map<Stanza, DebPackage>();
    for (const index of indexes) {
      for (const p of index.packages) {
        pool.set(p.name, [...(pool.get(p.name) ?? []), p.fields]);
        bySuite.set(p.fields, p);
      }
    }
    const closure = dependencyClosure(roots, pool);
    const unknown = closure.unresolved.flatMap((g) => g.split(" | ")).filter((n) => !wanted.has(n));
    if (unknown.length === 0) {
      if (closure.unresolved.length) {
        throw new HostError(
          `Debian ${suites.join(" + ")} (${arch}) cannot satisfy ${roots.join(", ")}: ` +
            `nothing provides ${closure.unresolved.join(", ")}.`,
        );
      }
      return [...closure.chosen.values()].map((st) => bySuite.get(st)!);
    }
    for (const n of unknown) wanted.add(n);
  }
  throw new HostError(
    `Resolving the dependencies of ${roots.join(", ")} in Debian ${suites.join(" + ")} did not settle.`,
  );
}

// ---- InRelease ------------------------------------------------------------------------------

async function fetchVerifiedRelease(
  suite: string,
  archiveUrl: string,
  cached: CachedIndex | undefined,
  opts: ArchiveOptions,
) {
  const url = `${archiveUrl}/dists/${suite}/InRelease`;
  const body = await withRetry(`fetch ${url}`, opts, async () =>
    Buffer.from(await (await httpGet(url, opts.signal)).arrayBuffer()),
  ).catch((e: unknown) => {
    throw e instanceof NotInArchiveError ? new HostError(`Debian has no suite "${suite}" (${url}: HTTP 404).`) : e;
  });
  const text = await verifyClearsigned(body, url, opts.signal);
  const release = parseRelease(text);
  // A validly signed InRelease of another suite must not stand in for this one (apt checks it too).
  const { Codename: codename, Suite: suiteName } = release.fields;
  if (codename !== suite && suiteName !== suite) {
    throw new HostError(`${url} is signed but describes suite ${suiteName}/${codename}, not ${suite}.`);
  }
  const problem = releaseTrustProblem(release.fields, suite, cached, Date.now(), allowExpiredSuites());
  if (problem?.kind === "rolled-back") throw new RolledBackError(`${url} ${problem.message}`);
  // Still used: archives frozen in time (snapshots, offline mirrors) are how old kernels stay reproducible.
  if (problem) opts.log?.(`warning: ${url}: ${problem.message}`);
  return release;
}

/** A mirror served an InRelease older than the cached one (a CDN node behind, or a replay): keep the newer. */
class RolledBackError extends HostError {}

/**
 * Pure: what is wrong with a signed InRelease beyond its signature: it expired (a stale or replayed
 * mirror: warned, unless the user said that suite is expected to be), or it is older than the one
 * already used (never used: the newer cached index stays).
 */
export function releaseTrustProblem(
  fields: Record<string, string>,
  suite: string,
  cached: Pick<CachedIndex, "releaseDate"> | undefined,
  now: number,
  allowExpired: readonly string[],
): { kind: "expired" | "rolled-back"; message: string } | undefined {
  const validUntil = fields["Valid-Until"];
  if (validUntil && Date.parse(validUntil) < now && !allowExpired.includes(suite))
    return {
      kind: "expired",
      message:
        `expired on ${validUntil} (a stale or replayed mirror; apt would refuse it). Its signature is good, so ` +
        `vmrig uses it; VMRIG_ALLOW_EXPIRED_SUITES=${suite} says that is expected`,
    };
  const date = fields["Date"];
  if (date && cached?.releaseDate && Date.parse(date) < Date.parse(cached.releaseDate))
    return {
      kind: "rolled-back",
      message: `is dated ${date}, older than the ${cached.releaseDate} one vmrig already used: the mirror went back in time`,
    };
  return undefined;
}

/**
 * Checks a clearsigned file with gpgv against Debian's archive keyring and returns the signed
 * text only (never the unsigned bytes around it). Accepts it, like apt, when at least one
 * signature is good and none is bad: archive files carry signatures by two keys, and a
 * keyring that lacks one of them is normal.
 */
export async function verifyClearsigned(data: Uint8Array, what: string, signal?: AbortSignal): Promise<string> {
  const keyring = debianKeyring();
  try {
    await fs.access(keyring);
  } catch {
    throw new HostError(
      `Debian archive keyring ${keyring} is missing: ` +
        "install the debian-archive-keyring package (or set VMRIG_DEBIAN_KEYRING).",
    );
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "vmrig-gpgv-"));
  try {
    const input = path.join(dir, "InRelease");
    const output = path.join(dir, "Release");
    await fs.writeFile(input, data);
    const r = await execa("gpgv", ["--status-fd", "1", "--keyring", keyring, "--output", output, input], {
      reject: false,
      cancelSignal: signal,
    });
    if (r.failed && (r as { code?: string }).code === "ENOENT") {
      throw new HostError(
        "gpgv is not installed: install the gpgv package (vmrig verifies Debian's signatures with it).",
      );
    }
    if (r.isCanceled) throw signal?.reason ?? new Error("aborted");
    const status = String(r.stdout);
    const good = /^\[GNUPG:\] GOODSIG /m.test(status);
    const bad = /^\[GNUPG:\] BADSIG /m.test(status);
    if (!good || bad) {
      const why = bad
        ? "a signature is BAD (the file was altered)"
        : "no signature could be verified with this keyring";
      throw new HostError(
        `Signature check of ${what} failed: ${why}. Keyring: ${keyring}. gpgv said:\n${String(r.stderr).trim()}`,
      );
    }
    return await fs.readFile(output, "utf8");
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

// ---- Packages.xz ----------------------------------------------------------------------------

/** Streams Packages.xz through a hash and `xz -dc`, keeping only the stanzas `keep` accepts. */
async function fetchFilteredPackages(
  url: string,
  expected: { sha256: string; size: number },
  keep: (name: string) => boolean,
  opts: ArchiveOptions,
): Promise<Stanza[]> {
  return withRetry(`fetch ${url}`, opts, async () => {
    const res = await httpGet(url, opts.signal);
    const hash = createHash("sha256");
    let size = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    const xz = execa("xz", ["-dc"], { stdin: "pipe", buffer: { stdout: false }, cancelSignal: opts.signal });
    const collector = new StanzaCollector(keep);
    const reading = (async () => {
      for await (const line of readline.createInterface({ input: xz.stdout, crlfDelay: Infinity }))
        collector.push(line);
    })();
    const feeding = pipeline(Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>), counter, xz.stdin);
    const [fed, read, ran] = await Promise.allSettled([feeding, reading, xz]);
    if (ran.status === "rejected" && (ran.reason as { code?: string }).code === "ENOENT") {
      throw new HostError("xz is not installed: install xz-utils (Debian's indexes are xz-compressed).");
    }
    if (fed.status === "rejected")
      throw ran.status === "rejected" && !isTransient(fed.reason) ? ran.reason : fed.reason;
    const digest = hash.digest("hex");
    if (size !== expected.size || digest !== expected.sha256) {
      throw new HostError(
        `${url} does not match its signed InRelease (got ${size} bytes, sha256 ${digest}; ` +
          `expected ${expected.size}, ${expected.sha256}). The mirror may be mid-update: try again later.`,
      );
    }
    if (ran.status === "rejected")
      throw new HostError(`xz could not decompress ${url}: ${(ran.reason as Error).message}`);
    if (read.status === "rejected") throw read.reason;
    return collector.finish();
  });
}

// ---- .deb files -----------------------------------------------------------------------------

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), hash);
  return hash.digest("hex");
}

async function isValidDownload(file: string, pkg: DebPackage): Promise<boolean> {
  try {
    const st = await fs.stat(file);
    return st.size === pkg.size && (await sha256File(file)) === pkg.sha256;
  } catch {
    return false;
  }
}

/** Where downloadDeb keeps `pkg`. */
export function debCachePath(pkg: DebPackage): string {
  return path.join(cachePaths.debianDebs(), path.basename(pkg.filename));
}

/**
 * Downloads `pkg` into the .deb cache (checked against the index's SHA256, written atomically)
 * and returns its path; a valid cached copy is reused without network access.
 */
export async function downloadDeb(pkg: DebPackage, opts: ArchiveOptions = {}): Promise<string> {
  const dest = debCachePath(pkg);
  if (await isValidDownload(dest, pkg)) return dest;
  if (isOffline()) throw new HostError(`VMRIG_OFFLINE=1 but ${pkg.name} ${pkg.version} is not in the cache (${dest}).`);
  const url = `${pkg.archiveUrl}/${pkg.filename}`;
  const started = Date.now();
  opts.log?.(`downloading ${pkg.name} ${pkg.version} (${(pkg.size / 1e6).toFixed(1)} MB, ${pkg.suite})`);
  await withRetry(`download ${url}`, opts, async () => {
    const res = await httpGet(url, opts.signal);
    const hash = createHash("sha256");
    const hasher = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    await buildFileAtomic(dest, async (tmp) => {
      await pipeline(
        Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>),
        hasher,
        createWriteStream(tmp),
      );
      const digest = hash.digest("hex");
      if (digest !== pkg.sha256) {
        throw new HostError(`${url} does not match its index entry (sha256 ${digest}, expected ${pkg.sha256}).`);
      }
    });
  });
  opts.log?.(`downloaded ${pkg.name} in ${Date.now() - started} ms`);
  return dest;
}

/** Extracts a .deb's data into destDir (created if needed) with dpkg-deb -x. */
export async function unpackDeb(debPath: string, destDir: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  await fs.mkdir(destDir, { recursive: true });
  const r = await execa("dpkg-deb", ["-x", debPath, destDir], { reject: false, cancelSignal: opts.signal });
  if (r.isCanceled) throw opts.signal?.reason ?? new Error("aborted");
  if ((r as { code?: string }).code === "ENOENT") {
    throw new HostError("dpkg-deb is not installed: install the dpkg package (vmrig unpacks Debian packages with it).");
  }
  if (r.failed) throw new HostError(`dpkg-deb -x ${debPath} failed: ${String(r.stderr).trim() || r.shortMessage}`);
}

// ---- HTTP with retries ----------------------------------------------------------------------

/** A 404 from the archive: the file is gone (Debian removes superseded packages). */
export class NotInArchiveError extends HostError {
  constructor(readonly url: string) {
    super(`${url} is not in Debian's archive (HTTP 404)`);
    this.name = "NotInArchiveError";
  }
}

/** An HTTP status the server may answer differently next time (5xx, 429). */
class TransientHttpError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
  ) {
    super(`${url}: HTTP ${status}`);
    this.name = "TransientHttpError";
  }
}

async function httpGet(url: string, signal?: AbortSignal): Promise<Response & { body: NonNullable<Response["body"]> }> {
  const res = await fetch(url, { signal });
  if (res.status >= 500 || res.status === 429) throw new TransientHttpError(url, res.status);
  if (res.status === 404) throw new NotInArchiveError(url);
  if (!res.ok || !res.body) throw new HostError(`${url}: HTTP ${res.status}.`);
  return res as Response & { body: NonNullable<Response["body"]> };
}

const transientCodes = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
]);

/** Network failures and 5xx answers: worth another try. Checksum or 404 errors are not. */
export function isTransient(e: unknown): boolean {
  if (e instanceof TransientHttpError) return true;
  if (!(e instanceof Error)) return false;
  if (e.name === "AbortError") return false;
  if (e instanceof TypeError && (e.message === "fetch failed" || e.message === "terminated")) return true;
  const code = (e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code;
  return code !== undefined && transientCodes.has(code);
}

function withRetry<T>(what: string, opts: ArchiveOptions, fn: () => Promise<T>): Promise<T> {
  return pRetry(fn, {
    retries: 4,
    minTimeout: 1000,
    signal: opts.signal,
    shouldRetry: (e) => isTransient(e),
    onFailedAttempt: (e) => {
      if (isTransient(e) && e.retriesLeft > 0) opts.log?.(`${what}: ${e.message}; retrying (${e.retriesLeft} left)`);
    },
  });
}
