// Lying FUSE servers: the guest program images/repro/vmrig-fuse-lie.c serves one entry "x"
// and contradicts itself as told by its options; a victim process opens, fstat()s and reads x.
// Each named lie here is its options plus what a correct kernel does about it. A new lying
// server is a new row: no C, no image rebuild.
import { z } from "zod";
import type { CellOutcome } from "../types.ts";
import { parseProbeOutput, shellQuote } from "./probe.ts";
import { defineWorkloadAlias, defineWorkloadKind, type Exited, type Judgement } from "./kind.ts";
import { FUSE_LIE_PROGRAM } from "../image/guest-protocol.ts";
import { strict } from "./fields.ts";

/** The victim's steps, in order, as the program names them. */
export const LIE_STEPS = ["mount", "open", "dnotify", "fstat", "read", "close", "umount"] as const;
export type LieStep = (typeof LIE_STEPS)[number];

export interface FuseLie {
  /** One line for reports. */
  summary: string;
  /** vmrig-fuse-lie options that make this server. */
  args: string[];
  /** Where a correct kernel refuses the lie, and with which errno. */
  refusedAt: LieStep;
  errno: string;
  /** Where the lie comes from (a seed, a commit). */
  reference?: string;
}

export const FUSE_LIES = {
  // seed 002, syzbot f427adf9324b92652ccc; fixed by 5d069dbe8aaf "fuse: fix bad inode" (v5.11).
  "mode-flip-dnotify": {
    summary: "LOOKUP says directory, a dnotify mark goes on it, GETATTR then says regular file",
    args: ["--entry", "dir", "--dnotify", "--getattr-mode", "0100644"],
    refusedAt: "fstat",
    errno: "EIO",
    reference: "5d069dbe8aaf fuse: fix bad inode (unfixed: kernel BUG at fs/notify/dnotify/dnotify.c)",
  },
  "mode-flip": {
    summary: "LOOKUP says directory, GETATTR then says regular file (no dnotify mark)",
    args: ["--entry", "dir", "--getattr-mode", "0100644"],
    refusedAt: "fstat",
    errno: "EIO",
    reference: "fuse_do_getattr(): inode_wrong_type() -> bad inode, -EIO",
  },
  "negative-size": {
    summary: "GETATTR reports st_size 2^63 (negative as loff_t) for a 4 KiB file",
    args: ["--entry", "file", "--getattr-size", "0x8000000000000000"],
    refusedAt: "fstat",
    errno: "EIO",
    reference: "eb59bd17d2fa fuse: verify attributes (negative sizes spun in truncate_pagecache)",
  },
  "wrong-size": {
    summary: "a READ reply carries 4 KiB more than the READ asked for",
    args: ["--entry", "file", "--read-extra", "4096"],
    refusedAt: "read",
    errno: "EIO",
    reference: "fuse_copy_out_args(): a reply longer than its arguments is -EINVAL to the server, -EIO to the reader",
  },
  "bad-type": {
    summary: "GETATTR reports a file type that does not exist (S_IFMT 0170000)",
    args: ["--entry", "dir", "--getattr-mode", "0170755"],
    refusedAt: "fstat",
    errno: "EIO",
    reference: "fuse_invalid_attr(): !fuse_valid_type() -> -EIO",
  },
} as const satisfies Record<string, FuseLie>;

export type FuseLieName = keyof typeof FUSE_LIES;
export const FUSE_LIE_NAMES = Object.keys(FUSE_LIES) as FuseLieName[];
/** The workload `dnotifyBadInode` is this lie. */
export const DNOTIFY_BAD_INODE_LIE: FuseLieName = "mode-flip-dnotify";

export function isFuseLieName(name: string): name is FuseLieName {
  return Object.hasOwn(FUSE_LIES, name);
}

/**
 * The guest command; `timeoutSeconds` bounds the victim inside the guest (vmrig's step deadline
 * is the outer bound).
 */
export function fuseLieCommand(name: FuseLieName, timeoutSeconds = 20): string {
  const lie: FuseLie = FUSE_LIES[name];
  return [FUSE_LIE_PROGRAM, ...lie.args, "--timeout", String(Math.max(1, Math.round(timeoutSeconds)))]
    .map(shellQuote)
    .join(" ");
}

