// `--shard K/N` on the project's own scenario files: the partition is a function of the rows and
// their costs only (order given, runner, clock do not matter), balanced within LPT's bound,
// with pinned rows on their label's shard.
import { describe, expect, it } from "vitest";
import path from "node:path";
import { loadScenario } from "../../harness/scenario/load.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import {
  globMatches,
  imbalance,
  parsePins,
  parseShard,
  partition,
  shardLoads,
  type CostedRow,
} from "../../harness/run/shard/partition.ts";
import { measuredRowCost, quantize, rowCosts, staticRowCost } from "../../harness/run/shard/cost.ts";
import { planShard } from "../../harness/run/shard/manifest.ts";
import type { RunResult, Scenario } from "../../harness/types.ts";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import { execa } from "execa";
import { MATRIX_FILES } from "../../bench/shard.ts";

const load = (f: string) => loadScenario(path.join(repoRoot, "scenarios", f));
const matrix = async (): Promise<Scenario[]> => Promise.all(MATRIX_FILES.map(load));
const costed = (scenarios: Scenario[]): CostedRow[] =>
  rowCosts(
    scenarios.map((s) => ({ scenario: s, rows: s.kernels })),
    () => undefined,
  );
const shardOf = (placed: Array<{ key: string; shard: number }>) =>
  Object.fromEntries(placed.map((p) => [p.key, p.shard]));

/** Rotates and reverses: other orders of the same rows. */
const reorderings = <T>(xs: T[]): T[][] => [
  [...xs].reverse(),
  [...xs.slice(5), ...xs.slice(0, 5)],
  [...xs.slice(3).reverse(), ...xs.slice(0, 3)],
];

describe("parsing --shard and --shard-by", () => {
  it("takes K/N with 1 <= K <= N and refuses the rest naming the option", () => {
    expect(parseShard("2/4")).toEqual({ index: 2, count: 4 });
    expect(parseShard("1/1")).toEqual({ index: 1, count: 1 });
    for (const bad of ["0/4", "5/4", "2/0", "2", "a/b", "2/4/1", " 2/4"])
      expect(() => parseShard(bad)).toThrow(/--shard takes K\/N/);
  });

  it("takes LABEL=GLOB pairs in order; a glob matches whole scenario/kernel names", () => {
    expect(parsePins("kvm=*/vfio-*,arm64=overlay-readdir-pagesize/*arm64*")).toEqual([
      { label: "kvm", glob: "*/vfio-*" },
      { label: "arm64", glob: "overlay-readdir-pagesize/*arm64*" },
    ]);
    expect(() => parsePins("kvm")).toThrow(/--shard-by takes LABEL=GLOB/);
    expect(globMatches("*/debian-7.3", "smoke/debian-7.3")).toBe(true);
    expect(globMatches("*/debian-7.3", "smoke/debian-7.3-arm64")).toBe(false);
    expect(globMatches("smoke/debian-?.??", "smoke/debian-6.12")).toBe(true);
    // A dot is a dot, not any character.
    expect(globMatches("smoke/debian-7.3", "smoke/debian-703")).toBe(false);
  });
});

describe("static costs", () => {
  it("a built kernel and an arm64 row cost more than a Debian x86 row of the same scenario", async () => {
    const s = await load("overlay-readdir-pagesize.yaml");
    const cost = (label: string) =>
      staticRowCost(
        s,
        s.kernels.find((k) => k.label === label)!,
      );
    expect(cost("debian-7.3-arm64")).toBeGreaterThan(cost("debian-7.3-x86"));
    expect(cost("built-7.3-64k")).toBeGreaterThan(cost("debian-7.3-arm64"));
    const d = await load("dnotify-bad-inode.yaml");
    expect(staticRowCost(d, d.kernels[1]!)).toBeGreaterThan(staticRowCost(d, d.kernels[0]!));
  });

  it("a scenario that asks for KVM costs less than the same under TCG", async () => {
    const s = await load("smoke.yaml");
    const kvm: Scenario = { ...s, machine: { ...s.machine, accel: "kvm" } };
    expect(staticRowCost(kvm, s.kernels[0]!)).toBeLessThan(staticRowCost(s, s.kernels[0]!));
  });

  it("a row measured in an earlier run costs what it took (boot plus cells), rounded to two digits", () => {
    const run = JSON.parse(
      readFileSync(path.join(repoRoot, "test/fixtures/shard/getdents-swiotlb-debian/results.json"), "utf8"),
    ) as RunResult;
    const row = run.rows[0]!;
    const ms = row.bootMs! + row.cells.reduce((a, c) => a + c.durationMs, 0);
    expect(measuredRowCost(row)).toBe(quantize(ms / 1000));
    expect(quantize(12.345)).toBe(12);
    expect(quantize(1234)).toBe(1200);
  });
});

