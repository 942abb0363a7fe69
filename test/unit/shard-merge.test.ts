// `vmrig merge` on a real run (scenarios/default.yaml, captured from `vmrig run`) cut into the
// shards `--shard K/2` gives it: merged, it is the run again; every kind of bad set of shards is
// refused naming which, before anything is written.
import { describe, expect, it } from "vitest";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { loadScenario } from "../../harness/scenario/load.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { planShard, SHARD_FILE, type ShardManifest } from "../../harness/run/shard/manifest.ts";
import {
  checkShards,
  commonHost,
  mergedColumns,
  mergeScenario,
  shardProblems,
  type ShardRun,
} from "../../harness/run/shard/merge.ts";
import { mergeShards } from "../../harness/run/shard/merge-dirs.ts";
import { renderMarkdown } from "../../harness/report/markdown.ts";
import { renderTerminalTable } from "../../harness/report/table.ts";
import { discardOutput } from "../../harness/run/progress.ts";
import type { RunResult } from "../../harness/types.ts";
import { testScratch } from "../helpers/scratch.ts";

const tmp = testScratch("vmrig-test-shard-merge-");
const fixture = path.join(repoRoot, "test/fixtures/shard/getdents-swiotlb-debian/results.json");
const scenarioFile = path.join(repoRoot, "scenarios/default.yaml");
const whole = () => JSON.parse(readFileSync(fixture, "utf8")) as RunResult;

/** The real run as its N shards would have written it: each shard's rows, its manifest, its host. */
async function shardsOf(count: number, host: (k: number) => RunResult["host"] = () => whole().host) {
  const s = await loadScenario(scenarioFile);
  const out: ShardRun[] = [];
  for (let index = 1; index <= count; index++) {
    const plan = await planShard([{ scenario: s, rows: s.kernels }], { index, count }, []);
    const mine = plan.rowsOf(s.name);
    if (!mine.length) continue;
    const result = { ...whole(), host: host(index), rows: whole().rows.filter((r) => mine.includes(r.label)) };
    out.push({ dir: `/artifacts/shard-${index}`, manifest: { ...plan.manifest, host: result.host }, result });
  }
  return out;
}

const strip = (r: RunResult) => ({
  ...r,
  shards: undefined,
  rows: r.rows.map((row) => ({ ...row, host: undefined, shard: undefined })),
});

describe("merging shards", () => {
  it("two shards of the real run merge back into it: rows in the scenario's order, each with its host", async () => {
    const shards = await shardsOf(2);
    expect(shards.map((s) => s.result.rows.map((r) => r.label))).toEqual([["debian-6.18.15"], ["debian-7.3"]]);
    const merged = mergeScenario([...shards].reverse());
    expect(strip(merged)).toEqual(strip(whole()));
    expect(merged.rows.map((r) => r.shard)).toEqual([1, 2]);
    expect(merged.rows[0]!.host).toEqual(whole().host);
    expect(merged.shards).toEqual({ count: 2, dirs: ["/artifacts/shard-1", "/artifacts/shard-2"] });
    expect(renderTerminalTable(merged, { color: false })).toBe(renderTerminalTable(whole(), { color: false }));
    // The same report, plus the line that says which shard and host ran each row.
    const md = renderMarkdown(merged).split("\n");
    const shardLine = md.findIndex((l) => l.startsWith("- Merged from"));
    expect(md[shardLine]).toBe(
      "- Merged from 2 shards: debian-6.18.15: shard 1, vm, QEMU 10.0.2, tcg; " +
        "debian-7.3: shard 2, vm, QEMU 10.0.2, tcg",
    );
    expect(md.filter((_, i) => i !== shardLine)).toEqual(renderMarkdown(whole()).split("\n"));
  });

  it("keeps each runner's host facts per row; the run's host says every value once", async () => {
    const hosts = (k: number) =>
      ({ ...whole().host, hostname: `runner-${k}`, accel: k === 1 ? "kvm" : "tcg" }) as const;
    const merged = mergeScenario(await shardsOf(2, hosts));
    expect(merged.rows.map((r) => [r.host?.hostname, r.host?.accel])).toEqual([
      ["runner-1", "kvm"],
      ["runner-2", "tcg"],
    ]);
    expect(merged.host.hostname).toBe("runner-1, runner-2");
    expect(
      commonHost([
        { hostname: "a", qemu: "10.0.2" },
        { hostname: "a", qemu: "10.0.2" },
      ]),
    ).toEqual({
      hostname: "a",
      qemu: "10.0.2",
    });
  });

  it("puts test-case columns after their workload, in the order rows reported them", () => {
    const rows = [
      { cells: [{ partOf: "fs", workload: "fs/b" }] },
      {
        cells: [
          { partOf: "fs", workload: "fs/a" },
          { partOf: "fs", workload: "fs/b" },
        ],
      },
    ] as unknown as RunResult["rows"];
    expect(mergedColumns(["fs", "read"], rows)).toEqual(["fs", "fs/b", "fs/a", "read"]);
  });
});

