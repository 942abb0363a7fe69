// The contract of a workload kind. A kind is one file that exports one defineWorkloadKind(...)
// object, plus one line in registry.ts: the scenario schema, the loader, the runner and the
// editor's JSON Schema all read the kind from there. Timeouts, lost guests, crashes and errno
// liveness checks are the runner's, the same for every kind.
import path from "node:path";
import type { z } from "zod";
import type { CellOutcome, SearchUnit } from "../types.ts";
import type { ExecResult } from "../guest/ssh.ts";

export type Exited = Extract<ExecResult, { kind: "exited" }>;

export interface WorkloadContext {
  /** Host directory backing the workload's share (absent for share-less workloads). */
  hostDir?: string;
  /** Where the share is mounted in the guest. */
  guestDir?: string;
}

export type Judgement =
  | {
      kind: "outcome";
      outcome: CellOutcome;
      evidence: Record<string, unknown>;
      /** A PASS that holds only if the guest is still healthy: the runner runs a liveness probe first. */
      checkGuest?: boolean;
      /** The test cases the command reported (KTAP), each a cell `<id>/<name>` beside the workload's own. */
      testCases?: TestCaseCell[];
    }
  /** The operation failed with an errno: the runner checks the mount's liveness and decides. */
  | { kind: "errno"; errno: string; detail: string; at?: string; evidence: Record<string, unknown> };

/** One test case of a workload's output, as a cell of its own. */
export interface TestCaseCell {
  name: string;
  outcome: CellOutcome;
  evidence: Record<string, unknown>;
}

/** Where the scenario file is: a host path a kind's field names is relative to its directory. */
export interface SpecPlace {
  dir: string;
}

/** A workload as the loader makes it: the scenario's id, the kind's name and the kind's own fields. */
export type KindSpec<Name extends string, Fields> = { id: string; kind: Name } & Fields;

/**
 * What a kind may check against the rest of the file (a limit from `timeouts`, a section it
 * needs). It runs on the whole file even when fields failed, so read `written` defensively.
 */
export interface FileCheck {
  /** The kind's mapping as written (sizes and times already parsed where they were valid). */
  written: unknown;
  /** The whole file, as parsed so far. */
  file: unknown;
  /** The unscaled step deadline, timeouts.step (or its default). */
  stepSeconds: number;
  /** Reports a problem at `path` inside the kind's mapping; the loader adds file:line:col. */
  problem: (path: PropertyKey[], input: unknown, message: string) => void;
}

/** A numeric parameter a workload's `search:` may vary: the spec field it sets and how it is written. */
export interface SearchableParam<Field extends string = string> {
  field: Field;
  unit: SearchUnit;
}

/** The kind's parameters a `search:` may name, by the name the scenario writes them under. */
export type SearchableParams<Fields extends object = object> = Record<
  string,
  SearchableParam<Extract<{ [F in keyof Fields]: Fields[F] extends number ? F : never }[keyof Fields], string>>
>;

export interface WorkloadKind<Name extends string = string, Fields extends object = object, Written = unknown> {
  /** The key a scenario writes the workload under (`- { id: up, uptime: {} }`) and the spec's `kind`. */
  readonly name: Name;
  /** What that key holds: a strict object (fields.ts `strict`), so a misspelt key is an error. */
  readonly schema: z.ZodType;
  /** Numeric parameters a `search:` may vary; a kind without them cannot be searched. */
  readonly searchable?: SearchableParams<Fields>;
  /** It reports test cases (`<id>/<test>` cells), which a kernel's `expect:` may name. */
  readonly testCases?: boolean;
  /** The validated mapping -> the spec's own fields (the loader adds `id` and `kind`). */
  toSpec(written: Written, at: SpecPlace): Fields;
  /** Cross-field checks (see FileCheck). */
  checkInFile?(check: FileCheck): void;
  /** Host side, before the guest command: create files in the share; what it returns reaches judge as `facts`. */
  prepareHost?(w: KindSpec<Name, Fields>, ctx: WorkloadContext): Promise<Record<string, unknown>>;
  /** The shell command the guest runs for this workload. */
  guestCommand(w: KindSpec<Name, Fields>, ctx: WorkloadContext): string;
  /** A finished command -> the cell (or an errno for the runner's liveness check). */
  judge(
    w: KindSpec<Name, Fields>,
    exec: Exited,
    facts: Record<string, unknown>,
    ctx: WorkloadContext,
  ): Judgement | Promise<Judgement>;
}

/**
 * Another key for an existing kind: a scenario writes `dnotifyBadInode: {}`, the run sees a
 * fuseLie workload. Only the schema and the mapping are its own.
 */
export interface WorkloadAlias<Name extends string = string, Written = unknown> {
  readonly name: Name;
  readonly schema: z.ZodType;
  /** The kind the workload runs as. */
  readonly runsAs: AnyWorkloadKind;
  toSpec(written: Written, at: SpecPlace): object;
}

// `any` where a kind's own types meet the registry's list of every kind: each kind is checked
// against its own types in defineWorkloadKind, the list only dispatches by name.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the registry's view, as said above
export type AnyWorkloadKind = WorkloadKind<string, any, any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the registry's view, as said above
export type AnyWorkloadKey = AnyWorkloadKind | WorkloadAlias<string, any>;

/** Declares a kind; the types of every hook follow from `name`, `schema` and `toSpec`. */
export function defineWorkloadKind<const Name extends string, Schema extends z.ZodType, Fields extends object>(kind: {
  name: Name;
  schema: Schema;
  toSpec(written: z.output<Schema>, at: SpecPlace): Fields;
  searchable?: SearchableParams<Fields>;
  testCases?: boolean;
  checkInFile?(check: FileCheck): void;
  prepareHost?(w: KindSpec<Name, Fields>, ctx: WorkloadContext): Promise<Record<string, unknown>>;
  guestCommand(w: KindSpec<Name, Fields>, ctx: WorkloadContext): string;
  judge(
    w: KindSpec<Name, Fields>,
    exec: Exited,
    facts: Record<string, unknown>,
    ctx: WorkloadContext,
  ): Judgement | Promise<Judgement>;
}): WorkloadKind<Name, Fields, z.output<Schema>> {
  return kind;
}

/** Declares another key for `runsAs`; its toSpec yields that kind's fields. */
export function defineWorkloadAlias<
  const Name extends string,
  Schema extends z.ZodType,
  Target extends AnyWorkloadKind,
>(alias: {
  name: Name;
  schema: Schema;
  runsAs: Target;
  toSpec(written: z.output<Schema>, at: SpecPlace): Target extends WorkloadKind<string, infer F, unknown> ? F : never;
}): WorkloadAlias<Name, z.output<Schema>> {
  return alias;
}

/** A directory of its own for each workload in the share (host or guest side): no cross-talk. */
export const workloadDir = (w: { id: string }, base: string) => path.posix.join(base, w.id);
