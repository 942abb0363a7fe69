// overlayReaddir: overlayfs in the guest with its lower layer on virtio-fs (seed 001). The host
// fills a directory of the share with `entries` files; the guest mounts a fresh tmpfs for the
// upper and work directories, mounts overlay over the share's directory and lists the merged
// root with getdents64 (buffer `bufferSize`), then with busybox `ls`; `lister` says whose count
// makes the cell (the other one is evidence). overlayfs
// reads a merged directory with ctx->count = INT_MAX, so FUSE sizes its readdir request by
// max_pages GUEST pages: 1.94 MiB on a 16K guest, 7.75 MiB on 64K, and virtiofsd refuses
// anything above 1 MiB. The guest then sees ENOMEM from getdents64 while `ls` prints an empty
// directory and exits 0: counting against the host is what catches it (SHORT: saw 0 of N).
import path from "node:path";
import { z } from "zod";
import { createEntries } from "./host-entries.ts";
import type { CellOutcome } from "../types.ts";
import { noProbeReport, PROBE, parseProbeOutput, shellQuote } from "./probe.ts";
import { defineWorkloadKind, workloadDir, type Exited, type Judgement, type KindSpec } from "./kind.ts";
import { entryCount, shareName, size, strict } from "./fields.ts";

// Written out rather than taken from the kind object: the kind's own hooks use it.
type Overlay = KindSpec<"overlayReaddir", OverlayFields>;
interface OverlayFields {
  share: string;
  entries: number;
  bufferBytes: number;
  lister: "getdents" | "ls";
}

/** Exit status of the guest script when the overlay could not be mounted (no probe ran). */
export const OVERLAY_MOUNT_FAILED = 97;
const LS_PREFIX = "vmrig-ls:";

/**
 * Pure: a listing that ended without an error. All entries is PASS; fewer is SHORT (entries
 * lost silently: never PASS); more is FAIL (the listing invented or repeated entries).
 */
export function countOutcome(seen: number, expected: number, detail?: string): CellOutcome {
  const extra = detail ? `; ${detail}` : "";
  if (seen === expected) return { kind: "pass", detail: `${seen} entries${extra}` };
  if (seen < expected) return { kind: "short", seen, expected, detail: `saw ${seen} of ${expected} entries${extra}` };
  return { kind: "fail", detail: `saw ${seen} entries, the host has ${expected}${extra}` };
}

export interface LsSummary {
  exit: number;
  lines: number;
  stderr: string;
}

/** Pure: the `vmrig-ls: exit=0 lines=0 err=...` line the guest script prints on stderr. */
export function parseLsSummary(stderr: string): LsSummary | undefined {
  const line = stderr.split("\n").find((l) => l.startsWith(LS_PREFIX));
  const m = line && /exit=(\d+) lines=(\d+)(?: err=(.*))?/.exec(line);
  return m ? { exit: Number(m[1]), lines: Number(m[2]), stderr: (m[3] ?? "").trim() } : undefined;
}

const lsText = (ls: LsSummary | undefined) =>
  ls ? `busybox ls: exit ${ls.exit}, ${ls.lines} entries${ls.stderr ? ` (${ls.stderr})` : ""}` : undefined;

/** The guest script: mount, list with the probe, then with ls, clean up; the probe's status is the script's. */
export function overlayCommand(w: Overlay, guestShareDir: string): string {
  const lower = shellQuote(path.posix.join(guestShareDir, w.id));
  const base = shellQuote(`/tmp/vmrig-overlay-${w.id}`);
  const merged = `${base}/merged`;
  return [
    `mkdir -p ${base}`,
    `mount -t tmpfs -o mode=755 vmrig-overlay ${base} && mkdir -p ${base}/upper ${base}/work ${base}/merged` +
      ` && mount -t overlay overlay -o lowerdir=${lower},upperdir=${base}/upper,workdir=${base}/work ${merged}` +
      ` || { echo "vmrig-overlay: mount failed" >&2; umount ${base} 2>/dev/null; exit ${OVERLAY_MOUNT_FAILED}; }`,
    `${PROBE} getdents ${merged} ${w.bufferBytes}; rc=$?`,
    `ls -1 ${merged} > ${base}/ls.out 2> ${base}/ls.err; lsrc=$?`,
    `echo "${LS_PREFIX} exit=$lsrc lines=$(wc -l < ${base}/ls.out) ` +
      `err=$(head -c 160 ${base}/ls.err | tr '\\n' ' ')" >&2`,
    `umount ${merged}; umount ${base}`,
    `exit $rc`,
  ].join("\n");
}

