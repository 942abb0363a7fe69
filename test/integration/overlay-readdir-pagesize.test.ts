// Seed 001 end to end: `vmrig run scenarios/overlay-readdir-pagesize.yaml` exactly as a user types
// it, the shipped file unchanged (5 rows x 4 workloads, 6000 entries): arm64 guests with 4K, 16K and
// 64K pages and the x86 contrast, all under TCG on this x86 host, with a debug-logging share. The
// cells docs/overlay-readdir.md prints are asserted from results.json and the printed table. Then
// what the file cannot show: a 4K kernel declared 64K is INFRA with the reason, and a sysrq crash
// on arm64 is told from ttyAMA0 (Debian's arm64 kernels have no pvpanic).
//
// Guest time here (2 cores, TCG, kernels cached): about 3 min for the file, 40 s for the rest. The
// 64K kernels share cache keys with the scenario (`vmrig kernel build`) and kernel-build.test.ts.
import { execa } from "execa";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { CellResult, KernelRowResult, RunResult } from "../../harness/types.ts";
import { runScenarioFile } from "../../harness/run/run-file.ts";
import { discardOutput, silentProgress } from "../../harness/run/progress.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { guestProcessesWithEnv, ownGuestProcesses } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

// Removed afterwards; a failed test's guest consoles are kept (the path is printed).
const tmp = testScratch("vmrig-test-overlay-");
const SCENARIO = path.join(repoRoot, "scenarios", "overlay-readdir-pagesize.yaml");
const ENTRIES = 6000;

/** The one run directory of `scenario` under a results root. */
function onlyRun(results: string, scenario: string): string {
  const runs = readdirSync(path.join(results, scenario)).filter((d) => /^\d{4}-/.test(d));
  expect(runs).toHaveLength(1);
  return path.join(results, scenario, runs[0]!);
}

const cellOf = (row: KernelRowResult, workload: string): CellResult => {
  const cell = row.cells.find((c) => c.workload === workload);
  expect(cell, `${row.label} / ${workload}`).toBeDefined();
  return cell!;
};

/** The row the README calls broken: both overlay listings fail, and virtiofsd's log says why. */
function expectRefused(row: KernelRowResult): void {
  const refusal = /^virtiofsd refused READDIRPLUS \(-12\) x \d+$/;
  const readdir = cellOf(row, "overlay-readdir");
  expect(readdir.outcome, row.label).toMatchObject({ kind: "errno", errno: "ENOMEM", mountHealthy: true });
  // busybox ls exits 0 having listed nothing: only the count against the host tells.
  expect(readdir.outcome, row.label).toMatchObject({ detail: expect.stringMatching(/busybox ls: exit 0, 0 entries/) });
  const ls = cellOf(row, "overlay-ls");
  expect(ls.outcome, row.label).toMatchObject({ kind: "short", seen: 0, expected: ENTRIES });
  for (const cell of [readdir, ls]) {
    expect(cell.notes, `${row.label} / ${cell.workload}`).toEqual([expect.stringMatching(refusal)]);
    expect(cell.evidence["virtiofsd-share"], `${row.label} / ${cell.workload}`).toMatchObject({
      refusals: [expect.objectContaining({ opcode: "READDIRPLUS", error: -12, errno: "ENOMEM" })],
    });
  }
}

/** A row where the merged directory lists every entry and virtiofsd refused no READDIRPLUS. */
function expectListed(row: KernelRowResult): void {
  const readdir = cellOf(row, "overlay-readdir");
  expect(readdir.outcome, row.label).toEqual({
    kind: "pass",
    detail: `${ENTRIES} entries; busybox ls: exit 0, ${ENTRIES} entries`,
  });
  expect(cellOf(row, "overlay-ls").outcome.kind, row.label).toBe("pass");
  for (const cell of [readdir, cellOf(row, "overlay-ls")]) {
    expect(cell.notes ?? [], `${row.label} / ${cell.workload}`).toEqual([]);
    const refused = (cell.evidence["virtiofsd-share"] as { refusals: Array<{ opcode: string }> }).refusals;
    expect(
      refused.map((r) => r.opcode),
      `${row.label} / ${cell.workload}`,
    ).not.toContain("READDIRPLUS");
  }
}

