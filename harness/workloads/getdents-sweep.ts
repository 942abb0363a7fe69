// getdentsSweep: one directory listed with each buffer size in turn, to show where a kernel
// stops coping: "largest size that worked, first that failed and its errno".
import { z } from "zod";
import { createEntries } from "./host-entries.ts";
import { formatSize } from "../util/size.ts";
import { PROBE, shellQuote, type ProbeReport } from "./probe.ts";
import { defineWorkloadKind, workloadDir, type Judgement } from "./kind.ts";
import { countOutcome } from "./overlay-readdir.ts";
import { entryCount, shareName, size, strict } from "./fields.ts";

export interface SweepPoint {
  bufferSize: number;
  ok: boolean;
  entries?: number;
  errno?: string;
}

/** Pure: the probe's lines (one per size, in order) -> the sweep's points. */
export function parseSweep(stdout: string, sizes: number[]): SweepPoint[] {
  const reports = stdout
    .split("\n")
    .filter((l) => l.trim().startsWith("{"))
    .map((l) => JSON.parse(l) as ProbeReport);
  return sizes.map((bufferSize, i) => {
    const r = reports[i];
    if (!r) return { bufferSize, ok: false, errno: "no result" };
    return { bufferSize, ok: r.ok, entries: typeof r.entries === "number" ? r.entries : undefined, errno: r.errno };
  });
}

/** Pure: the cell from the points. A short listing without an errno is SHORT, never a pass. */
export function judgeSweep(points: SweepPoint[], expected: number): Judgement {
  const evidence = { sweep: points };
  const bad = points.find((p) => !p.ok || p.entries !== expected);
  const good = points.filter((p) => p.ok && p.entries === expected).map((p) => p.bufferSize);
  const largestOk = good.length ? formatSize(Math.max(...good)) : "none";
  if (!bad)
    return {
      kind: "outcome",
      outcome: { kind: "pass", detail: `all ${points.length} sizes, up to ${largestOk}` },
      evidence,
    };
  const where = `at ${formatSize(bad.bufferSize)} (largest that worked: ${largestOk})`;
  if (!bad.ok && bad.errno && /^E[A-Z0-9]+$/.test(bad.errno))
    return {
      kind: "errno",
      errno: bad.errno,
      at: formatSize(bad.bufferSize),
      detail: `getdents64 ${bad.errno} ${where}`,
      evidence,
    };
  if (!bad.ok)
    return { kind: "outcome", outcome: { kind: "infra", reason: `probe gave no result ${where}` }, evidence };
  // Fewer entries without an errno is silent loss (SHORT), as in a single readdir.
  return { kind: "outcome", outcome: countOutcome(bad.entries ?? 0, expected, where), evidence };
}

export const getdentsSweep = defineWorkloadKind({
  name: "getdentsSweep",
  /** getdents64 on one directory with each buffer size in turn: where does it break? */
  schema: strict({
    share: shareName(),
    entries: entryCount(),
    bufferSizes: z.array(size()).min(1).prefault(["4K", "64K", "128K", "256K", "512K", "1M", "2M"]),
  }),
  toSpec: ({ share, entries, bufferSizes }) => ({ share, entries, bufferSizes }),
  prepareHost: (w, ctx) => createEntries(workloadDir(w, ctx.hostDir!), w.entries, "vmrig-readdir-probe"),
  guestCommand: (w, ctx) => {
    const dir = shellQuote(workloadDir(w, ctx.guestDir!));
    // `;` not `&&`: a failing size must not stop the sweep.
    return w.bufferSizes.map((b) => `${PROBE} getdents ${dir} ${b}`).join("; ") + "; true";
  },
  judge: (w, exec) => judgeSweep(parseSweep(exec.stdout, w.bufferSizes), w.entries),
});