export interface LieReport {
  ok: boolean;
  steps?: Partial<Record<LieStep, string>>;
  stage?: string;
  errno?: string;
  error?: string; // the usage error vmrig-fuse-lie.c prints
  [k: string]: unknown;
}

/**
 * Pure: the program's report -> a cell. PASS needs the lie refused where a correct kernel
 * refuses it, with the right errno, every step before it fine and the mount gone afterwards.
 * (The runner adds a liveness check of the guest before it believes a PASS.)
 */
export function judgeFuseLie(name: FuseLieName, exec: Exited): Judgement {
  const lie: FuseLie = FUSE_LIES[name];
  const run = parseProbeOutput(exec);
  const outcome = (o: CellOutcome, evidence: Record<string, unknown>): Extract<Judgement, { kind: "outcome" }> => ({
    kind: "outcome",
    outcome: o,
    evidence,
  });
  if (run.kind === "no-report") {
    return outcome(
      {
        kind: "infra",
        reason:
          `${FUSE_LIE_PROGRAM} printed no result (exit ${exec.code}): ` +
          `${exec.stderr.trim().slice(0, 200) || "no output"}`,
      },
      { stdout: exec.stdout.slice(-2000), stderr: exec.stderr.slice(-2000) },
    );
  }
  const r = run.report as LieReport;
  const evidence = { lie: name, summary: lie.summary, report: r };
  if (!r.ok) {
    if (r.stage === "open /dev/fuse") {
      return outcome(
        {
          kind: "infra",
          reason: `fuse lie ${name}: cannot open /dev/fuse (${r.errno}): the kernel has no FUSE (CONFIG_FUSE_FS)`,
        },
        evidence,
      );
    }
    return outcome(
      { kind: "infra", reason: `fuse lie ${name}: setting up failed at ${r.stage} (${r.errno ?? r.error ?? "?"})` },
      evidence,
    );
  }
  const steps = r.steps ?? {};
  const at = LIE_STEPS.indexOf(lie.refusedAt);
  const timedOut = LIE_STEPS.find((s) => steps[s] === "timeout");
  if (timedOut) {
    return outcome({ kind: "hang", what: `fuse lie ${name}: ${timedOut} did not return`, wedged: true }, evidence);
  }
  for (const s of LIE_STEPS.slice(0, at)) {
    const v = steps[s];
    if (v !== "ok" && v !== "skipped")
      return outcome(
        { kind: "fail", detail: `${s} failed (${v ?? "not reported"}) before the lie was told` },
        evidence,
      );
  }
  const got = steps[lie.refusedAt];
  if (got === "ok") {
    const believed =
      lie.refusedAt === "fstat"
        ? `fstat says mode ${String(r.fstatMode)} size ${String(r.fstatSize)}`
        : `read returned ${String(r.readBytes)} bytes`;
    return outcome({ kind: "fail", detail: `the kernel believed the lie: ${believed}` }, evidence);
  }
  if (got !== lie.errno) {
    return outcome(
      { kind: "fail", detail: `${lie.refusedAt} gave ${got ?? "nothing"}, expected -${lie.errno}` },
      evidence,
    );
  }
  if (steps.umount !== "ok")
    return outcome({ kind: "fail", detail: `the lie was refused, but umount then failed (${steps.umount})` }, evidence);
  return {
    ...outcome({ kind: "pass", detail: `refused: ${lie.refusedAt} -> -${lie.errno}` }, evidence),
    checkGuest: true,
  };
}

/** The workload kind: nothing on the host, the program in the guest, judged by the lie's row. */
export const fuseLie = defineWorkloadKind({
  name: "fuseLie",
  schema: strict({ lie: z.enum(FUSE_LIE_NAMES) }).meta({
    description: "A lying FUSE server in the guest (harness/workloads/fuse-lies.ts).",
  }),
  toSpec: ({ lie }) => ({ lie }),
  guestCommand: (w) => fuseLieCommand(w.lie),
  judge: (w, exec) => judgeFuseLie(w.lie, exec),
});

/** The seed 002 reproducer under its own name. */
export const dnotifyBadInode = defineWorkloadAlias({
  name: "dnotifyBadInode",
  schema: strict({}).meta({ description: "The seed 002 reproducer: fuseLie mode-flip-dnotify." }),
  runsAs: fuseLie,
  toSpec: () => ({ lie: DNOTIFY_BAD_INODE_LIE }),
});
