// Compare two runs cell by cell (kernel label x workload id), and a run against its history.
// Pure: RunRecords in, classes out.
//
//   regression     met its expectation in A, not in B          (a new failure)
//   fix            did not in A, does in B                     (a new pass)
//   still-failing  did not in either
//   flaky          the outcome changed although no input did (same kernel binary, image,
//                  QEMU, virtiofsd, host, cell spec), or it differed across repeats of one
//                  run, or across the recent runs with these very inputs
//   pass           met in both
//   infra          B could not test it (INFRA, NOT RUN): says nothing about the kernel
//   new / removed  the cell exists in only one of the runs (or A had no verdict for it)
//
// Every class carries the inputs that changed between A and B (the kernel and its identity,
// versions, the cell's spec, the expectation), so "regression" comes with its suspect.
import type { CellOutcome, CellResult, KernelRowResult } from "../types.ts";
import { cellLabel } from "../classify/labels.ts";
import type { RunRecord } from "./history.ts";
import { cellInputs, inputChanges, sameOutcomeInputs, type CellInputs, type InputChange } from "./inputs.ts";

export const CELL_CLASSES = ["regression", "fix", "flaky", "still-failing", "infra", "new", "removed", "pass"] as const;
export type CellClass = (typeof CELL_CLASSES)[number];

/** What a cell was, in a form that compares across runs: kind, errno, crash signature. */
export function outcomeKey(o: CellOutcome): string {
  switch (o.kind) {
    case "pass":
      return "PASS";
    case "errno":
      return `-${o.errno.replace(/^-/, "")}${o.at ? ` at ${o.at}` : ""}${o.mountHealthy === false ? " wedged" : ""}`;
    case "fail":
      return "FAIL";
    case "short":
      return `SHORT ${o.seen}/${o.expected}`;
    case "hang":
      return o.wedged ? "HANG wedged" : "HANG";
    case "crash":
      return `CRASH ${o.signature ?? o.title}`;
    case "boot-fail":
      return "BOOT-FAIL";
    case "infra":
      return "INFRA";
    case "skip":
      return "SKIP";
    case "not-run":
      return "NOT-RUN";
  }
}

const noVerdict = (o: CellOutcome) => o.kind === "infra" || o.kind === "not-run";

export interface CellSide {
  run: string;
  label: string;
  key: string;
  met: boolean;
  /** Outcome keys of every repeat of the cell in this run (one unless the run repeats cells). */
  repeats: string[];
}

export interface CellComparison {
  kernel: string;
  workload: string;
  cls: CellClass;
  a?: CellSide;
  b?: CellSide;
  changes: InputChange[];
  /** Why a cell is flaky, or what else a reader should know. */
  note?: string;
}

export interface RunRef {
  id: string;
  dir: string;
  startedAt: string;
  complete: boolean;
}

export interface Comparison {
  a: RunRef;
  b: RunRef;
  scenario: string;
  cells: CellComparison[];
  counts: Record<CellClass, number>;
}

const ref = (r: RunRecord): RunRef => ({
  id: r.id,
  dir: r.dir,
  startedAt: r.result.startedAt,
  complete: r.result.complete,
});

function side(run: RunRecord, row: KernelRowResult, workload: string): CellSide | undefined {
  const cells = row.cells.filter((c) => c.workload === workload);
  if (!cells.length) return undefined;
  const first = cells[0] as CellResult;
  return {
    run: run.id,
    label: cellLabel(first.outcome),
    key: outcomeKey(first.outcome),
    met: cells.every((c) => c.met),
    repeats: cells.map((c) => outcomeKey(c.outcome)),
  };
}

const distinct = (xs: string[]) => [...new Set(xs)];

/** Pure: classify one cell from its two sides and what changed between them. */
export function classifyCell(
  a: CellSide | undefined,
  b: CellSide | undefined,
  changes: InputChange[],
): { cls: CellClass; note?: string } {
  if (!b) return { cls: "removed" };
  const repeatsDiffer = (s: CellSide) => distinct(s.repeats.filter((k) => k !== "INFRA" && k !== "NOT-RUN")).length > 1;
  if (repeatsDiffer(b))
    return {
      cls: "flaky",
      note: `differed across ${b.repeats.length} repeats in this run: ${distinct(b.repeats).join(", ")}`,
    };
  if (b.key === "INFRA" || b.key === "NOT-RUN") return { cls: "infra", note: "could not be tested in this run" };
  if (!a || a.key === "INFRA" || a.key === "NOT-RUN")
    return { cls: "new", note: a ? `no verdict in the earlier run (${a.label})` : "not in the earlier run" };
  if (a.key !== b.key && sameOutcomeInputs(changes)) {
    return { cls: "flaky", note: `outcome changed (${a.label} -> ${b.label}) with no input change` };
  }
  if (a.met && !b.met) return { cls: "regression" };
  if (!a.met && b.met) return { cls: "fix" };
  if (!a.met && !b.met) return { cls: "still-failing" };
  return { cls: "pass" };
}

