// What a row's heading says besides its label (the guest's architecture and page size, so a
// table that mixes 4K, 16K and 64K guests, or arm64 and x86, says so on every row), and the
// notes cells carry from witnesses outside the guest (virtiofsd's refusals), numbered as
// footnotes for the terminal table.
import type { BootPhase, KernelRowResult, RunResult } from "../types.ts";

/** "aarch64, 16K pages", or undefined when the row records neither. */
export function rowPlatform(row: Pick<KernelRowResult, "arch" | "pageSize">): string | undefined {
  const parts = [row.arch, row.pageSize ? `${row.pageSize} pages` : undefined].filter(Boolean);
  return parts.length ? parts.join(", ") : undefined;
}

/**
 * "label (aarch64, 16K pages) — description": the platform right after the label, so
 * truncation eats the description first.
 */
export function rowHeading(row: KernelRowResult): string {
  const platform = rowPlatform(row);
  const head = platform ? `${row.label} (${platform})` : row.label;
  return row.description ? `${head} — ${row.description}` : head;
}

export interface Footnote {
  n: number;
  kernel: string;
  workload: string;
  text: string;
}

/** Every cell's notes, numbered in table order; `marker(kernel, workload)` gives " [n]" or "". */
export function footnotes(run: RunResult): { notes: Footnote[]; marker: (kernel: string, workload: string) => string } {
  const notes: Footnote[] = [];
  for (const row of run.rows) {
    for (const w of run.workloads) {
      const c = row.cells.find((x) => x.workload === w);
      if (c?.notes?.length)
        notes.push({ n: notes.length + 1, kernel: row.label, workload: w, text: c.notes.join("; ") });
    }
  }
  return {
    notes,
    marker: (kernel, workload) => {
      const f = notes.find((x) => x.kernel === kernel && x.workload === workload);
      return f ? ` [${f.n}]` : "";
    },
  };
}

/** "kernel 0.4 s, init 5.0 s (+4.6), sshd 5.2 s (+0.2), ..." */
export function formatBootPhases(phases: readonly BootPhase[]): string {
  let prev = 0;
  return phases
    .map((p) => {
      const step = p.ms - prev;
      prev = p.ms;
      return `${p.phase} ${(p.ms / 1000).toFixed(2)} s (+${(step / 1000).toFixed(2)})`;
    })
    .join(", ");
}

/** A merged run's rows, each with the shard and host it ran on ("debian-7.3: shard 2, runner-b, QEMU 10.0.2, tcg"). */
export function shardLines(run: RunResult): string[] {
  if (!run.shards) return [];
  return run.rows.map((row) => {
    const h = row.host;
    const facts = h ? [h.hostname, h.qemu && `QEMU ${h.qemu}`, h.accel, h.cpu].filter(Boolean).join(", ") : "";
    return `${row.label}: shard ${row.shard ?? "?"}${facts ? `, ${facts}` : ""}`;
  });
}
