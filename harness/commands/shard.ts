// `vmrig run ... --shard K/N [--shard-by LABEL=GLOB,...] [--shard-history DIR]` and
// `vmrig merge DIR... [--results OUT]`: one run over many CI runners (docs/sharding.md).
import { parseArgs } from "node:util";
import path from "node:path";
import type { Scenario } from "../types.ts";
import { ExitCode, VmrigError } from "../util/errors.ts";
import { resultsRoot } from "../util/paths.ts";
import { wholeNumber } from "../util/cli-values.ts";
import { selectKernels } from "../run/run-file.ts";
import { parsePins, parseShard, shardLoads } from "../run/shard/partition.ts";
import { planShard, type ShardPlan } from "../run/shard/manifest.ts";
import { mergeShards } from "../run/shard/merge-dirs.ts";
import { writeNightlySummary } from "./nightly.ts";

export const shardUsage =
  "  run ... --shard K/N [--shard-by LABEL=GLOB,...] [--shard-history DIR]\n" +
  "                                                run shard K of N of the (scenario, kernel) rows; pinned rows\n" +
  "                                                (GLOB on scenario/kernel) go to LABEL's shard, the last ones\n" +
  "  merge DIR... [--results OUT] [--baseline]     merge the shards' run directories into one run per scenario";

export interface ShardArgs {
  shard?: string;
  "shard-by"?: string;
  "shard-history"?: string;
  kernel?: string[];
}

/** This shard's plan over every scenario of the command, or undefined without --shard. */
export async function shardPlanFor(scenarios: Scenario[], args: ShardArgs): Promise<ShardPlan | undefined> {
  if (args.shard === undefined) {
    const stray = (["shard-by", "shard-history"] as const).filter((k) => args[k] !== undefined);
    if (stray.length) throw new VmrigError(`--${stray.join(" and --")} needs --shard K/N`);
    return undefined;
  }
  const spec = parseShard(args.shard);
  const rows = scenarios.map((s) => ({ scenario: s, rows: selectKernels(s, args.kernel) }));
  const history = args["shard-history"] ? path.resolve(args["shard-history"]) : undefined;
  return planShard(rows, spec, parsePins(args["shard-by"]), history);
}

/** "shard 2/4: 3 of 12 rows, 95 s of 380 s predicted (a, b, c)" */
export function describeShard(plan: ShardPlan): string {
  const m = plan.manifest;
  const mine = m.rows.filter((r) => r.shard === m.shard);
  const loads = shardLoads(m.rows, m.of);
  const total = loads.reduce((a, b) => a + b, 0);
  return (
    `shard ${m.shard}/${m.of}: ${mine.length} of ${m.rows.length} rows, ` +
    `${Math.round(loads[m.shard - 1]!)} s of ${Math.round(total)} s predicted` +
    (mine.length ? ` (${mine.map((r) => r.key).join(", ")})` : "")
  );
}

export async function mergeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { results: { type: "string" }, baseline: { type: "boolean" }, window: { type: "string" } },
  });
  if (!positionals.length) throw new VmrigError(`usage: vmrig merge DIR... [--results OUT]\n${shardUsage}`);
  const window = wholeNumber("window", values.window, 7, 2);
  const root = path.resolve(values.results ?? resultsRoot());
  const log = (l: string) => process.stderr.write(`vmrig: ${l}\n`);
  const merged = await mergeShards(positionals, root, { log });
  await writeNightlySummary(root, { baseline: values.baseline, window });
  process.stdout.write(`summary: ${path.relative(process.cwd(), path.join(root, "summary.md"))}\n`);
  return merged.reduce((worst, m) => Math.max(worst, m.exitCode), ExitCode.ok as number);
}
