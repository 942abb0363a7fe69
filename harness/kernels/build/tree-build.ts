// Building a kernel from a tree the caller keeps (vmrig bisect: a private git checkout that
// moves from commit to commit, so make stays incremental), with the same cache, keys, config
// checks, ccache and build log as builder.ts. builder.ts prepares its own tree from a pristine
// source; this file only adds "the tree is already there" on top of its pieces.
//
//   inputs cached? done (the tree is not touched) -> prepare(src) -> patches -> configure
//   -> key cached? done -> make -> entry
import fs from "node:fs/promises";
import path from "node:path";
import type { KernelContext } from "../provider.ts";
import type { BuildOutcome } from "./builder.ts";
import { type BuildManifest, buildKey, installEntry, inputsKey, lookupInputs, readEntry, recordInputs, sha256Text } from "./cache.ts";
import { configure } from "./config.ts";
import { formatElapsed, openBuildLog, runMake } from "./make.ts";
import { applyPatches } from "./patches.ts";
import { type BuildSpec, checkBuildFiles, describeBuild } from "./spec.ts";
import { makeJobs, requireToolchain } from "./toolchain.ts";
import { patchInput } from "./worktree.ts";

export interface TreeBuildRequest {
  /** Label, arch, config base and fragments, patches (applied on top of the tree). Its `source` is not used. */
  spec: BuildSpec;
  /** What the tree holds, for cache keys: "git:<commit>" (the same identity builder.ts gives a git source). */
  sourceIdentity: string;
  /** For logs and the manifest: "linux 1a2b3c4d5e6f (fuse: ...)". */
  detail: string;
  /** The work area: the tree is slot/src, the O= directory slot/out, ccache's base dir the slot. */
  slot: string;
  /** Makes slot/src hold exactly `sourceIdentity` (called only when the kernel is not cached). */
  prepare: () => Promise<void>;
  /** The table's description of the kernel (default: describeBuild(spec)). */
  description?: string;
}

/** The build log of the last build in `slot` (kept when a build fails). */
export const treeBuildLog = (slot: string) => path.join(slot, "build.log");

/**
 * Builds (or finds in the cache) the kernel of the tree in `req.slot`. The caller holds the
 * slot's lock. Throws VmrigError when the tree does not configure or compile (the log is at
 * treeBuildLog(slot)), HostError when the host cannot build at all.
 */
export async function buildTreeKernel(req: TreeBuildRequest, ctx: KernelContext): Promise<BuildOutcome> {
  const { spec } = req;
  const log = ctx.log;
  await checkBuildFiles(spec);
  const toolchain = await requireToolchain(spec.arch);
  const read = async (file: string) => ({ file, text: await fs.readFile(file, "utf8") });
  const fragments = await Promise.all(spec.fragments.map(read));
  const patches = (await Promise.all(spec.patches.map(read))).map((p) => patchInput(p.file, p.text));
  const fragmentHashes = fragments.map((f) => sha256Text(f.text));
  const inputs = inputsKey({
    sourceIdentity: req.sourceIdentity,
    arch: spec.arch,
    base: spec.base,
    fragments: fragmentHashes,
    patches: patches.map((p) => p.sha256),
    compiler: toolchain.compilerIdentity,
  });
  const known = await lookupInputs(inputs);
  const hit = known ? await readEntry(known) : undefined;
  if (hit) {
    log(`cached kernel ${hit.key} (${req.detail})`);
    return { manifest: hit, how: "cached" };
  }

  await req.prepare();
  const src = path.join(req.slot, "src");
  if (patches.length) await applyPatches(src, patches, { label: spec.label, onto: req.detail, signal: ctx.signal, log });
  const out = path.join(req.slot, "out");
  const logFile = treeBuildLog(req.slot);
  const logStream = openBuildLog(logFile);
  try {
    const makeCtx = {
      label: spec.label,
      cwd: src,
      logStream,
      logFile,
      env: { CCACHE_BASEDIR: req.slot, KBUILD_BUILD_USER: "vmrig", KBUILD_BUILD_HOST: "vmrig" },
      signal: ctx.signal,
      log,
    };
    const make = (args: string[], stage: string) => runMake(makeCtx, ["-C", src, `O=${out}`, ...toolchain.makeVars, ...args], stage);
    const config = await configure({
      label: spec.label,
      src,
      out,
      base: spec.base,
      fragments,
      makeVars: toolchain.makeVars,
      signal: ctx.signal,
      make: (args, stage) => make(["-s", ...args], `configuring: ${stage}`),
    });
    const key = buildKey({ sourceIdentity: req.sourceIdentity, config, patches: patches.map((p) => p.sha256), arch: spec.arch, compiler: toolchain.compilerIdentity });
    const existing = await readEntry(key);
    if (existing) {
      await recordInputs(inputs, key);
      log(`cached kernel ${key} (same .config as an earlier build)`);
      return { manifest: existing, how: "cached-after-config" };
    }
    const result = await make([`-j${makeJobs()}`, toolchain.target], `building ${toolchain.target}`);
    const release = (await fs.readFile(path.join(out, "include", "config", "kernel.release"), "utf8").catch(() => "")).trim();
    const imageName = path.basename(toolchain.imagePath);
    const manifest: BuildManifest = {
      format: 1,
      key,
      description: req.description ?? describeBuild(spec),
      arch: spec.arch,
      ...(release ? { release } : {}),
      image: imageName,
      config: "config",
      log: "build.log",
      systemMap: "System.map",
      source: { identity: req.sourceIdentity, detail: req.detail },
      base: spec.base,
      fragments: fragments.map((f, i) => ({ name: path.basename(f.file), sha256: fragmentHashes[i]! })),
      patches: patches.map((p) => ({ name: path.basename(p.file), sha256: p.sha256 })),
      compiler: toolchain.compilerIdentity,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round(result.ms / 100) / 10,
      compiledObjects: result.compiled.length,
    };
    await new Promise<void>((resolve) => logStream.end(resolve));
    await installEntry(manifest, {
      [imageName]: path.join(out, toolchain.imagePath),
      config: path.join(out, ".config"),
      "build.log": logFile,
      "System.map": path.join(out, "System.map"),
    });
    await recordInputs(inputs, key);
    const what = result.compiled.length <= 5 ? result.compiled.join(", ") || "nothing" : `${result.compiled.length} files`;
    log(`built ${key} in ${formatElapsed(result.ms)} (compiled ${what})`);
    return { manifest, how: "built", make: result };
  } finally {
    if (!logStream.closed) logStream.end();
  }
}