describe("merge refuses", () => {
  const expectRefused = (shards: ShardRun[], pattern: RegExp) => {
    expect(shardProblems(shards).join("\n")).toMatch(pattern);
    expect(() => checkShards(shards)).toThrow(/^merge refused:/);
  };
  const edit = (s: ShardRun, m: Partial<ShardManifest>): ShardRun => ({ ...s, manifest: { ...s.manifest, ...m } });

  it("a missing shard, naming it, its rows and what was given", async () => {
    const [one] = await shardsOf(2);
    expectRefused(
      [one!],
      /missing shard 2\/2 of getdents-swiotlb-debian \(rows getdents-swiotlb-debian\/debian-7.3\); given: 1\/2/,
    );
  });

  it("a shard given twice (overlap), naming both directories", async () => {
    const [one, two] = await shardsOf(2);
    expectRefused(
      [one!, two!, { ...one!, dir: "/elsewhere/shard-1" }],
      /shard 1\/2 of .* given twice: \/artifacts\/shard-1 and \/elsewhere\/shard-1/,
    );
  });

  it("a shard holding another shard's rows", async () => {
    const [one, two] = await shardsOf(2);
    const greedy = { ...one!, result: { ...one!.result, rows: whole().rows } };
    expectRefused([greedy, two!], /shard 1\/2 \(\/artifacts\/shard-1\) holds rows of other shards: .*debian-7.3/);
  });

  it("different scenario files, with both hashes", async () => {
    const [one, two] = await shardsOf(2);
    const sc = [{ ...two!.manifest.scenarios[0]!, sha256: "f".repeat(64) }];
    expectRefused(
      [one!, edit(two!, { scenarios: sc })],
      /different scenario files: shard 2\/2 .* ran getdents-swiotlb-debian@ffffffffffff, shard 1\/2/,
    );
  });

  it("different vmrig versions", async () => {
    const [one, two] = await shardsOf(2);
    expectRefused(
      [one!, edit(two!, { vmrig: "0.0.9" })],
      /shard 2\/2 \(\/artifacts\/shard-2\) ran vmrig 0.0.9, shard 1\/2 .* vmrig 0.1.0/,
    );
  });

  it("shards of different partitions (another N)", async () => {
    const [one] = await shardsOf(2);
    const [, b] = await shardsOf(3);
    expectRefused([one!, b!], /were cut from different partitions/);
  });
});

describe("merge on disk", () => {
  async function writeShards(root: string, shards: ShardRun[]) {
    for (const s of shards) {
      const dir = path.join(root, `shard-${s.manifest.shard}`, "results", s.result.scenario, "2026-12-02T23-04-40Z");
      mkdirSync(path.join(dir, s.result.rows[0]!.label), { recursive: true });
      writeFileSync(path.join(dir, s.result.rows[0]!.label, "console.log"), `console of shard ${s.manifest.shard}\n`);
      writeFileSync(path.join(dir, "results.json"), JSON.stringify(s.result));
      writeFileSync(path.join(dir, SHARD_FILE), JSON.stringify(s.manifest));
      writeFileSync(path.join(dir, "scenario.yaml"), readFileSync(scenarioFile));
    }
  }

  it("writes one run with every report and the rows' files, from the folders CI downloads", async () => {
    const root = path.join(tmp, "ok");
    await writeShards(root, await shardsOf(2));
    const out = path.join(root, "merged");
    const merged = await mergeShards([path.join(root, "shard-1"), path.join(root, "shard-2")], out, {
      out: discardOutput,
      log: () => undefined,
    });
    expect(merged).toHaveLength(1);
    const { runDir, exitCode } = merged[0]!;
    expect(exitCode).toBe(0);
    expect(path.relative(out, runDir)).toBe(path.join("getdents-swiotlb-debian", "2026-12-02T23-04-40Z"));
    for (const f of ["results.json", "results.md", "junit.xml", "report.html", "scenario.yaml"])
      expect(existsSync(path.join(runDir, f)), f).toBe(true);
    expect(readFileSync(path.join(runDir, "debian-7.3", "console.log"), "utf8")).toBe("console of shard 2\n");
    expect(existsSync(path.join(out, "index.html"))).toBe(true);
  });

  it("writes nothing when refused", async () => {
    const root = path.join(tmp, "refused");
    const [one] = await shardsOf(2);
    await writeShards(root, [one!]);
    const out = path.join(root, "merged");
    await expect(mergeShards([root], out, { out: discardOutput, log: () => undefined })).rejects.toThrow(
      /missing shard 2\/2/,
    );
    expect(existsSync(out)).toBe(false);
    await expect(mergeShards([path.join(root, "nope")], out, { log: () => undefined })).rejects.toThrow(
      /nope: no such directory/,
    );
    mkdirSync(path.join(root, "plain"));
    await expect(mergeShards([path.join(root, "plain")], out, { log: () => undefined })).rejects.toThrow(
      /plain holds no shard run directory \(no shard.json: was it run with --shard\?\)/,
    );
  });
});
