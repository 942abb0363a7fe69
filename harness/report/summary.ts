// Counts and the exit code of a run: 0 only when the run is complete and every cell met its
// expectation.
import type { CellOutcome, RunResult } from "../types.ts";
import { ExitCode } from "../util/errors.ts";

export interface RunSummary {
  cells: number;
  met: number;
  notMet: number;
  /** Cells per outcome kind. */
  byKind: Record<CellOutcome["kind"], number>;
  /** Kernel × workload pairs the run never produced a cell for (an interrupted run). */
  missing: number;
  /** Cells that did not run: NOT RUN cells and missing ones. */
  notRun: number;
  complete: boolean;
  exitCode: number;
}

/** `<workload>/<test>`: a test case from a workload's KTAP output (a workload id never holds a slash). */
export const isTestCaseId = (id: string): boolean => id.includes("/");

/** What a report shows for a column the row has no cell for. */
export const missingCellLabel = (id: string): string => (isTestCaseId(id) ? "NOT REPORTED" : "NOT RUN");

export function summarise(run: RunResult): RunSummary {
  const byKind: RunSummary["byKind"] = {
    pass: 0,
    errno: 0,
    fail: 0,
    skip: 0,
    short: 0,
    hang: 0,
    crash: 0,
    "boot-fail": 0,
    infra: 0,
    "not-run": 0,
  };
  let cells = 0;
  let met = 0;
  let missing = 0;
  for (const row of run.rows) {
    for (const c of row.cells) {
      cells++;
      byKind[c.outcome.kind]++;
      if (c.met) met++;
    }
    // A test case a row's KTAP output did not report is not a cell that failed to run.
    missing += run.workloads.filter((w) => !isTestCaseId(w) && !row.cells.some((c) => c.workload === w)).length;
  }
  const allMet = run.complete && missing === 0 && met === cells && cells > 0;
  return {
    cells,
    met,
    notMet: cells - met,
    byKind,
    missing,
    notRun: missing + byKind["not-run"],
    complete: run.complete,
    exitCode: allMet ? ExitCode.ok : ExitCode.expectationFailed,
  };
}
