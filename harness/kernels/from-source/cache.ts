// Cache keys and finished-kernel entries. A key is derived from everything that changes the
// binary: the source's identity, the final .config, each patch's content, the architecture and
// the compiler. Entries are written beside their final place and renamed into it.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { Arch } from "../../types.ts";
import { buildDirAtomic, exists, isTempSibling, writeFileAtomic } from "../../util/atomic-fs.ts";
import { buildPaths, lastUsed, touchUsed } from "./paths.ts";

/** Bump when what an entry holds or how keys are made changes. */
export const BUILD_FORMAT = 2;

const digest = (value: unknown) => createHash("sha256").update(JSON.stringify(value)).digest("hex");

export interface KeyInputs {
  sourceIdentity: string;
  /** The final .config text. */
  config: string;
  /** sha256 of each patch, in order. */
  patches: readonly string[];
  arch: Arch;
  compiler: string;
}

/**
 * The cache key of a built kernel. Only option lines of .config count: its header comment
 * ("Automatically generated file; DO NOT EDIT" and the kernel version) carries nothing more,
 * and blank or comment lines other than "is not set" are noise.
 */
export function buildKey(k: KeyInputs): string {
  return digest({
    format: BUILD_FORMAT,
    source: k.sourceIdentity,
    config: configLines(k.config),
    patches: k.patches,
    arch: k.arch,
    compiler: k.compiler,
  }).slice(0, 32);
}

export function configLines(config: string): string[] {
  return config
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^CONFIG_\w+=/.test(l) || /^# CONFIG_\w+ is not set$/.test(l));
}

export interface InputsKeyInputs {
  sourceIdentity: string;
  arch: Arch;
  base: string;
  /** sha256 of each fragment's text, in order. */
  fragments: readonly string[];
  patches: readonly string[];
  compiler: string;
}

/** Everything the user gave, before kconfig ran: same inputs -> the same kernel, no work at all. */
export function inputsKey(k: InputsKeyInputs): string {
  return digest({ format: BUILD_FORMAT, ...k }).slice(0, 32);
}

/** The work slot shared by builds that differ only in patches (so make can be incremental). */
export function slotKey(k: Omit<InputsKeyInputs, "patches" | "compiler">): string {
  return digest({
    format: BUILD_FORMAT,
    source: k.sourceIdentity,
    arch: k.arch,
    base: k.base,
    fragments: k.fragments,
  }).slice(0, 24);
}

export const sha256Text = (text: string) => createHash("sha256").update(text).digest("hex");

// ---- entries ------------------------------------------------------------------------------

export interface BuildManifest {
  format: number;
  key: string;
  description: string;
  arch: Arch;
  release?: string;
  /** File names inside the entry. */
  image: string;
  config: string;
  log: string;
  systemMap?: string;
  /** The uncompressed ELF kernel with its symbols, for gdb and crash (format 2 on). */
  vmlinux?: string;
  source: { identity: string; detail: string };
  base: string;
  fragments: Array<{ name: string; sha256: string }>;
  patches: Array<{ name: string; sha256: string }>;
  compiler: string;
  builtAt: string;
  buildSeconds: number;
  /** How many objects make compiled for this entry (small for an incremental build). */
  compiledObjects: number;
}

const MANIFEST = "manifest.json";

export async function readEntry(key: string): Promise<BuildManifest | undefined> {
  try {
    const m = JSON.parse(await fs.readFile(path.join(buildPaths.entry(key), MANIFEST), "utf8")) as BuildManifest;
    if (m.format !== BUILD_FORMAT || !(await exists(path.join(buildPaths.entry(key), m.image)))) return undefined;
    await touchUsed(buildPaths.entry(key));
    return m;
  } catch {
    return undefined;
  }
}

/** Installs an entry atomically: `files` maps entry file names to host files to copy. */
export async function installEntry(manifest: BuildManifest, files: Record<string, string>): Promise<void> {
  await buildDirAtomic(buildPaths.entry(manifest.key), async (tmp) => {
    for (const [name, from] of Object.entries(files)) await fs.copyFile(from, path.join(tmp, name));
    await fs.writeFile(path.join(tmp, MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
  });
}

export async function lookupInputs(inputs: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(path.join(buildPaths.index(), inputs), "utf8")).trim() || undefined;
  } catch {
    return undefined;
  }
}