describe("partition", () => {
  it("is the same for every order the rows come in, and every shard gets rows", async () => {
    const rows = costed(await matrix());
    expect(rows).toHaveLength(16);
    for (const n of [2, 3, 4, 5]) {
      const base = shardOf(partition(rows, n));
      for (const other of reorderings(rows)) expect(shardOf(partition(other, n))).toEqual(base);
      expect(new Set(Object.values(base)).size).toBe(n);
    }
  });

  it("is stable: loaded again it is the same; jitter within rounding moves no row", async () => {
    const a = partition(costed(await matrix()), 4);
    const b = partition(costed(await matrix()), 4);
    expect(shardOf(b)).toEqual(shardOf(a));
    // A night 0.4 % slower or faster rounds to the same costs: no row moves.
    for (const f of [0.996, 1.004]) {
      const jittered = costed(await matrix()).map((r) => ({ ...r, cost: quantize(r.cost * f) }));
      expect(shardOf(partition(jittered, 4))).toEqual(shardOf(a));
    }
  });

  it("is within LPT's bound of the best possible: max load <= (4/3 - 1/3N) x max(mean, largest row)", async () => {
    const rows = costed(await matrix());
    for (const n of [2, 3, 4, 6, 8]) {
      const loads = shardLoads(partition(rows, n), n);
      const total = rows.reduce((a, r) => a + r.cost, 0);
      const lower = Math.max(total / n, ...rows.map((r) => r.cost));
      expect(Math.max(...loads)).toBeLessThanOrEqual((4 / 3 - 1 / (3 * n)) * lower + 1e-9);
      expect(loads.reduce((a, b) => a + b, 0)).toBeCloseTo(total);
    }
    // Four equal rows over two shards: two each, perfectly balanced.
    const equal = ["a", "b", "c", "d"].map((key) => ({ key, cost: 10 }));
    expect(imbalance(shardLoads(partition(equal, 2), 2))).toBe(1);
  });

  it("puts pinned rows on their label's shard (the last ones, in order) and no other row there", async () => {
    const rows = costed(await matrix());
    const pins = parsePins("arm64=overlay-readdir-pagesize/*arm64*,built=*/built-*");
    const placed = partition(rows, 5, pins);
    const on = (k: number) => placed.filter((p) => p.shard === k).map((p) => p.key);
    expect(on(4)).toEqual([
      "overlay-readdir-pagesize/debian-7.3-arm64",
      "overlay-readdir-pagesize/debian-7.3-arm64-16k",
    ]);
    // The first pin that matches wins: built-7.3-64k is not an "arm64" name.
    expect(on(5)).toEqual(["overlay-readdir-pagesize/built-7.3-64k", "overlay-readdir-pagesize/built-7.3-64k+cap"]);
    expect(placed.filter((p) => p.shard <= 3)).toHaveLength(12);
    expect(placed.filter((p) => p.pin).map((p) => p.pin)).toEqual(["arm64", "arm64", "built", "built"]);
  });

  it("refuses a pin that matches no row, and more labels than shards leave room for", async () => {
    const rows = costed(await matrix());
    expect(() => partition(rows, 4, parsePins("kvm=*/vfio-*"))).toThrow(
      /kvm=\*\/vfio-\* matches no row.*getdents-swiotlb-debian\/debian-7.3/s,
    );
    expect(() => partition(rows, 2, parsePins("a=smoke/*,b=default/*"))).toThrow(/2 label\(s\).*2 shards/);
  });
});

