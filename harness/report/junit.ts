// junit.xml for CI dashboards: a testsuite per kernel, a testcase per cell. A cell that missed
// its expectation is a <failure>, except INFRA and BOOT-FAIL, which are <error>: CI systems
// (like KernelCI's "incomplete") keep "could not test" apart from "tested and failed".
import junitModule, { type Builder, type TestSuite } from "junit-report-builder";
import type { CellResult, KernelRowResult, RunResult } from "../types.ts";
import { describeExpectation } from "./expect.ts";
import { cellDetail, cellLabel } from "./labels.ts";

// The package is CommonJS whose module.exports is the builder; TypeScript (NodeNext) types the
// default import as the module object instead, so take whichever is the builder.
const junit = ((junitModule as unknown as { default?: Builder }).default ?? junitModule) as unknown as Builder;

function artifactLines(row: KernelRowResult): string[] {
  return Object.entries(row.artifacts).map(([name, rel]) => `${name}: ${rel}`);
}

function addCell(suite: TestSuite, run: RunResult, row: KernelRowResult, w: string, c: CellResult | undefined): void {
  const tc = suite.testCase().className(`${run.scenario}.${row.label}`).name(w);
  const out = [`kernel: ${row.label}${row.description ? ` (${row.description})` : ""}`];
  if (!c) {
    tc.skipped().standardOutput([...out, "not run: the run stopped before this cell", ...artifactLines(row)].join("\n"));
    return;
  }
  tc.time(c.durationMs / 1000);
  const label = cellLabel(c.outcome);
  out.push(`outcome: ${label}`, `expected: ${describeExpectation(c.expected)}`, ...artifactLines(row));
  const detail = cellDetail(c.outcome);
  if (c.outcome.kind !== "crash" && detail) out.push(`detail: ${detail}`);
  tc.standardOutput(out.join("\n"));
  if (c.outcome.kind === "crash") tc.standardError(c.outcome.excerpt);
  if (c.met) return;
  // A crash's signature (title + normalised frames) is what CI dashboards group failures by.
  const signature = c.outcome.kind === "crash" && c.outcome.signature ? ` [${c.outcome.signature}]` : "";
  const message = `${label}${signature} (expected ${describeExpectation(c.expected)})`;
  if (c.outcome.kind === "not-run") tc.skipped();
  else if (c.outcome.kind === "infra" || c.outcome.kind === "boot-fail") tc.error(message, c.outcome.kind.toUpperCase());
  else tc.failure(message, c.outcome.kind.toUpperCase());
}

export function renderJUnit(run: RunResult): string {
  const b = junit.newBuilder().name(`vmrig ${run.scenario}`);
  for (const row of run.rows) {
    const suite = b.testSuite().name(`${run.scenario}: ${row.label}`).timestamp(run.startedAt);
    suite.property("description", row.description);
    if (row.accel) suite.property("accel", row.accel);
    if (row.bootMs !== undefined) suite.property("bootMs", String(row.bootMs));
    for (const w of run.workloads) addCell(suite, run, row, w, row.cells.find((c) => c.workload === w));
  }
  return b.build();
}
