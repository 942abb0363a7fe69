// A workload's `search:` on real guests. scenarios/getdents-swiotlb-boundary.yaml finds, to one
// 4 KiB step, where getdents64 through the ACCESS_PLATFORM relay stops fitting swiotlb on
// Debian 6.18.15 (the sweep in getdents-swiotlb.test.ts only says 256K passes and 512K fails),
// in one guest. A guest parameter (machine.memory) boots a guest per probe.
import { describe, expect, it } from "vitest";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runScenarioFile } from "../../harness/run/run-file.ts";
import { silentProgress, discardOutput } from "../../harness/run/progress.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { ownGuestProcesses } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

// Removed afterwards; a failed test's guest consoles are kept (the path is printed).
const tmp = testScratch("vmrig-test-param-search-");
const K = 1024;

interface SearchRecord {
  valuesInRange: number;
  valuesProbed: number;
  from: number;
  to: number;
  granularity: number;
  finding: { kind: string; lastGood: number; firstBad: number };
  probes: Array<{ value: number; outcome: { kind: string; errno?: string }; durationMs: number; artifacts: string[] }>;
}

describe("search: on Debian 6.18.15 guests", () => {
  it("getdents-swiotlb-boundary.yaml: PASS up to 256K, -ENOMEM from 260K, <= 11 probes, one guest", async () => {
    const started = Date.now();
    const file = path.join(repoRoot, "scenarios/getdents-swiotlb-boundary.yaml");
    const { result, runDir, exitCode } = await runScenarioFile(file, {
      resultsRoot: tmp,
      progress: silentProgress,
      out: discardOutput,
    });
    const row = result.rows[0]!;
    const cell = row.cells[0]!;
    const search = cell.evidence.search as SearchRecord;
    const bound = Math.ceil(Math.log2((search.to - search.from) / search.granularity)) + 2;
    console.log(
      `search: ${search.valuesProbed} probes for ${search.valuesInRange} values (bound ${bound}); ` +
        `${cell.outcome.searchLabel}; ${row.accel}, ${((Date.now() - started) / 1000).toFixed(0)} s wall`,
    );

    expect(exitCode).toBe(0);
    expect(search.finding).toMatchObject({ kind: "flip", lastGood: 256 * K, firstBad: 260 * K });
    expect(cell.outcome).toMatchObject({ kind: "errno", errno: "ENOMEM", mountHealthy: true, at: "260K" });
    expect(cell.outcome.searchLabel).toMatch(/^PASS up to 256K, -ENOMEM from 260K \(\d+ probes\)$/);
    expect(search.valuesProbed).toBeLessThanOrEqual(bound);
    expect(search.probes).toHaveLength(search.valuesProbed);
    // The sweep's two points agree wherever the search probed them.
    for (const p of search.probes) {
      expect(p.outcome.kind, `at ${p.value / K}K`).toBe(p.value <= 256 * K ? "pass" : "errno");
      for (const a of p.artifacts) expect(existsSync(path.join(runDir, a)), a).toBe(true);
    }
    // The kernel's own word for the first bad value: one mapping of 260K does not fit swiotlb.
    const firstBad = search.probes.find((p) => p.value === 260 * K)!;
    expect(readFileSync(path.join(runDir, firstBad.artifacts[0]!), "utf8")).toContain(
      "swiotlb buffer is full (sz: 266240 bytes)",
    );
    // One boot: the guest stayed healthy from the first probe to the last.
    expect(Object.keys(row.artifacts).filter((k) => /-boot\d+$/.test(k))).toEqual([]);
    expect(row.evidence.bootRetry).toBeUndefined();
    for (const report of ["results.md", "junit.xml", "report.html"]) {
      expect(readFileSync(path.join(runDir, report), "utf8"), report).toContain(cell.outcome.searchLabel);
    }
    expect(ownGuestProcesses()).toEqual([]);
  }, 900_000);

  it("machine.memory: a boot per probe; MemTotal under 700000 kB flips between 640M and 768M", async () => {
    const file = path.join(tmp, "memory-search.yaml");
    writeFileSync(
      file,
      `name: memory-search
kernels:
  debian-6.18.15:
    debian: { version: "6.18.15", flavour: cloud-amd64 }
    expect: { small: FAIL }
workloads:
  - id: small
    shell: { command: "test $(awk '/MemTotal/ {print $2}' /proc/meminfo) -lt 700000" }
    search: { param: machine.memory, from: 512M, to: 1G, granularity: 128M }
`,
    );
    const started = Date.now();
    const { result, runDir, exitCode } = await runScenarioFile(file, {
      resultsRoot: tmp,
      progress: silentProgress,
      out: discardOutput,
    });
    const row = result.rows[0]!;
    const cell = row.cells[0]!;
    const search = cell.evidence.search as SearchRecord;
    console.log(
      `memory search: ${search.valuesProbed} boots for ${search.valuesInRange} values; ` +
        `${cell.outcome.searchLabel}; ${((Date.now() - started) / 1000).toFixed(0)} s wall`,
    );
    expect(exitCode).toBe(0);
    expect(cell.outcome.searchLabel).toMatch(/^PASS up to 640M, FAIL from 768M \(\d probes\)$/);
    expect(search.valuesProbed).toBeLessThanOrEqual(4);
    // Each probe booted its own guest with the value: its QEMU command line says so.
    for (const p of search.probes) {
      const cmdline = p.artifacts.find((a) => a.endsWith("qemu-cmdline.txt"))!;
      expect(readFileSync(path.join(runDir, cmdline), "utf8")).toContain(`-m ${p.value / 1024 / 1024}M`);
    }
    expect(ownGuestProcesses()).toEqual([]);
  }, 900_000);

  it("cmdline:maxcpus: a boot per probe with the word last on the command line; nproc flips at 2", async () => {
    const file = path.join(tmp, "cmdline-search.yaml");
    writeFileSync(
      file,
      `name: cmdline-search
machine: { cpus: 2 }
kernels:
  debian-6.18.15:
    debian: { version: "6.18.15", flavour: cloud-amd64 }
    expect: { one-cpu: FAIL }
workloads:
  - id: one-cpu
    shell: { command: "test $(nproc) -lt 2" }
    search: { param: "cmdline:maxcpus", from: 1, to: 2, granularity: 1 }
`,
    );
    const { result, runDir, exitCode } = await runScenarioFile(file, {
      resultsRoot: tmp,
      progress: silentProgress,
      out: discardOutput,
    });
    const cell = result.rows[0]!.cells[0]!;
    const search = cell.evidence.search as SearchRecord;
    expect(exitCode).toBe(0);
    expect(cell.outcome.searchLabel).toBe("PASS up to 1, FAIL from 2 (2 probes)");
    for (const p of search.probes) {
      const cmdline = p.artifacts.find((a) => a.endsWith("qemu-cmdline.txt"))!;
      expect(readFileSync(path.join(runDir, cmdline), "utf8")).toMatch(new RegExp(`maxcpus=${p.value}["' ]`));
    }
    expect(ownGuestProcesses()).toEqual([]);
  }, 600_000);
});
