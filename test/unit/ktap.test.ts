// The KTAP / kselftest TAP reader and the ktap kind's cells, on real output: KUnit's and
// kselftest's samples from the kernel tree (tools/testing/kunit/test_data, Linux 7.3) and the
// selftests vmrig runs, captured from Debian guests (test/fixtures/ktap/guest-*.txt).
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseKtap } from "../../harness/workloads/ktap-parse.ts";
import { caseOutcome, ktap, wholeOutput } from "../../harness/workloads/ktap.ts";
import { parseScenario } from "../../harness/scenario/load.ts";
import { SpecError } from "../../harness/util/errors.ts";
import { addTestCaseColumn } from "../../harness/run/runner.ts";
import { renderJUnit, renderMarkdown, renderTerminalTable } from "../../harness/report/index.ts";
import { summarise } from "../../harness/report/summary.ts";
import type { CellOutcome, CellResult, RunResult } from "../../harness/types.ts";

const fixture = (name: string) => readFileSync(path.join(import.meta.dirname, "../fixtures/ktap", name), "utf8");
const names = (text: string) => parseKtap(text).cases.map((c) => c.name);
const outcomes = (text: string) => Object.fromEntries(parseKtap(text).cases.map((c) => [c.name, caseOutcome(c).kind]));

describe("parseKtap on the kernel tree's samples", () => {
  it("names nested KUnit cases after their suite, with SKIP as a skip", () => {
    const text = fixture("kunit-test_skip_tests.log");
    expect(names(text)).toEqual([
      "string-stream-test/string_stream_test_empty_on_creation",
      "string-stream-test/string_stream_test_not_empty_after_add",
      "string-stream-test/string_stream_test_get_string",
      "example/example_simple_test",
      "example/example_skip_test",
    ]);
    const skip = parseKtap(text).cases[4]!;
    expect(caseOutcome(skip)).toEqual({ kind: "skip", reason: "this test should be skipped" });
    expect(parseKtap(text)).toMatchObject({ version: "TAP version 14", planned: 2, results: 2 });
  });

  it("gives a failed case its diagnostics; a suite's failure is its failing case, not a cell of its own", () => {
    const r = parseKtap(fixture("kunit-test_is_test_passed-failure.log"));
    const failed = r.cases.filter((c) => caseOutcome(c).kind === "fail");
    expect(failed.map((c) => c.name)).toEqual(["example/example_simple_test"]);
    expect(caseOutcome(failed[0]!)).toEqual({
      kind: "fail",
      detail: expect.stringContaining("EXPECTATION FAILED at lib/kunit/example-test.c:30"),
    });
    expect(r.cases).toHaveLength(10);
  });

  it("keeps a failed suite whose subtests all passed, and reads two-space KTAP v1 nesting", () => {
    expect(outcomes(fixture("kunit-test_is_test_passed-failure-nested.log"))).toEqual({
      "subtest 1/test 1": "pass",
      "subtest 1": "fail",
      "subtest 2/subsubtest 1": "fail",
    });
    expect(names(fixture("kunit-test_parse_ktap_output.log"))).toEqual([
      "suite/case_1",
      "suite/case_2",
      "suite/case_3",
    ]);
  });

  it("reads the kernel log's timestamps away and ignores the lines printed between results", () => {
    const r = parseKtap(fixture("kunit-test_interrupted_tap_output.log"));
    expect(r.version).toBe("TAP version 14");
    expect(r.cases.map((c) => c.name)).toContain("kunit-resource-test/kunit_resource_test_cleanup_resources");
  });

  it("kselftest's runner: a program's own TAP is diagnostics of its line; kselftest.h puts SKIP first", () => {
    const r = parseKtap(fixture("kunit-test_is_test_passed-kselftest.log"));
    expect(r.cases.map((c) => [c.name, caseOutcome(c).kind])).toEqual([
      ["selftests: membarrier: membarrier_test_single_thread", "pass"],
      ["selftests: membarrier: membarrier_test_multi_thread #2", "pass"],
      ["selftests: membarrier: membarrier_test_multi_thread #3", "skip"],
    ]);
    expect(r.cases[0]!.diagnostics).toContain("ok 1 sys_membarrier available");
  });
});