export async function recordInputs(inputs: string, key: string): Promise<void> {
  await writeFileAtomic(path.join(buildPaths.index(), inputs), key + "\n");
}

export interface ListedEntry {
  key: string;
  manifest: BuildManifest;
  lastUsed?: Date;
  bytes: number;
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await dirBytes(p);
    else total += (await fs.lstat(p).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

export async function listEntries(): Promise<ListedEntry[]> {
  const out: ListedEntry[] = [];
  for (const key of await fs.readdir(buildPaths.entries()).catch(() => [] as string[])) {
    if (isTempSibling(key)) continue;
    try {
      const manifest = JSON.parse(
        await fs.readFile(path.join(buildPaths.entry(key), MANIFEST), "utf8"),
      ) as BuildManifest;
      out.push({
        key,
        manifest,
        lastUsed: await lastUsed(buildPaths.entry(key)),
        bytes: await dirBytes(buildPaths.entry(key)),
      });
    } catch {
      // not an entry (or one from an incompatible vmrig): gc removes it
    }
  }
  return out.sort((a, b) => (b.lastUsed?.getTime() ?? 0) - (a.lastUsed?.getTime() ?? 0));
}

export interface GcOptions {
  /** Remove entries, work slots and sources not used for this many days (default 30). */
  maxAgeDays?: number;
  /** Also remove every work slot (the O= build directories: the bulk of the disk use). */
  dropWork?: boolean;
  dryRun?: boolean;
  now?: Date;
}

export interface GcReport {
  removed: Array<{ path: string; bytes: number; why: string }>;
  kept: number;
}

/**
 * Removes leftovers of interrupted builds, entries in an old format, and whatever was not used
 * for maxAgeDays: finished kernels, work slots, unpacked sources. Index records pointing at a
 * removed entry go too.
 */
export async function collectGarbage(opts: GcOptions = {}): Promise<GcReport> {
  const now = opts.now ?? new Date();
  const maxAgeMs = (opts.maxAgeDays ?? 30) * 86400_000;
  const report: GcReport = { removed: [], kept: 0 };
  const remove = async (p: string, why: string) => {
    const st = await fs.lstat(p).catch(() => undefined);
    const bytes = st?.isDirectory() ? await dirBytes(p) : (st?.size ?? 0);
    report.removed.push({ path: p, bytes, why });
    if (!opts.dryRun) await fs.rm(p, { recursive: true, force: true });
  };
  const old = async (dir: string) => {
    const t = await lastUsed(dir);
    return !t || now.getTime() - t.getTime() > maxAgeMs;
  };

  for (const root of [buildPaths.entries(), buildPaths.sources(), buildPaths.work()]) {
    for (const name of await fs.readdir(root).catch(() => [] as string[])) {
      const p = path.join(root, name);
      if (isTempSibling(name)) {
        await remove(p, "left over from an interrupted build");
        continue;
      }
      if (root === buildPaths.entries()) {
        const m = await fs
          .readFile(path.join(p, MANIFEST), "utf8")
          .then((t) => JSON.parse(t) as BuildManifest)
          .catch(() => undefined);
        if (!m || m.format !== BUILD_FORMAT) await remove(p, "incomplete or from another vmrig version");
        else if (await old(p)) await remove(p, `not used for ${opts.maxAgeDays ?? 30} days`);
        else report.kept++;
      } else if (root === buildPaths.work() && opts.dropWork) {
        await remove(p, "work directory (--work)");
      } else if (await old(p)) {
        await remove(p, `not used for ${opts.maxAgeDays ?? 30} days`);
      } else report.kept++;
    }
  }
  const gone = new Set(report.removed.map((r) => path.basename(r.path)));
  for (const name of await fs.readdir(buildPaths.index()).catch(() => [] as string[])) {
    const key = (await fs.readFile(path.join(buildPaths.index(), name), "utf8").catch(() => "")).trim();
    if (!key || gone.has(key) || !(await exists(buildPaths.entry(key)))) {
      if (!opts.dryRun) await fs.rm(path.join(buildPaths.index(), name), { force: true });
    }
  }
  return report;
}
