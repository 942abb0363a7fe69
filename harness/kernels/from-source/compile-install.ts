// The tail every kernel build shares, whoever prepared the tree (builder.ts from a pristine
// source, tree-build.ts from a bisect checkout): the slot's build log and O= directory, the
// configuration, key from the final .config, cache hit or make, then the manifest and an atomic
// cache entry.
import fs from "node:fs/promises";
import path from "node:path";
import {
  BUILD_FORMAT,
  type BuildManifest,
  buildKey,
  inputsKey,
  installEntry,
  lookupInputs,
  readEntry,
  recordInputs,
  sha256Text,
} from "./cache.ts";
import type { WriteStream } from "node:fs";
import { configure, type ConfigureOptions } from "./config.ts";
import { formatElapsed, openBuildLog, runMake, type MakeContext, type MakeResult } from "./make.ts";
import type { BuildSpec } from "./spec.ts";
import { checkBuildFiles } from "./spec.ts";
import { makeJobs, requireToolchain, type Toolchain } from "./toolchain.ts";
import { patchInput } from "./worktree.ts";

/** What a build reads before any tree is touched: toolchain, fragments and patches with their hashes. */
export async function loadBuildInputs(spec: BuildSpec) {
  await checkBuildFiles(spec);
  const toolchain = await requireToolchain(spec.arch);
  const read = async (file: string) => ({ file, text: await fs.readFile(file, "utf8") });
  const fragments = (await Promise.all(spec.fragments.map(read))).map((f) => ({ ...f, sha256: sha256Text(f.text) }));
  const patches = (await Promise.all(spec.patches.map(read))).map((p) => patchInput(p.file, p.text));
  return { toolchain, fragments, patches };
}

export type BuildInputs = Awaited<ReturnType<typeof loadBuildInputs>>;

/** The inputs index key for a source, and the kernel already built from exactly those inputs. */
export async function cachedByInputs(spec: BuildSpec, loaded: BuildInputs, sourceIdentity: string) {
  const inputs = inputsKey({
    sourceIdentity,
    arch: spec.arch,
    base: spec.base,
    fragments: loaded.fragments.map((f) => f.sha256),
    patches: loaded.patches.map((p) => p.sha256),
    compiler: loaded.toolchain.compilerIdentity,
  });
  const known = await lookupInputs(inputs);
  return { inputs, hit: known ? await readEntry(known) : undefined };
}

/** The build log of the last build in `slot` (kept when a build fails). */
export const slotBuildLog = (slot: string) => path.join(slot, "build.log");

/**
 * Builds the ready tree `src` in `slot` (O= directory slot/out, log slotBuildLog(slot)), or finds
 * the kernel its .config gives already built. `configure` leaves slot/out configured and returns
 * the .config text; the `configureTree` it is given runs kconfig (base + fragments, checked), so
 * each caller decides whether kconfig runs at all.
 */
export async function compileInSlot(o: {
  spec: BuildSpec;
  loaded: BuildInputs;
  /** The inputs index entry that will point at the result. */
  inputs: string;
  slot: string;
  src: string;
  source: { identity: string; detail: string };
  description: string;
  configure: (configureTree: () => Promise<string>, out: string) => Promise<string>;
  signal: AbortSignal;
  log: (line: string) => void;
}): Promise<CompileOutcome> {
  const { spec, loaded, slot, src, signal, log } = o;
  const out = path.join(slot, "out");
  const logFile = slotBuildLog(slot);
  const logStream = openBuildLog(logFile);
  try {
    const { toolchain, fragments, patches } = loaded;
    const { make, configureTree } = slotMake({ spec, toolchain, slot, src, out, logStream, logFile, signal, log });
    const config = await o.configure(() => configureTree(fragments), out);
    return await compileAndInstall({
      spec,
      toolchain,
      out,
      config,
      inputs: o.inputs,
      make,
      logStream,
      logFile,
      log,
      fragments,
      patches,
      source: o.source,
      description: o.description,
    });
  } finally {
    // compileAndInstall ends the log before installing it; a failure on the way leaves it open.
    if (!logStream.closed) logStream.end();
  }
}