describe("seed 001: overlayfs over virtio-fs on arm64 guests with 4K, 16K and 64K pages (TCG)", () => {
  it(
    "vmrig run scenarios/overlay-readdir-pagesize.yaml: 16K and 64K fail with virtiofsd's refusal, 64K+cap, 4K and x86 pass; exit 0",
    async () => {
      const results = path.join(tmp, "results");
      const t0 = Date.now();
      const run = await execa(process.execPath, [path.join(repoRoot, "bin/vmrig.js"), "run", SCENARIO], {
        reject: false,
        cwd: tmp,
        env: { VMRIG_RESULTS: results, CI: "1" },
      });
      process.stderr.write(`overlay-readdir-pagesize.yaml: ${((Date.now() - t0) / 1000).toFixed(0)} s wall\n`);
      expect(run.exitCode, run.stderr.slice(-3000)).toBe(0);
      // Nothing of this run is left: its QEMUs and daemons inherited its VMRIG_RESULTS.
      expect(guestProcessesWithEnv("VMRIG_RESULTS", results)).toEqual([]);

      const dir = onlyRun(results, "overlay-readdir-pagesize");
      const result = JSON.parse(readFileSync(path.join(dir, "results.json"), "utf8")) as RunResult;
      expect(result.complete).toBe(true);
      expect(result.workloads).toEqual(["getdents-1M", "overlay-readdir", "overlay-ls", "read-1M"]);
      // Each row's page size is what its guest's kernel reported before any workload ran.
      expect(result.rows.map((r) => [r.label, r.arch, r.pageSize, r.evidence.pageSize])).toEqual([
        ["debian-7.3-arm64", "aarch64", "4K", 4096],
        ["debian-7.3-arm64-16k", "aarch64", "16K", 16384],
        ["built-7.3-64k", "aarch64", "64K", 65536],
        ["built-7.3-64k+cap", "aarch64", "64K", 65536],
        ["debian-7.3-x86", "x86_64", "4K", 4096],
      ]);
      const unmet = result.rows.flatMap((r) => r.cells.filter((c) => !c.met).map((c) => [r.label, c.workload]));
      expect(unmet).toEqual([]);
      expect(result.rows.flatMap((r) => r.cells)).toHaveLength(20);

      const [arm4k, arm16k, arm64k, arm64kCap, x86] = result.rows;
      for (const row of [arm16k!, arm64k!]) expectRefused(row);
      for (const row of [arm4k!, arm64kCap!, x86!]) expectListed(row);
      // The plain mount (getdents64 asks for 1 MiB at most) and reads pass everywhere.
      for (const row of result.rows) {
        expect(cellOf(row, "getdents-1M").outcome, row.label).toEqual({ kind: "pass", detail: `${ENTRIES} entries` });
        expect(cellOf(row, "read-1M").outcome, row.label).toEqual({ kind: "pass", detail: "16M verified" });
        expect(existsSync(path.join(dir, row.label, "virtiofsd-share.log")), row.label).toBe(true);
      }
      for (const row of [arm4k!, arm16k!, arm64k!, arm64kCap!]) {
        expect(row.accel, row.label).toBe("tcg");
        expect(readFileSync(path.join(dir, row.label, "qemu-cmdline.txt"), "utf8"), row.label).toMatch(
          /qemu-system-aarch64 .*console=ttyAMA0/,
        );
      }
      expect(readFileSync(path.join(dir, "debian-7.3-x86", "qemu-cmdline.txt"), "utf8")).toMatch(/qemu-system-x86_64 /);

      // The terminal table as printed: headings with the page size seen, the refusals as footnotes.
      expect(run.stdout).toMatch(
        /^debian-7\.3-arm64-16k \(aarch64, 16K pages\) .*│ -ENOMEM \(mount healthy\) \[1\] │/m,
      );
      expect(run.stdout).toMatch(/^built-7\.3-64k \(aarch64, 64K pages\) .*│ SHORT: saw 0 of 6000 \[4\] +│/m);
      expect(run.stdout).toMatch(/^built-7\.3-64k\+cap \(aarch64, 64K pages\) .*│ PASS +│ PASS +│ PASS +│ PASS *$/m);
      expect(run.stdout).toContain("[4] built-7.3-64k / overlay-ls: virtiofsd refused READDIRPLUS (-12) x 2");
      expect(run.stdout).toContain("20 of 20 cells met their expectation");
    },
    30 * 60_000,
  );

  it(
    "a 4K kernel declared 64K is INFRA with the reason; a sysrq crash on arm64 is told from ttyAMA0",
    async () => {
      const fragment = path.join(repoRoot, "kernels", "guest-arm64-64k.config");
      const file = path.join(tmp, "arm64-checks.yaml");
      writeFileSync(
        file,
        `name: arm64-checks
machine: { arch: aarch64, memory: 1G, cpus: 2 }
kernels:
  arm64t-debian-16k: { debian: { version: "7.3", flavour: arm64-16k }, pageSize: 16K }
  arm64t-built-64k:
    build: { source: "debian:linux-source-7.3", config: [${fragment}] }
    pageSize: 64K
  arm64t-debian-4k-says-64k:
    debian: { version: "7.3", flavour: arm64 }
    pageSize: 64K
    expect: { sysrq-crash: INFRA }
workloads:
  - { id: sysrq-crash, shell: { command: "echo c > /proc/sysrq-trigger" } }
expect:
  default: CRASH
`,
      );
      const { result, exitCode } = await runScenarioFile(file, {
        resultsRoot: path.join(tmp, "results-checks"),
        progress: silentProgress,
        out: discardOutput,
      });
      const [r16k, r64k, wrong] = result.rows;
      for (const row of [r16k!, r64k!]) {
        expect(row.cells[0]!.outcome, row.label).toMatchObject({
          kind: "crash",
          title: expect.stringMatching(/sysrq/i),
        });
      }
      expect(wrong!.evidence.pageSize).toBe(4096);
      expect(wrong!.cells[0]!.outcome).toEqual({
        kind: "infra",
        reason: "page size mismatch: the scenario says 64K, the running kernel has 4K (4096 bytes)",
      });
      expect(exitCode).toBe(0);
      expect(ownGuestProcesses()).toEqual([]);
    },
    20 * 60_000,
  );
});
