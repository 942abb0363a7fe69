// KTAP test cases as cells: scenarios/kselftest-fs.yaml runs the kernel's own filesystem
// selftests (built from linux-source-7.3) on real Debian 6.12 and 7.3 guests, one boot each.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runScenarioFile } from "../../harness/run/run-file.ts";
import { silentProgress } from "../../harness/run/progress.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { ownGuestProcesses } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

const tmp = testScratch("vmrig-test-ktap-");

describe("kselftest KTAP cells (scenarios/kselftest-fs.yaml)", () => {
  it("compares Debian 6.12 and 7.3 per test case: FAIL, SKIP and PASS where the kernels differ", async () => {
    let table = "";
    const out = { write: (s: string) => ((table += s), true) } as unknown as NodeJS.WritableStream;
    const { result, runDir, exitCode } = await runScenarioFile(path.join(repoRoot, "scenarios/kselftest-fs.yaml"), {
      resultsRoot: tmp,
      progress: silentProgress,
      out,
    });
    expect(exitCode).toBe(0);
    const caseIds = [
      "anon-inode/global.anon_inode_no_chown",
      "anon-inode/global.anon_inode_no_chmod",
      "anon-inode/global.anon_inode_no_exec",
      "anon-inode/global.anon_inode_no_open",
      "emptypath/emptypath.without_flag_returns_enoent",
      "emptypath/emptypath.reopens_opath_fd",
      "nullfs-atime/global.empty_mntns_root_atime",
    ];
    expect(result.workloads).toEqual([
      "anon-inode",
      ...caseIds.slice(0, 4),
      "emptypath",
      ...caseIds.slice(4, 6),
      "nullfs-atime",
      caseIds[6],
    ]);
    const kinds = (label: string) => {
      const row = result.rows.find((r) => r.label === label)!;
      return Object.fromEntries(row.cells.map((c) => [c.workload, c.outcome.kind]));
    };
    expect(kinds("debian-6.12")).toEqual({
      "anon-inode": "pass",
      [caseIds[0]!]: "fail",
      [caseIds[1]!]: "fail",
      [caseIds[2]!]: "fail",
      [caseIds[3]!]: "pass",
      emptypath: "pass",
      [caseIds[4]!]: "pass",
      [caseIds[5]!]: "fail",
      "nullfs-atime": "pass",
      [caseIds[6]!]: "skip",
    });
    expect(Object.values(kinds("debian-7.3"))).toEqual(Array(10).fill("pass"));
    const old = result.rows[0]!.cells;
    expect(old.find((c) => c.workload === caseIds[0])).toMatchObject({
      partOf: "anon-inode",
      outcome: {
        detail: expect.stringMatching(/^filesystems\/anon_inode_test\.c:\d+:anon_inode_no_chown:Expected fchown/),
      },
    });
    expect(old.find((c) => c.workload === caseIds[6])!.outcome).toEqual({
      kind: "skip",
      reason: "UNSHARE_EMPTY_MNTNS not supported",
    });
    // The table, the Markdown and JUnit show a column per test case.
    expect(table).toContain("SKIP: UNSHARE_EMPTY_MNTNS not supported");
    expect(table).toContain("20 of 20 cells met their expectation");
    expect(readFileSync(path.join(runDir, "results.md"), "utf8")).toContain("anon-inode/global.anon_inode_no_exec");
    const junit = readFileSync(path.join(runDir, "junit.xml"), "utf8");
    expect(junit.match(/<testcase /g)).toHaveLength(20);
    expect(junit).toMatch(/name="nullfs-atime\/global.empty_mntns_root_atime"[^>]*>\s*<skipped/);
    expect(ownGuestProcesses()).toEqual([]);
  }, 900_000);
});