describe("planShard", () => {
  it("gives every shard the same manifest but its own rows; together they are every row once", async () => {
    const scenarios = (await matrix()).map((s) => ({ scenario: s, rows: s.kernels }));
    const plans = await Promise.all([1, 2, 3, 4].map((index) => planShard(scenarios, { index, count: 4 }, [])));
    const { shard: _s, ...common } = plans[0]!.manifest;
    for (const p of plans) expect({ ...p.manifest, shard: undefined }).toEqual({ ...common, shard: undefined });
    const all = plans.flatMap((p) =>
      scenarios.flatMap(({ scenario: s }) => p.rowsOf(s.name).map((l) => `${s.name}/${l}`)),
    );
    expect(all.sort()).toEqual(plans[0]!.manifest.rows.map((r) => r.key).sort());
    expect(plans[0]!.manifest.scenarios[0]).toMatchObject({
      name: "getdents-swiotlb-debian",
      file: "scenarios/default.yaml",
    });
    expect(plans[0]!.manifest.scenarios[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("--shard-history: a row measured in that run costs what it took there; the others keep the estimate", async () => {
    const scenarios = (await matrix()).map((s) => ({ scenario: s, rows: s.kernels }));
    const dir = path.join(repoRoot, "test/fixtures/shard/getdents-swiotlb-debian");
    const run = JSON.parse(readFileSync(path.join(dir, "results.json"), "utf8")) as RunResult;
    const plan = await planShard(scenarios, { index: 1, count: 4 }, [], dir);
    const rows = plan.manifest.rows;
    for (const label of ["debian-6.18.15", "debian-7.3"]) {
      const r = rows.find((x) => x.key === `getdents-swiotlb-debian/${label}`)!;
      expect(r).toMatchObject({
        from: "shard/getdents-swiotlb-debian",
        cost: measuredRowCost(run.rows.find((x) => x.label === label)!),
      });
    }
    expect(rows.filter((r) => r.from === "static")).toHaveLength(14);
    const none = await planShard(scenarios, { index: 1, count: 4 }, []);
    expect(none.manifest.rows.every((r) => r.from === "static")).toBe(true);
  });

  it("refuses two scenario files with one name", async () => {
    const s = await load("smoke.yaml");
    const rows = [
      { scenario: s, rows: s.kernels },
      { scenario: { ...s, file: "/elsewhere/smoke.yaml" }, rows: s.kernels },
    ];
    await expect(planShard(rows, { index: 1, count: 2 }, [])).rejects.toThrow(/two scenario files are named "smoke"/);
  });
});

describe("the CLI's --shard options", () => {
  const vmrig = (args: string[], results: string) =>
    execa("node", ["--import", "tsx", path.join(repoRoot, "harness/cli.ts"), ...args], {
      reject: false,
      env: { VMRIG_RESULTS: results },
    });
  const smoke = path.join(repoRoot, "scenarios/smoke.yaml");

  it("refuses a bad --shard, a lone --shard-by, a pin matching nothing: exit 2, nothing written", async () => {
    const results = path.join(os.tmpdir(), `vmrig-test-shard-cli-${process.pid}`);
    const cases: Array<[string[], RegExp]> = [
      [["--shard", "5/4"], /--shard takes K\/N with 1 <= K <= N \(e.g. 2\/4\), got "5\/4"/],
      [["--shard-by", "a=b"], /--shard-by needs --shard K\/N/],
      [["--shard", "1/2", "--shard-by", "kvm=*/vfio*"], /kvm=\*\/vfio\* matches no row.*smoke\/debian-6.12/],
    ];
    for (const [args, message] of cases) {
      const r = await vmrig(["run", smoke, ...args], results);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    // A shard the partition gives no row: said, exit 0, nothing booted or written.
    const empty = await vmrig(["run", smoke, "--shard", "3/3"], results);
    expect(empty.exitCode).toBe(0);
    expect(empty.stderr).toMatch(/shard 3\/3: 0 of 2 rows, 0 s of 40 s predicted/);
    expect(existsSync(results)).toBe(false);
  }, 120_000);
});
