// Kernel provider for `source: {kind: build, spec}`: a kernel built from source with config
// fragments and patches, cached by everything that changes the binary.
//
//   spec -> pristine tree -> (inputs already built? done) -> work slot: patched tree + O= dir
//   -> base + fragments + olddefconfig, checked -> key (done if cached) -> make -> entry
import fs from "node:fs/promises";
import path from "node:path";
import type { KernelArtifact, KernelEntry } from "../../types.ts";
import { VmrigError } from "../../util/errors.ts";
import type { KernelContext, KernelProvider } from "../provider-types.ts";
import { type BuildManifest, lookupInputs, readEntry, slotKey } from "./cache.ts";
import { forgetConfig, kconfigSignature, recordConfig, reusableConfig } from "./config.ts";
import { lockDir } from "./lock.ts";
import type { MakeResult } from "./make.ts";
import { buildPaths } from "./paths.ts";
import { preparePristineSource } from "./source.ts";
import { type BuildSpec, describeBuild } from "./spec.ts";
import { touchedFiles } from "./patches.ts";
import { cachedByInputs, compileInSlot, loadBuildInputs } from "./compile-install.ts";
import { checkPatchSeries, prepareWorkTree } from "./worktree.ts";

export const buildKernelProvider: KernelProvider = { kind: "build", resolve: resolveBuildKernel };

export async function resolveBuildKernel(entry: KernelEntry, ctx: KernelContext): Promise<KernelArtifact> {
  if (entry.source.kind !== "build") throw new VmrigError(`Kernel "${entry.label}" is not a build kernel.`);
  const spec = entry.source.spec;
  // The scenario checked build.arch against the row's arch; a caller asking for another is a bug.
  if (spec.arch !== ctx.arch) {
    throw new VmrigError(`Kernel "${entry.label}" is built for ${spec.arch}, not ${ctx.arch}.`);
  }
  const { manifest } = await buildKernel(spec, ctx);
  return artifactOf(spec, manifest);
}

export function artifactOf(spec: BuildSpec, m: BuildManifest): KernelArtifact {
  const dir = buildPaths.entry(m.key);
  return {
    label: spec.label,
    arch: spec.arch,
    image: path.join(dir, m.image),
    ...(m.release ? { release: m.release } : {}),
    config: path.join(dir, m.config),
    ...(m.vmlinux ? { vmlinux: path.join(dir, m.vmlinux) } : {}),
    description: describeBuild(spec),
    identity: m.key,
  };
}

export interface BuildOutcome {
  manifest: BuildManifest;
  /** How the kernel was obtained: no work, kconfig only, or make ran. */
  how: "cached" | "cached-after-config" | "built";
  /** The make run's numbers, when make ran. */
  make?: MakeResult;
}

/** Builds (or finds) the kernel `spec` describes. */
export async function buildKernel(spec: BuildSpec, ctx: KernelContext): Promise<BuildOutcome> {
  const loaded = await loadBuildInputs(spec);
  const { toolchain, fragments, patches } = loaded;
  const fragmentHashes = fragments.map((f) => f.sha256);
  const log = ctx.log;

  const pristine = await preparePristineSource(spec.source, {
    signal: ctx.signal,
    log,
    label: spec.label,
    writtenAt: spec.writtenAt,
  });
  const { inputs, hit } = await cachedByInputs(spec, loaded, pristine.identity);
  if (hit) {
    log(`cached kernel ${hit.key} (${describeBuild(spec)})`);
    return { manifest: hit, how: "cached" };
  }

  const slot = path.join(
    buildPaths.work(),
    slotKey({ sourceIdentity: pristine.identity, arch: spec.arch, base: spec.base, fragments: fragmentHashes }),
  );
  const applyOpts = { label: spec.label, writtenAt: spec.writtenAt, onto: pristine.detail, signal: ctx.signal, log };
  await checkPatchSeries(pristine.tree, patches, applyOpts);
  const unlock = await lockDir(slot, { signal: ctx.signal, log, what: `${spec.label} (${describeBuild(spec)})` });
  try {
    // Whoever held the lock may just have built this very kernel.
    const builtMeanwhile = await lookupInputs(inputs).then((k) => (k ? readEntry(k) : undefined));
    if (builtMeanwhile) {
      log(`cached kernel ${builtMeanwhile.key} (built by another vmrig meanwhile)`);
      return { manifest: builtMeanwhile, how: "cached" };
    }
    await fs.writeFile(path.join(slot, "last-used"), new Date().toISOString() + "\n");
    const onto = pristine.detail;
    if (patches.length) log(`applying ${patches.length} patch${patches.length > 1 ? "es" : ""} to ${onto}`);
    const src = await prepareWorkTree(slot, pristine.tree, pristine.identity, patches, applyOpts);
    const signature = kconfigSignature({
      base: spec.base,
      fragments: fragmentHashes,
      compiler: toolchain.compilerIdentity,
      patches: patches.map((p) => ({ sha256: p.sha256, touched: touchedFiles(p.text) })),
    });
    return await compileInSlot({
      spec,
      loaded,
      inputs,
      slot,
      src,
      source: { identity: pristine.identity, detail: pristine.detail },
      description: describeBuild(spec),
      configure: async (configureTree, out) => {
        const reused = await reusableConfig(slot, out, signature);
        if (reused) {
          log("configuration unchanged (no patch touches Kconfig): reusing .config");
          return reused;
        }
        await forgetConfig(slot);
        const config = await configureTree();
        await recordConfig(slot, signature, config);
        return config;
      },
      signal: ctx.signal,
      log,
    });
  } finally {
    await unlock();
  }
}
