// A run split over four "runners" (`vmrig run --shard K/4`, two at a time, each with its own
// results root as CI runners have, two of them with --jobs) and merged (`vmrig merge`) gives the unsharded run's table
// and results, timings aside; each row keeps its shard's host; a merge missing a shard is
// refused with exit 2 and writes nothing; no guest is left running.
//
// Guest time (2 cores, TCG): 4 boots serial, then 4 boots two at a time: about 1.5 min.
import { execa } from "execa";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { RunResult } from "../../harness/types.ts";
import type { ShardManifest } from "../../harness/run/shard/manifest.ts";
import { renderTerminalTable } from "../../harness/report/table.ts";
import { guestProcessesWithEnv } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

const root = path.resolve(import.meta.dirname, "..", "..");
const tmp = testScratch("vmrig-test-shard-");

const SCENARIO = `name: sharded
machine: { arch: x86_64, memory: 512M, cpus: 1 }
kernels:
  debian-6.12: { debian: { version: "6.12", flavour: cloud-amd64 } }
  debian-6.18.15: { debian: { version: "6.18.15", flavour: cloud-amd64 } }
  debian-7.3: { debian: { version: "7.3", flavour: cloud-amd64 } }
  debian-7.3-nosmt: { debian: { version: "7.3", flavour: cloud-amd64 }, cmdline: [nosmt] }
shares:
  - { tag: share }
workloads:
  - { id: getdents-64K, readdir: { share: share, entries: 500, bufferSize: 64K } }
  - { id: release, shell: { command: "uname -r", expectExit: 0 } }
expect: { default: PASS }
`;

const vmrig = (args: string[], results: string) =>
  execa(process.execPath, [path.join(root, "bin/vmrig.js"), ...args], {
    reject: false,
    cwd: tmp,
    env: { VMRIG_RESULTS: results, CI: "1" },
  });

/** The one run directory under a results root's scenario folder. */
function onlyRun(results: string): string {
  const dir = path.join(results, "sharded");
  const runs = readdirSync(dir).filter((d) => /^\d{4}-/.test(d));
  expect(runs).toHaveLength(1);
  return path.join(dir, runs[0]!);
}

const readRun = (dir: string) => JSON.parse(readFileSync(path.join(dir, "results.json"), "utf8")) as RunResult;

/** What must be equal: everything but timings, host facts and the merged run's shard fields. */
const comparable = (r: RunResult) => ({
  scenario: r.scenario,
  complete: r.complete,
  workloads: r.workloads,
  rows: r.rows.map((row) => ({
    label: row.label,
    description: row.description,
    accel: row.accel,
    arch: row.arch,
    pageSize: row.pageSize,
    artifacts: row.artifacts,
    kernel: row.evidence.kernel,
    image: row.evidence.image,
    cells: row.cells.map((c) => ({ workload: c.workload, outcome: c.outcome, expected: c.expected, met: c.met })),
  })),
});

describe("a run sharded over four runners and merged", () => {
  it("equals the unsharded run; a merge without every shard is refused", async () => {
    const file = path.join(tmp, "sharded.yaml");
    writeFileSync(file, SCENARIO);

    const wholeRoot = path.join(tmp, "whole");
    const whole = await vmrig(["run", file], wholeRoot);
    expect(whole.exitCode, whole.stderr.slice(-3000)).toBe(0);

    const shardRoot = (k: number) => path.join(tmp, `artifacts`, `shard-${k}`);
    for (const pair of [
      [1, 2],
      [3, 4],
    ]) {
      // Shards 3 and 4 go through the --jobs scheduler (vmrig nightly's way of running), 1 and 2 serially.
      const jobs = (k: number) => (k > 2 ? ["--jobs", "auto"] : []);
      const runs = await Promise.all(
        pair.map((k) => vmrig(["run", file, "--shard", `${k}/4`, ...jobs(k)], shardRoot(k))),
      );
      for (const r of runs) expect(r.exitCode, r.stderr.slice(-3000)).toBe(0);
      for (const [i, r] of runs.entries()) expect(r.stderr).toMatch(new RegExp(`shard ${pair[i]}/4: 1 of 4 rows`));
    }
    const manifests = [1, 2, 3, 4].map(
      (k) => JSON.parse(readFileSync(path.join(onlyRun(shardRoot(k)), "shard.json"), "utf8")) as ShardManifest,
    );
    // Equal costs, one row each; every shard computed the same partition.
    expect(manifests.map((m) => m.rows.filter((r) => r.shard === m.shard).length)).toEqual([1, 1, 1, 1]);
    expect(new Set(manifests.map((m) => JSON.stringify(m.rows))).size).toBe(1);
    expect(manifests[0]!.host?.hostname).toBeTruthy();

    // Three of four: refused naming the missing one, nothing written.
    const partial = path.join(tmp, "partial");
    const refused = await vmrig(["merge", shardRoot(1), shardRoot(2), shardRoot(4), "--results", partial], partial);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/missing shard 3\/4 of sharded \(rows sharded\/debian-7.3\)/);
    expect(existsSync(partial)).toBe(false);

    const mergedRoot = path.join(tmp, "merged");
    const merge = await vmrig(["merge", path.join(tmp, "artifacts"), "--results", mergedRoot], mergedRoot);
    expect(merge.exitCode, merge.stderr).toBe(0);
    const mergedDir = onlyRun(mergedRoot);
    const merged = readRun(mergedDir);
    const unsharded = readRun(onlyRun(wholeRoot));
    expect(comparable(merged)).toEqual(comparable(unsharded));
    expect(renderTerminalTable(merged, { color: false })).toBe(renderTerminalTable(unsharded, { color: false }));
    expect(merged.rows.map((r) => r.shard)).toEqual(
      merged.rows.map((r) => manifests[0]!.rows.find((m) => m.label === r.label)!.shard),
    );
    for (const row of merged.rows) expect(row.host).toMatchObject({ hostname: unsharded.host.hostname, accel: "tcg" });
    for (const f of ["results.md", "junit.xml", "report.html", "scenario.yaml"])
      expect(existsSync(path.join(mergedDir, f)), f).toBe(true);
    for (const row of merged.rows)
      expect(readFileSync(path.join(mergedDir, row.artifacts.console!), "utf8")).toMatch(/vmrig-guest: ready/);
    expect(existsSync(path.join(mergedRoot, "summary.md"))).toBe(true);
    expect(existsSync(path.join(mergedRoot, "index.html"))).toBe(true);
    for (const r of [wholeRoot, ...[1, 2, 3, 4].map(shardRoot)])
      expect(guestProcessesWithEnv("VMRIG_RESULTS", r)).toEqual([]);
  }, 900_000);
});
