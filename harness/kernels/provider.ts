// Where a scenario's kernels come from. Each `source.kind` has one provider that turns a
// KernelEntry into files on disk (a KernelArtifact); the rest of vmrig only sees artifacts.
import type { KernelArtifact, KernelEntry, KernelSource } from "../types.ts";
import { VmrigError } from "../util/errors.ts";
import { buildKernelProvider } from "./from-source/builder.ts";
import { debianKernelProvider } from "./debian.ts";
import { pathKernelProvider } from "./path.ts";
import type { KernelContext, KernelProvider } from "./provider-types.ts";

const providers = new Map<KernelSource["kind"], KernelProvider>();

export function registerKernelProvider(provider: KernelProvider): void {
  providers.set(provider.kind, provider);
}

for (const p of [debianKernelProvider, pathKernelProvider, buildKernelProvider]) registerKernelProvider(p);

export function kernelProvider(kind: KernelSource["kind"]): KernelProvider {
  const p = providers.get(kind);
  if (!p) throw new VmrigError(`No kernel provider for source kind "${kind}".`);
  return p;
}

export function resolveKernel(entry: KernelEntry, ctx: KernelContext): Promise<KernelArtifact> {
  return kernelProvider(entry.source.kind).resolve(entry, ctx);
}
