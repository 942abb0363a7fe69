// The contract every kernel provider implements (debian.ts, path.ts, from-source/builder.ts);
// provider.ts keeps the registry, so a provider never imports the registry that imports it.
import type { Arch, KernelArtifact, KernelEntry, KernelSource } from "../types.ts";

export interface KernelContext {
  /** The scenario's machine architecture (the kernel must be built for it). */
  arch: Arch;
  signal: AbortSignal;
  /** Progress lines for the user ("downloading linux-image-... (49.1 MB)"). */
  log: (line: string) => void;
  /** Directory relative `path` sources are resolved against (the scenario's); default: cwd. */
  baseDir?: string;
}

export interface KernelProvider {
  kind: KernelSource["kind"];
  resolve(entry: KernelEntry, ctx: KernelContext): Promise<KernelArtifact>;
}