/** make in a slot's O= build directory, logged to its build log, and configuring that directory. */
function slotMake(o: {
  spec: BuildSpec;
  toolchain: Toolchain;
  slot: string;
  src: string;
  out: string;
  logStream: WriteStream;
  logFile: string;
  signal: AbortSignal;
  log: (line: string) => void;
}) {
  const ctx: MakeContext = {
    label: o.spec.label,
    cwd: o.src,
    logStream: o.logStream,
    logFile: o.logFile,
    // ccache sees paths relative to the slot, so other slots (and re-created ones) hit too.
    env: { CCACHE_BASEDIR: o.slot, KBUILD_BUILD_USER: "vmrig", KBUILD_BUILD_HOST: "vmrig" },
    signal: o.signal,
    log: o.log,
  };
  const make = (args: string[], stage: string) =>
    runMake(ctx, ["-C", o.src, `O=${o.out}`, ...o.toolchain.makeVars, ...args], stage);
  const configureTree = (fragments: ConfigureOptions["fragments"]) =>
    configure({
      label: o.spec.label,
      writtenAt: o.spec.writtenAt,
      src: o.src,
      out: o.out,
      base: o.spec.base,
      fragments,
      makeVars: o.toolchain.makeVars,
      signal: o.signal,
      make: (args, stage) => make(["-s", ...args], `configuring: ${stage}`),
    });
  return { make, configureTree };
}

interface CompileRequest {
  spec: BuildSpec;
  toolchain: Toolchain;
  /** The O= directory, already configured. */
  out: string;
  /** The final .config text (part of the key). */
  config: string;
  fragments: Array<{ file: string; sha256: string }>;
  patches: Array<{ file: string; sha256: string }>;
  source: { identity: string; detail: string };
  description: string;
  /** The inputs index entry that will point at the result. */
  inputs: string;
  make: (args: string[], stage: string) => Promise<MakeResult>;
  logStream: { end: (cb: () => void) => void };
  logFile: string;
  log: (line: string) => void;
}

export type CompileOutcome =
  { manifest: BuildManifest; how: "cached-after-config" } | { manifest: BuildManifest; how: "built"; make: MakeResult };

async function compileAndInstall(r: CompileRequest): Promise<CompileOutcome> {
  const key = buildKey({
    sourceIdentity: r.source.identity,
    config: r.config,
    patches: r.patches.map((p) => p.sha256),
    arch: r.spec.arch,
    compiler: r.toolchain.compilerIdentity,
  });
  const existing = await readEntry(key);
  if (existing) {
    await recordInputs(r.inputs, key);
    r.log(`cached kernel ${key} (same .config as an earlier build)`);
    return { manifest: existing, how: "cached-after-config" };
  }
  const result = await r.make([`-j${makeJobs()}`, r.toolchain.target], `building ${r.toolchain.target}`);
  const release = (
    await fs.readFile(path.join(r.out, "include", "config", "kernel.release"), "utf8").catch(() => "")
  ).trim();
  const imageName = path.basename(r.toolchain.imagePath);
  const manifest: BuildManifest = {
    format: BUILD_FORMAT,
    key,
    description: r.description,
    arch: r.spec.arch,
    ...(release ? { release } : {}),
    image: imageName,
    config: "config",
    log: "build.log",
    systemMap: "System.map",
    vmlinux: "vmlinux",
    source: r.source,
    base: r.spec.base,
    fragments: r.fragments.map((f) => ({ name: path.basename(f.file), sha256: f.sha256 })),
    patches: r.patches.map((p) => ({ name: path.basename(p.file), sha256: p.sha256 })),
    compiler: r.toolchain.compilerIdentity,
    builtAt: new Date().toISOString(),
    buildSeconds: Math.round(result.ms / 100) / 10,
    compiledObjects: result.compiled.length,
  };
  await new Promise<void>((resolve) => r.logStream.end(resolve));
  await installEntry(manifest, {
    [imageName]: path.join(r.out, r.toolchain.imagePath),
    config: path.join(r.out, ".config"),
    "build.log": r.logFile,
    "System.map": path.join(r.out, "System.map"),
    // A kept failed guest is debugged with it: gdb and crash need the ELF with symbols.
    vmlinux: path.join(r.out, "vmlinux"),
  });
  await recordInputs(r.inputs, key);
  const what =
    result.compiled.length <= 5 ? result.compiled.join(", ") || "nothing" : `${result.compiled.length} files`;
  r.log(`built ${key} in ${formatElapsed(result.ms)} (compiled ${what})`);
  return { manifest, how: "built", make: result };
}
