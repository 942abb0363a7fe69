// junit.xml for CI dashboards: a testsuite per kernel, a testcase per cell. A cell that missed
// its expectation is a <failure>, except INFRA and BOOT-FAIL, which are <error>: CI systems
// (like KernelCI's "incomplete") keep "could not test" apart from "tested and failed".
import path from "node:path";
import junitModule, { type Builder, type TestSuite } from "junit-report-builder";
import type { CellResult, KernelRowResult, RunResult } from "../types.ts";
import { describeExpectation } from "../classify/expect.ts";
import { cellDetail, cellLabel } from "../classify/labels.ts";
import { isTestCaseId } from "./summary.ts";

// The package is CommonJS whose module.exports is the builder; TypeScript (NodeNext) types the
// default import as the module object instead, so take whichever is the builder.
const junit = ((junitModule as unknown as { default?: Builder }).default ?? junitModule) as unknown as Builder;

/**
 * Where the run's files are, as CI should find them ("results/x/<stamp>"), or undefined.
 * With it, each artifact is also an [[ATTACHMENT|path]] line: Jenkins' JUnit attachments plugin
 * and GitLab's test reports link such lines next to the test case.
 */
type AttachmentBase = string | undefined;

function artifactLines(row: KernelRowResult, base: AttachmentBase, workload?: string): string[] {
  // A workload's stack dump belongs to its own test case, not to every cell of the row.
  const mine = Object.entries(row.artifacts).filter(
    ([name]) => !name.startsWith("stacks-") || name === `stacks-${workload}`,
  );
  return [
    ...mine.map(([name, rel]) => `${name}: ${rel}`),
    ...(base ? mine.map(([, rel]) => `[[ATTACHMENT|${path.posix.join(base, rel)}]]`) : []),
  ];
}

function addCell(
  suite: TestSuite,
  run: RunResult,
  row: KernelRowResult,
  w: string,
  c: CellResult | undefined,
  base: AttachmentBase,
): void {
  const tc = suite.testCase().className(`${run.scenario}.${row.label}`).name(w);
  const out = [`kernel: ${row.label}${row.description ? ` (${row.description})` : ""}`];
  if (!c) {
    tc.skipped().standardOutput(
      [...out, "not run: the run stopped before this cell", ...artifactLines(row, base, w)].join("\n"),
    );
    return;
  }
  tc.time(c.durationMs / 1000);
  const label = cellLabel(c.outcome);
  out.push(`outcome: ${label}`, `expected: ${describeExpectation(c.expected)}`, ...artifactLines(row, base, w));
  const detail = cellDetail(c.outcome);
  if (c.outcome.kind !== "crash" && detail) out.push(`detail: ${detail}`);
  tc.standardOutput(out.join("\n"));
  if (c.outcome.kind === "crash") tc.standardError(c.outcome.excerpt);
  if (c.met && c.outcome.kind === "skip") tc.skipped();
  if (c.met) return;
  // A crash's signature (title + normalised frames) is what CI dashboards group failures by.
  const signature = c.outcome.kind === "crash" && c.outcome.signature ? ` [${c.outcome.signature}]` : "";
  const message = `${label}${signature} (expected ${describeExpectation(c.expected)})`;
  if (c.outcome.kind === "not-run") tc.skipped();
  else if (c.outcome.kind === "infra" || c.outcome.kind === "boot-fail")
    tc.error(message, c.outcome.kind.toUpperCase());
  else tc.failure(message, c.outcome.kind.toUpperCase());
}

export function renderJUnit(run: RunResult, opts: { attachmentBase?: string } = {}): string {
  const b = junit.newBuilder().name(`vmrig ${run.scenario}`);
  for (const row of run.rows) {
    const suite = b.testSuite().name(`${run.scenario}: ${row.label}`).timestamp(run.startedAt);
    suite.property("description", row.description);
    if (row.accel) suite.property("accel", row.accel);
    if (row.bootMs !== undefined) suite.property("bootMs", String(row.bootMs));
    for (const w of run.workloads.filter((id) => !isTestCaseId(id) || row.cells.some((c) => c.workload === id)))
      addCell(
        suite,
        run,
        row,
        w,
        row.cells.find((c) => c.workload === w),
        opts.attachmentBase,
      );
  }
  return b.build();
}
