// Building one tree with config after config (vmrig bisect --config): one work slot per tree,
// arch, base and patches, whose O= directory every config reuses, so a step recompiles only what
// the changed options touch (builder.ts would give each config its own slot, a full build each).
// Same cache, keys, config checks and build log as any build.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { KernelContext } from "../provider-types.ts";
import type { BuildOutcome } from "./builder.ts";
import { lockDir } from "./lock.ts";
import { buildPaths } from "./paths.ts";
import { preparePristineSource } from "./source.ts";
import type { BuildSpec } from "./spec.ts";
import { buildTreeKernel } from "./tree-build.ts";
import { patchInput, prepareWorkTree } from "./worktree.ts";

export interface ConfigSlot {
  /** The pristine tree (kconfig resolves against it) and the work slot builds happen in. */
  tree: string;
  slot: string;
  /** The pristine source and the patches, for cache keys: the slot's tree is exactly this. */
  identity: string;
  detail: string;
}

/** The tree `spec` builds from, unpacked once and shared, and the slot its configs are built in. */
export async function configSlot(spec: BuildSpec, ctx: Omit<KernelContext, "arch">): Promise<ConfigSlot> {
  const p = await preparePristineSource(spec.source, { ...ctx, label: spec.label, writtenAt: spec.writtenAt });
  const patches = await Promise.all(spec.patches.map(async (f) => patchInput(f, await fs.readFile(f, "utf8"))));
  const identity = [p.identity, ...patches.map((x) => `patch:${x.sha256}`)].join(" ");
  const name = createHash("sha256")
    .update(JSON.stringify(["config", identity, spec.arch, spec.base]))
    .digest("hex");
  return {
    tree: p.tree,
    slot: path.join(buildPaths.work(), `config-${name.slice(0, 20)}`),
    identity,
    detail: p.detail,
  };
}

/** Builds (or finds in the cache) spec's tree with `configFile` as its one fragment, in the slot. */
export async function buildWithConfig(
  spec: BuildSpec,
  s: ConfigSlot,
  configFile: string,
  ctx: KernelContext,
): Promise<BuildOutcome> {
  const patches = await Promise.all(spec.patches.map(async (f) => patchInput(f, await fs.readFile(f, "utf8"))));
  // The patches are in the slot's tree (and in its identity), not applied again on top of it.
  const stepSpec: BuildSpec = { ...spec, fragments: [configFile], patches: [] };
  const apply = { label: spec.label, writtenAt: spec.writtenAt, onto: s.detail, signal: ctx.signal, log: ctx.log };
  const unlock = await lockDir(s.slot, { signal: ctx.signal, log: ctx.log, what: `${spec.label} (config bisect)` });
  try {
    await fs.writeFile(path.join(s.slot, "last-used"), new Date().toISOString() + "\n");
    const request = {
      spec: stepSpec,
      sourceIdentity: s.identity,
      detail: `${s.detail} with ${path.basename(configFile)}`,
      slot: s.slot,
      prepare: async () => void (await prepareWorkTree(s.slot, s.tree, s.identity, patches, apply)),
    };
    return await buildTreeKernel(request, ctx);
  } finally {
    await unlock();
  }
}
