// The contract every workload kind implements; kinds live in their own files.
import type { CellOutcome, WorkloadSpec } from "../types.ts";
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
      kind: "outcome"; outcome: CellOutcome; evidence: Record<string, unknown>;
      /** A PASS that holds only if the guest is still healthy: the runner runs a liveness probe first. */
      checkGuest?: boolean;
    }
  /** The operation failed with an errno: the runner checks the mount's liveness and decides. */
  | { kind: "errno"; errno: string; detail: string; at?: string; evidence: Record<string, unknown> };

export interface WorkloadKind<W extends WorkloadSpec> {
  prepare(w: W, ctx: WorkloadContext): Promise<Record<string, unknown>>;
  command(w: W, ctx: WorkloadContext): string;
  judge(w: W, exec: Exited, facts: Record<string, unknown>, ctx: WorkloadContext): Promise<Judgement>;
}

