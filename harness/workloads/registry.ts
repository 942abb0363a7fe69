// Every workload kind, by the key a scenario writes it under. A new kind is its own file and
// one line in BUILT_IN; the scenario schema, the loader, the runner and the JSON Schema for
// editors all come from this list. Order is the order of messages and of the JSON Schema.
import type { WorkloadSpec } from "../types.ts";
import type { AnyWorkloadKey, AnyWorkloadKind, WorkloadAlias, WorkloadKind } from "./kind.ts";
import { dnotifyBadInode, fuseLie } from "./fuse-lies.ts";
import { getdentsSweep } from "./getdents-sweep.ts";
import { nestedQemu } from "./nested-qemu.ts";
import { overlayReaddir } from "./overlay-readdir.ts";
import { read } from "./read.ts";
import { readdir } from "./readdir.ts";
import { ktap } from "./ktap.ts";
import { shell } from "./shell.ts";
import { exec } from "./exec.ts";
import { write } from "./write.ts";

const BUILT_IN = [
  readdir,
  getdentsSweep,
  read,
  write,
  shell,
  exec,
  ktap,
  dnotifyBadInode,
  fuseLie,
  overlayReaddir,
  nestedQemu,
] as const;

type BuiltIn = (typeof BUILT_IN)[number];
type FieldsOf<K> = K extends WorkloadKind<string, infer Fields, unknown> ? Fields : never;

// WorkloadSpec in types.ts is the union of what the built-in kinds make, so code outside a
// kind (vfio/nested.ts) can still narrow on `kind`. Derived here so a new kind adds no type.
declare module "../types.ts" {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- declaration merging fills it
  interface WorkloadSpecs extends KindFields {}
}
type KindFields = { [K in Exclude<BuiltIn, WorkloadAlias> as K["name"]]: FieldsOf<K> };

const keys = new Map<string, AnyWorkloadKey>();
let generation = 0;

/** Adds a kind (or another key for one) to every scenario loaded from now on. */
export function registerWorkloadKind(kind: AnyWorkloadKey): void {
  const known = keys.get(kind.name);
  if (known === kind) return;
  if (known) throw new Error(`a workload kind named ${JSON.stringify(kind.name)} is already registered`);
  keys.set(kind.name, kind);
  generation++;
}

for (const kind of BUILT_IN) registerWorkloadKind(kind);

/** Every key a scenario may write a workload under, in registration order. */
export function workloadKeys(): readonly AnyWorkloadKey[] {
  return [...keys.values()];
}

/** Changes whenever a kind is registered, so a schema built from the list knows to rebuild. */
export function registryGeneration(): number {
  return generation;
}

/** The kind that runs a workload. */
export function workloadKind(w: Pick<WorkloadSpec, "kind">): AnyWorkloadKind {
  const key = keys.get(w.kind);
  if (!key || "runsAs" in key) throw new Error(`no workload kind ${JSON.stringify(w.kind)} is registered`);
  return key;
}

/** The share a workload uses: a kind that has one names it in its `share` field. */
export function workloadShare(w: WorkloadSpec): string | undefined {
  return "share" in w && typeof w.share === "string" ? w.share : undefined;
}