function emptyCounts(): Record<CellClass, number> {
  return Object.fromEntries(CELL_CLASSES.map((c) => [c, 0])) as Record<CellClass, number>;
}

/** Every (kernel, workload) pair of either run, in B's order then A's leftovers. */
function cellKeys(a: RunRecord, b: RunRecord): Array<[string, string]> {
  const seen = new Set<string>();
  const out: Array<[string, string]> = [];
  for (const r of [b, a]) {
    for (const row of r.result.rows) {
      const ws = [...r.result.workloads, ...row.cells.map((c) => c.workload)];
      for (const w of ws) {
        const k = `${row.label}\0${w}`;
        if (seen.has(k)) continue;
        seen.add(k);
        out.push([row.label, w]);
      }
    }
  }
  return out;
}

export function compareRuns(a: RunRecord, b: RunRecord): Comparison {
  const counts = emptyCounts();
  const cells: CellComparison[] = [];
  for (const [kernel, workload] of cellKeys(a, b)) {
    const ra = a.result.rows.find((r) => r.label === kernel);
    const rb = b.result.rows.find((r) => r.label === kernel);
    const sa = ra && side(a, ra, workload);
    const sb = rb && side(b, rb, workload);
    if (!sa && !sb) continue;
    const changes = ra && rb ? inputChanges(cellInputs(a, ra, workload), cellInputs(b, rb, workload)) : [];
    const { cls, note } = classifyCell(sa, sb, changes);
    counts[cls]++;
    cells.push({ kernel, workload, cls, a: sa, b: sb, changes, note });
  }
  return { a: ref(a), b: ref(b), scenario: b.result.scenario, cells, counts };
}

export interface HistoryPoint {
  run: string;
  startedAt: string;
  key?: string;
  label?: string;
  met?: boolean;
  durationMs?: number;
  inputs?: CellInputs;
}

/** One cell across runs, oldest first (a point without `key` means the cell was not in that run). */
export function cellHistory(history: RunRecord[], kernel: string, workload: string): HistoryPoint[] {
  return history.map((r) => {
    const row = r.result.rows.find((x) => x.label === kernel);
    const c = row?.cells.find((x) => x.workload === workload);
    if (!row || !c) return { run: r.id, startedAt: r.result.startedAt };
    return {
      run: r.id,
      startedAt: r.result.startedAt,
      key: outcomeKey(c.outcome),
      label: cellLabel(c.outcome),
      met: c.met,
      durationMs: c.durationMs,
      inputs: cellInputs(r, row, workload),
    };
  });
}

/**
 * Pure: did the cell give different verdicts over recent runs whose inputs equal the newest
 * run's? Infrastructure errors are not verdicts. Returns a note, or undefined when steady.
 */
export function flakyOverHistory(points: HistoryPoint[], window: number): string | undefined {
  const recent = points.slice(-window).filter((p) => p.key && p.inputs);
  const last = recent.at(-1);
  if (!last) return undefined;
  const same = recent.filter((p) => sameOutcomeInputs(inputChanges(p.inputs!, last.inputs!)) && !noVerdictKey(p.key!));
  const keys = distinct(same.map((p) => p.key!));
  if (keys.length < 2) return undefined;
  const tally = keys.map((k) => `${same.find((p) => p.key === k)!.label} x${same.filter((p) => p.key === k).length}`);
  return (
    `${keys.length} different outcomes over the last ${same.length} runs with the same inputs: ` + tally.join(", ")
  );
}

const noVerdictKey = (k: string) => k === "INFRA" || k === "NOT-RUN";

/**
 * The nightly view of a run: compared with its baseline (or the run before), and a cell whose
 * verdict wavered over the last `window` runs with unchanged inputs is flaky whatever the pair
 * says (a regression with a changed kernel stays a regression: its inputs differ).
 */
export function compareWithHistory(base: RunRecord, run: RunRecord, history: RunRecord[], window = 7): Comparison {
  const c = compareRuns(base, run);
  const upTo = history.filter((h) => h.result.startedAt <= run.result.startedAt);
  if (!upTo.some((h) => h.dir === run.dir)) upTo.push(run);
  for (const cell of c.cells) {
    if (!["pass", "still-failing", "regression", "fix"].includes(cell.cls)) continue;
    const note = flakyOverHistory(cellHistory(upTo.slice(-window), cell.kernel, cell.workload), window);
    if (!note) continue;
    c.counts[cell.cls]--;
    c.counts.flaky++;
    cell.cls = "flaky";
    cell.note = note;
  }
  return c;
}

export { noVerdict };