/** Pure: the cell from the finished script. */
export function judgeOverlay(w: Overlay, exec: Exited): Judgement {
  const ls = parseLsSummary(exec.stderr);
  const evidence: Record<string, unknown> = { hostEntries: w.entries, ...(ls ? { ls } : {}) };
  if (exec.code === OVERLAY_MOUNT_FAILED) {
    const why =
      exec.stderr
        .trim()
        .split("\n")
        .filter((l) => !l.startsWith("vmrig-overlay:"))
        .pop() ?? "";
    const outcome: CellOutcome = /unknown filesystem type/.test(exec.stderr)
      ? { kind: "infra", reason: `this kernel has no overlayfs: ${why}` }
      : { kind: "fail", detail: `mount -t overlay over virtio-fs failed${why ? `: ${why}` : ""}` };
    return { kind: "outcome", outcome, evidence: { ...evidence, stderr: exec.stderr.slice(-2000) } };
  }
  const run = parseProbeOutput(exec);
  if (run.kind === "no-report") return noProbeReport(exec, evidence);
  const r = run.report;
  evidence.probe = r;
  if (w.lister === "ls")
    return judgeLs(w, ls, r.ok ? `getdents64 saw ${r.entries} entries` : `getdents64: ${r.errno}`, evidence);
  const lsNote = lsText(ls);
  if (!r.ok && r.errno) {
    return {
      kind: "errno",
      errno: r.errno,
      detail: `getdents64 on the merged dir: ${r.errno} after ${r.entries ?? 0} entries${lsNote ? `; ${lsNote}` : ""}`,
      evidence,
    };
  }
  if (!r.ok)
    return { kind: "outcome", outcome: { kind: "fail", detail: `${r.op} failed: ${JSON.stringify(r)}` }, evidence };
  return { kind: "outcome", outcome: countOutcome(Number(r.entries), w.entries, lsNote), evidence };
}

/** `lister: ls`: what a user sees. busybox ls reports no readdir error: a short count is SHORT. */
function judgeLs(
  w: Overlay,
  ls: LsSummary | undefined,
  probeNote: string,
  evidence: Record<string, unknown>,
): Judgement {
  if (!ls)
    return { kind: "outcome", outcome: { kind: "infra", reason: "the guest script printed no ls summary" }, evidence };
  if (ls.exit !== 0) {
    return {
      kind: "outcome",
      outcome: {
        kind: "fail",
        detail:
          `busybox ls exited ${ls.exit} after ${ls.lines} entries` +
          `${ls.stderr ? `: ${ls.stderr}` : ""}; ${probeNote}`,
      },
      evidence,
    };
  }
  return { kind: "outcome", outcome: countOutcome(ls.lines, w.entries, `ls exit 0; ${probeNote}`), evidence };
}

export const overlayReaddir = defineWorkloadKind({
  name: "overlayReaddir",
  /** overlayfs over the share (lower) with tmpfs upper and work; the merged root is listed. */
  schema: strict({
    share: shareName(),
    entries: entryCount(),
    bufferSize: size().prefault("32K").meta({ description: "getdents64 buffer of the probe." }),
    lister: z.enum(["getdents", "ls"]).default("getdents").meta({
      description:
        "Whose count is the cell: vmrig-probe's getdents64 (errno visible) or busybox ls (what a user sees).",
    }),
  }),
  toSpec: ({ share, entries, bufferSize, lister }): OverlayFields => ({
    share,
    entries,
    bufferBytes: bufferSize,
    lister,
  }),
  prepareHost: (w, ctx) => createEntries(workloadDir(w, ctx.hostDir!), w.entries, "vmrig-overlay-lower"),
  guestCommand: (w, ctx) => overlayCommand(w, ctx.guestDir!),
  judge: (w, exec) => judgeOverlay(w, exec),
});