describe("kselftests captured from Debian guests", () => {
  it("anon_inode_test: 6.12 lets fchown, fchmod and execveat through on an fsopen fd; 7.3 refuses them", () => {
    expect(outcomes(fixture("guest-debian-6.12-anon_inode_test.txt"))).toEqual({
      "global.anon_inode_no_chown": "fail",
      "global.anon_inode_no_chmod": "fail",
      "global.anon_inode_no_exec": "fail",
      "global.anon_inode_no_open": "pass",
    });
    const seven = parseKtap(fixture("guest-debian-7.3-anon_inode_test.txt"));
    expect(seven.cases.map((c) => caseOutcome(c).kind)).toEqual(["pass", "pass", "pass", "pass"]);
    expect(seven.totals).toBe("Totals: pass:4 fail:0 xfail:0 xpass:0 skip:0 error:0");
  });

  it("a failure's detail is the assertion, without kselftest_harness.h's progress lines", () => {
    const [chown] = parseKtap(fixture("guest-debian-6.12-anon_inode_test.txt")).cases;
    const detail = caseOutcome(chown!).kind === "fail" ? (caseOutcome(chown!) as { detail: string }).detail : "";
    expect(detail).toMatch(
      /anon_inode_test\.c:19:anon_inode_no_chown:Expected fchown\(fd_context, 1234, 5678\) \(0\) < 0 \(0\)$/,
    );
    expect(detail).not.toMatch(/Starting|RUN|terminated/);
  });

  it("nullfs_atime_test skips on 6.12 (no UNSHARE_EMPTY_MNTNS) and passes on 7.3", () => {
    const [old] = parseKtap(fixture("guest-debian-6.12-nullfs_atime_test.txt")).cases;
    expect(caseOutcome(old!)).toEqual({ kind: "skip", reason: "UNSHARE_EMPTY_MNTNS not supported" });
    expect(outcomes(fixture("guest-debian-7.3-nullfs_atime_test.txt"))).toEqual({
      "global.empty_mntns_root_atime": "pass",
    });
  });

  it("emptypath_test and xattr_sockfs_test: every planned result, names alike on both kernels", () => {
    for (const test of ["emptypath_test", "xattr_sockfs_test"]) {
      const [old, now] = ["6.12", "7.3"].map((k) => parseKtap(fixture(`guest-debian-${k}-${test}.txt`)));
      expect(old!.results).toBe(old!.planned);
      expect(old!.cases.map((c) => c.name)).toEqual(now!.cases.map((c) => c.name));
    }
    expect(outcomes(fixture("guest-debian-6.12-emptypath_test.txt"))).toEqual({
      "emptypath.without_flag_returns_enoent": "pass",
      "emptypath.reopens_opath_fd": "fail",
    });
  });
});

describe("the ktap kind's own cell", () => {
  const exited = (stdout: string, code = 0) => ({ kind: "exited" as const, code, stdout, stderr: "", ms: 5 });

  it("is PASS with counts when the output is whole, whatever the cases say", () => {
    const r = parseKtap(fixture("kunit-test_is_test_passed-failure.log"));
    expect(wholeOutput(r, { code: 1 })).toEqual({ kind: "pass", detail: "10 tests: 9 pass, 1 fail, 0 skip" });
  });

  it("is FAIL when results are missing, the producer bailed out, or there is no KTAP at all", () => {
    const cut = fixture("kunit-test_skip_tests.log").split("\n").slice(0, 9).join("\n");
    expect(wholeOutput(parseKtap(cut), { code: 139 })).toEqual({
      kind: "fail",
      detail: "1 of 2 planned results (exit 139)",
    });
    expect(wholeOutput(parseKtap("TAP version 13\n1..3\nBail out! no /proc\n"), { code: 1 })).toMatchObject({
      kind: "fail",
      detail: "Bail out! no /proc",
    });
    expect(wholeOutput(parseKtap("sh: not found\n"), { code: 127 })).toEqual({
      kind: "fail",
      detail: "no KTAP output (exit 127)",
    });
  });

  it("judges a run into the workload's cell and a cell per case", async () => {
    const spec = { id: "t", kind: "ktap" as const, command: "true" };
    const j = await ktap.judge(spec, exited(fixture("kunit-test_skip_tests.log")), {}, {});
    expect(j).toMatchObject({ kind: "outcome", outcome: { kind: "pass" } });
    const cases = j.kind === "outcome" ? j.testCases! : [];
    expect(cases.map((c) => c.outcome.kind)).toEqual(["pass", "pass", "pass", "pass", "skip"]);
  });
});

