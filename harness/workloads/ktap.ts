// ktap: a guest command that prints KTAP or kselftest's TAP 13; each test case it reports is a
// cell of its own (`<id>/<test>`), so kernels are compared per test. The workload's own cell
// says whether the output was whole: a crash or hang of the command is that cell, as for any kind.
import { z } from "zod";
import type { CellOutcome, WorkloadSpec } from "../types.ts";
import { kselftestGuestPath, kselftestNames, type KselftestName } from "../image/kselftest.ts";
import { defineWorkloadKind, type Exited, type TestCaseCell } from "./kind.ts";
import { show, strict } from "./fields.ts";
import { isFailure, parseKtap, type KtapCase, type KtapReport } from "./ktap-parse.ts";

const kselftest = z.enum(kselftestNames as [KselftestName, ...KselftestName[]], {
  error: (issue) => `expected one of ${kselftestNames.join(", ")}, got ${show(issue.input)}`,
});

export const ktap = defineWorkloadKind({
  name: "ktap",
  schema: strict({ kselftest: kselftest.optional(), command: z.string().min(1).optional() }).refine(
    (k) => (k.kselftest === undefined) !== (k.command === undefined),
    { error: "give exactly one of kselftest (a selftest vmrig builds) or command (any KTAP producer)" },
  ),
  testCases: true,
  toSpec: ({ kselftest, command }) => (kselftest ? { kselftest } : { command: command! }),
  // Both streams in one, in order: kselftest_harness.h prints a failure's diagnostics on stderr.
  guestCommand: (w) => `${w.kselftest ? kselftestGuestPath(w.kselftest) : w.command} 2>&1`,
  judge(_w, exec) {
    const report = parseKtap(exec.stdout);
    const evidence = { exitCode: exec.code, ktap: exec.stdout.slice(-8000) };
    const testCases = report.cases.map(testCaseCell);
    return { kind: "outcome", outcome: wholeOutput(report, exec), evidence, testCases };
  },
});

/** The selftests a scenario's ktap workloads run: what its guest image must hold. */
export function scenarioKselftests(s: { workloads: readonly WorkloadSpec[] }): KselftestName[] {
  return s.workloads.flatMap((w) => (w.kind === "ktap" && w.kselftest ? [w.kselftest] : []));
}

/** PASS when the output is whole (a header, every planned result, no bail-out); the cases say the rest. */
export function wholeOutput(report: KtapReport, exec: Pick<Exited, "code">): CellOutcome {
  const exit = `exit ${exec.code}`;
  if (!report.version && report.cases.length === 0) return { kind: "fail", detail: `no KTAP output (${exit})` };
  if (report.bailOut !== undefined) return { kind: "fail", detail: `Bail out! ${report.bailOut}`.trim() };
  if (report.planned !== undefined && report.results < report.planned) {
    return { kind: "fail", detail: `${report.results} of ${report.planned} planned results (${exit})` };
  }
  const count = (f: (c: KtapCase) => boolean) => report.cases.filter(f).length;
  const skipped = count((c) => c.directive === "SKIP");
  const failed = count(isFailure);
  const passed = report.cases.length - skipped - failed;
  return { kind: "pass", detail: `${report.cases.length} tests: ${passed} pass, ${failed} fail, ${skipped} skip` };
}

export function testCaseCell(c: KtapCase): TestCaseCell {
  const evidence = { number: c.number, ...(c.directive ? { directive: c.directive } : {}), diagnostics: c.diagnostics };
  return { name: c.name, outcome: caseOutcome(c), evidence };
}

/** XFAIL and TODO are failures the test expects: they count as PASS, saying so. */
export function caseOutcome(c: KtapCase): CellOutcome {
  if (c.directive === "SKIP") return { kind: "skip", reason: c.reason || "skipped" };
  if (isFailure(c)) return { kind: "fail", detail: failureDetail(c) };
  if (c.directive) return { kind: "pass", detail: `${c.directive}${c.reason ? `: ${c.reason}` : ""}` };
  return { kind: "pass" };
}

/** kselftest_harness.h's progress lines ("RUN", "OK", "FAIL  name", "Starting 4 tests") say nothing a cell needs. */
const HARNESS_LINE =
  /^\s*(?:(?:RUN|OK|FAIL|SKIP|XFAIL|XPASS|PASSED|FAILED):?\s+\S|Starting \d+ tests\b)|: Test terminated by assertion$/;

function failureDetail(c: KtapCase): string {
  const said = c.diagnostics.filter((d) => d.trim() && !HARNESS_LINE.test(d)).map((d) => d.trim());
  const why = c.directive === "ERROR" ? `error${c.reason ? `: ${c.reason}` : ""}` : "";
  return [why, ...said].filter(Boolean).join("; ").slice(0, 300) || "not ok";
}
