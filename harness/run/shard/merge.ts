// `vmrig merge DIR...`: the run directories of a partition's shards into one run per scenario,
// as if one host had run every row. Pure checks and merging first (every refusal before
// anything is written), then the adapter that finds shards, links their artifacts and writes.
import type { HostFacts, KernelRowResult, RunResult } from "../../types.ts";
import { VmrigError } from "../../util/errors.ts";
import { addTestCaseColumn } from "../runner.ts";
import type { ShardManifest } from "./manifest.ts";

export interface ShardRun {
  dir: string;
  manifest: ShardManifest;
  result: RunResult;
}

const tag = (s: ShardRun) => `shard ${s.manifest.shard}/${s.manifest.of} (${s.dir})`;
const scenariosOf = (m: ShardManifest) => m.scenarios.map((s) => `${s.name}@${s.sha256.slice(0, 12)}`).join(", ");
const partitionOf = (m: ShardManifest) => m.rows.map((r) => `${r.key}:${r.shard}`).join(",");

/** One message per problem, or none: versions, scenario files, partitions, overlaps, missing shards. */
export function shardProblems(shards: ShardRun[]): string[] {
  if (!shards.length) return ["no shard run directories (with shard.json) were found"];
  const [first] = shards as [ShardRun];
  const problems: string[] = [];
  for (const s of shards.slice(1)) {
    if (s.manifest.vmrig !== first.manifest.vmrig)
      problems.push(`${tag(s)} ran vmrig ${s.manifest.vmrig}, ${tag(first)} vmrig ${first.manifest.vmrig}`);
    if (scenariosOf(s.manifest) !== scenariosOf(first.manifest))
      problems.push(
        `different scenario files: ${tag(s)} ran ${scenariosOf(s.manifest)}, ` +
          `${tag(first)} ran ${scenariosOf(first.manifest)}`,
      );
    else if (s.manifest.of !== first.manifest.of || partitionOf(s.manifest) !== partitionOf(first.manifest))
      problems.push(
        `${tag(s)} and ${tag(first)} were cut from different partitions ` +
          `(another --shard N, --shard-by or --shard-history)`,
      );
  }
  if (problems.length) return problems;
  return [...overlaps(shards), ...missing(shards)];
}

/** A shard given twice for one scenario, or a shard whose results hold rows that are not its own. */
function overlaps(shards: ShardRun[]): string[] {
  const out: string[] = [];
  const seen = new Map<string, ShardRun>();
  for (const s of shards) {
    const k = `${s.result.scenario}\0${s.manifest.shard}`;
    const other = seen.get(k);
    if (other)
      out.push(
        `shard ${s.manifest.shard}/${s.manifest.of} of ${s.result.scenario} given twice: ${other.dir} and ${s.dir}`,
      );
    seen.set(k, s);
    const own = s.manifest.rows.filter((r) => r.scenario === s.result.scenario && r.shard === s.manifest.shard);
    const foreign = s.result.rows.filter((row) => !own.some((r) => r.label === row.label));
    if (foreign.length)
      out.push(
        `${tag(s)} holds rows of other shards: ${foreign.map((r) => `${s.result.scenario}/${r.label}`).join(", ")}`,
      );
  }
  return out;
}

/** Every shard that has rows of a scenario must be there; the message names each and its rows. */
function missing(shards: ShardRun[]): string[] {
  const m = shards[0]!.manifest;
  const out: string[] = [];
  for (const sc of m.scenarios) {
    const wanted = [...new Set(m.rows.filter((r) => r.scenario === sc.name).map((r) => r.shard))];
    const have = shards.filter((s) => s.result.scenario === sc.name).map((s) => s.manifest.shard);
    for (const k of wanted.filter((w) => !have.includes(w))) {
      const rows = m.rows.filter((r) => r.scenario === sc.name && r.shard === k).map((r) => r.key);
      out.push(
        `missing shard ${k}/${m.of} of ${sc.name} (rows ${rows.join(", ")}); ` +
          `given: ${have.length ? have.map((h) => `${h}/${m.of}`).join(", ") : "none"}`,
      );
    }
  }
  return out;
}

/** Throws one usage error listing every problem. */
export function checkShards(shards: ShardRun[]): void {
  const problems = shardProblems(shards);
  if (problems.length) throw new VmrigError(`merge refused:\n  ${problems.join("\n  ")}`);
}

/** Facts every shard agrees on; where they differ, each value once, in shard order. */
export function commonHost(hosts: HostFacts[]): HostFacts {
  const keys = ["hostname", "qemu", "virtiofsd", "accel", "accelNote", "cpu"] as const;
  const out: Record<string, string> = {};
  for (const k of keys) {
    const values = [...new Set(hosts.map((h) => h[k]).filter((v): v is string => v !== undefined))];
    if (values.length) out[k] = values.join(", ");
  }
  return out as unknown as HostFacts;
}

/** One scenario's shards (checked) as one run: rows in the scenario's order, each with its shard's host. */
export function mergeScenario(shards: ShardRun[]): RunResult {
  const [first] = shards as [ShardRun];
  const name = first.result.scenario;
  const order = first.manifest.rows.filter((r) => r.scenario === name);
  const rowOf = new Map<string, { row: KernelRowResult; s: ShardRun }>();
  for (const s of shards) for (const row of s.result.rows) rowOf.set(row.label, { row, s });
  const rows = order.flatMap((r) => {
    const got = rowOf.get(r.label);
    return got ? [{ ...got.row, host: got.s.result.host, shard: got.s.manifest.shard }] : [];
  });
  const byShard = [...shards].sort((a, b) => a.manifest.shard - b.manifest.shard);
  const started = shards.map((s) => s.result.startedAt).sort();
  const finished = shards.map((s) => s.result.finishedAt);
  const vfio = shards.find((s) => s.result.vfio)?.result.vfio;
  return {
    scenario: name,
    scenarioFile: first.result.scenarioFile,
    startedAt: started[0]!,
    ...(finished.every(Boolean) ? { finishedAt: finished.sort().at(-1)! } : {}),
    complete: shards.every((s) => s.result.complete) && rows.length === order.length,
    host: commonHost(byShard.map((s) => s.result.host)),
    shards: { count: first.manifest.of, dirs: byShard.map((s) => s.dir) },
    workloads: mergedColumns(
      first.result.workloads.filter((w) => !w.includes("/")),
      rows,
    ),
    rows,
    ...(vfio ? { vfio } : {}),
  };
}

/** The scenario's workloads, each followed by its test cases in the order rows reported them. */
export function mergedColumns(workloads: string[], rows: KernelRowResult[]): string[] {
  const columns = [...workloads];
  for (const row of rows) for (const c of row.cells) if (c.partOf) addTestCaseColumn(columns, c.partOf, c.workload);
  return columns;
}