describe("a ktap workload in a scenario", () => {
  const file = (workload: string, expect = "") => `name: t
kernels:
  k: { debian: { version: "6.1" }${expect} }
workloads:
  - { id: fs, ${workload} }
`;

  it("runs a selftest vmrig builds, or any command; expect may name a test case", () => {
    const s = parseScenario(
      file("ktap: { kselftest: filesystems/anon_inode_test }", `, expect: { fs/global.x: [FAIL, SKIP] }`),
      "s.yaml",
    );
    expect(s.workloads[0]).toEqual({ id: "fs", kind: "ktap", kselftest: "filesystems/anon_inode_test" });
    expect(s.kernels[0]!.expect["fs/global.x"]).toEqual(["FAIL", "SKIP"]);
    expect(ktap.guestCommand(s.workloads[0] as never, {})).toBe(
      "/usr/lib/vmrig-kselftest/filesystems/anon_inode_test 2>&1",
    );
  });

  it("refuses an unknown selftest, both or neither field, and expect on a case of a kind without cases", () => {
    const problem = (text: string) => {
      try {
        parseScenario(text, "s.yaml");
      } catch (e) {
        return (e as SpecError).message;
      }
      return "loaded";
    };
    expect(problem(file("ktap: { kselftest: net/foo }"))).toMatch(/s\.yaml:5:\d+ .*expected one of filesystems/);
    expect(problem(file("ktap: { kselftest: filesystems/anon_inode_test, command: x }"))).toMatch(/exactly one of/);
    expect(problem(file("ktap: {}"))).toMatch(/exactly one of/);
    expect(problem(file("shell: { command: x }", ", expect: { fs/y: FAIL }"))).toMatch(/unknown workload "fs\/y"/);
  });
});

describe("test-case columns", () => {
  it("go after their workload's columns, in the order first reported", () => {
    const cols = ["a", "fs", "b"];
    addTestCaseColumn(cols, "fs", "fs/x");
    addTestCaseColumn(cols, "fs", "fs/y");
    addTestCaseColumn(cols, "fs", "fs/x");
    expect(cols).toEqual(["a", "fs", "fs/x", "fs/y", "b"]);
  });
});

describe("reports with test-case columns", () => {
  const cell = (kernel: string, workload: string, outcome: CellOutcome): CellResult => ({
    kernel,
    workload,
    outcome,
    expected: ["PASS", "SKIP"],
    met: outcome.kind !== "fail",
    durationMs: 0,
    evidence: {},
  });
  const run: RunResult = {
    scenario: "t",
    scenarioFile: "t.yaml",
    startedAt: "2026-12-02T18:40:18Z",
    complete: true,
    host: { hostname: "h" },
    workloads: ["fs", "fs/a", "fs/b"],
    rows: [
      { label: "old", description: "", artifacts: {}, evidence: {}, cells: [cell("old", "fs", { kind: "pass" })] },
      {
        label: "new",
        description: "",
        artifacts: {},
        evidence: {},
        cells: [
          cell("new", "fs", { kind: "pass" }),
          cell("new", "fs/a", { kind: "skip", reason: "no feature" }),
          cell("new", "fs/b", { kind: "pass" }),
        ],
      },
    ],
  };

  it("a case a row did not report is NOT REPORTED, not a missing cell; JUnit leaves it out and skips a SKIP", () => {
    expect(summarise(run)).toMatchObject({ cells: 4, met: 4, missing: 0, exitCode: 0 });
    const table = renderTerminalTable(run, { color: false });
    expect(table.split("\n")[2]).toMatch(/^old.*│ PASS +│ NOT REPORTED +│ NOT REPORTED$/);
    expect(table.split("\n")[3]).toMatch(/│ SKIP: no feature │ PASS$/);
    expect(renderMarkdown(run)).toContain("| NOT REPORTED | NOT REPORTED |");
    const junit = renderJUnit(run);
    expect(junit.match(/<testcase /g)).toHaveLength(4);
    expect(junit).toMatch(/name="fs\/a"[^>]*>\s*<skipped/);
  });
});
