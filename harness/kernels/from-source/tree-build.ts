// Building a kernel from a tree the caller keeps (vmrig bisect: a private git checkout that
// moves from commit to commit, so make stays incremental), with the same cache, keys, config
// checks, ccache and build log as builder.ts. builder.ts prepares its own tree from a pristine
// source; this file only adds "the tree is already there" on top of its pieces.
//
//   inputs cached? done (the tree is not touched) -> prepare(src) -> patches -> configure
//   -> key cached? done -> make -> entry
import path from "node:path";
import type { KernelContext } from "../provider-types.ts";
import type { BuildOutcome } from "./builder.ts";
import { applyPatches } from "./patches.ts";
import { type BuildSpec, describeBuild } from "./spec.ts";
import { cachedByInputs, compileInSlot, loadBuildInputs, slotBuildLog } from "./compile-install.ts";

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
export const treeBuildLog = slotBuildLog;

/**
 * Builds (or finds in the cache) the kernel of the tree in `req.slot`. The caller holds the
 * slot's lock. Throws VmrigError when the tree does not configure or compile (the log is at
 * treeBuildLog(slot)), HostError when the host cannot build at all.
 */
export async function buildTreeKernel(req: TreeBuildRequest, ctx: KernelContext): Promise<BuildOutcome> {
  const { spec } = req;
  const log = ctx.log;
  const loaded = await loadBuildInputs(spec);
  const { patches } = loaded;
  const { inputs, hit } = await cachedByInputs(spec, loaded, req.sourceIdentity);
  if (hit) {
    log(`cached kernel ${hit.key} (${req.detail})`);
    return { manifest: hit, how: "cached" };
  }

  await req.prepare();
  const src = path.join(req.slot, "src");
  if (patches.length)
    await applyPatches(src, patches, {
      label: spec.label,
      writtenAt: spec.writtenAt,
      onto: req.detail,
      signal: ctx.signal,
      log,
    });
  return compileInSlot({
    spec,
    loaded,
    inputs,
    slot: req.slot,
    src,
    source: { identity: req.sourceIdentity, detail: req.detail },
    description: req.description ?? describeBuild(spec),
    // The slot's tree changes from commit to commit, which a .config signature does not cover:
    // kconfig runs every time.
    configure: (configureTree) => configureTree(),
    signal: ctx.signal,
    log,
  });
}
