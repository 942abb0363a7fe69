// A shard's manifest, shard.json beside its results.json: which shard of how many it was, the
// whole partition (every row of the run and the shard that has it), the vmrig version and the
// scenario files' hashes, and the host that ran it. `vmrig merge` checks shards against it.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { KernelEntry, RunResult, Scenario } from "../../types.ts";
import { repoRoot } from "../../util/paths.ts";
import { VmrigError } from "../../util/errors.ts";
import { listRuns, loadRun, type RunRecord } from "../../history/history.ts";
import { partition, type ShardPin, type ShardSpec } from "./partition.ts";
import { rowCosts } from "./cost.ts";

export const SHARD_FILE = "shard.json";
export const MANIFEST_FORMAT = 1;

export interface ShardRow {
  key: string;
  scenario: string;
  label: string;
  shard: number;
  cost: number;
  /** "static", or the run the cost was measured in. */
  from: string;
  pin?: string;
}

export interface ShardManifest {
  format: number;
  vmrig: string;
  shard: number;
  of: number;
  pins: ShardPin[];
  scenarios: Array<{ name: string; file: string; sha256: string }>;
  /** Every row of the run, in scenario then row order. */
  rows: ShardRow[];
  /** The host that ran this shard (results.json's host), written with the run directory. */
  host?: RunResult["host"];
}

let version: string | undefined;
export function vmrigVersion(): string {
  version ??= (JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string }).version;
  return version;
}

export const sha256 = (text: string | Buffer) => createHash("sha256").update(text).digest("hex");

export interface ShardPlan {
  manifest: ShardManifest;
  /** The labels this shard runs of a scenario (empty: it runs none of its rows). */
  rowsOf(scenario: string): string[];
}

/** The partition every shard of the matrix computes alike, and this shard's part of it. */
export async function planShard(
  scenarios: Array<{ scenario: Scenario; rows: KernelEntry[] }>,
  spec: ShardSpec,
  pins: ShardPin[],
  historyDir?: string,
): Promise<ShardPlan> {
  const names = new Set<string>();
  for (const { scenario: s } of scenarios) {
    if (names.has(s.name)) throw new VmrigError(`--shard: two scenario files are named "${s.name}"; rename one`);
    names.add(s.name);
  }
  const history = await loadHistory(historyDir, [...names]);
  const costs = rowCosts(scenarios, (name) => {
    const r = history.get(name);
    return r ? { id: r.id, rows: r.result.rows } : undefined;
  });
  const placed = partition(costs, spec.count, pins);
  const manifest: ShardManifest = {
    format: MANIFEST_FORMAT,
    vmrig: vmrigVersion(),
    shard: spec.index,
    of: spec.count,
    pins,
    scenarios: await Promise.all(
      scenarios.map(async ({ scenario: s }) => ({
        name: s.name,
        file: path.relative(repoRoot, s.file),
        sha256: sha256(await readFile(s.file)),
      })),
    ),
    rows: placed.map((p, i) => ({ ...costs[i]!, shard: p.shard, ...(p.pin ? { pin: p.pin } : {}) })),
  };
  return {
    manifest,
    rowsOf: (name) => manifest.rows.filter((r) => r.scenario === name && r.shard === spec.index).map((r) => r.label),
  };
}

/** `--shard-history DIR`: a run directory, or a results root whose newest complete run of each scenario counts. */
async function loadHistory(dir: string | undefined, scenarios: string[]): Promise<Map<string, RunRecord>> {
  const out = new Map<string, RunRecord>();
  if (!dir) return out;
  const one = await loadRun(dir).catch(() => undefined);
  if (one) return one.result.complete ? new Map([[one.result.scenario, one]]) : out;
  for (const s of scenarios) {
    const last = (await listRuns(dir, s)).filter((r) => r.result.complete).at(-1);
    if (last) out.set(s, last);
  }
  return out;
}

/** A run directory's shard.json, or undefined when it has none (a run without --shard). */
export async function readManifest(runDir: string): Promise<ShardManifest | undefined> {
  const file = path.join(runDir, SHARD_FILE);
  const text = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined;
    throw new VmrigError(`${file}: ${e.message}`);
  });
  if (text === undefined) return undefined;
  let m: ShardManifest;
  try {
    m = JSON.parse(text) as ShardManifest;
  } catch (e) {
    throw new VmrigError(`${file}: not JSON (${(e as Error).message})`);
  }
  const missing = ["format", "vmrig", "shard", "of", "scenarios", "rows"].filter(
    (k) => (m as unknown as Record<string, unknown>)[k] === undefined,
  );
  if (missing.length) throw new VmrigError(`${file}: not a vmrig shard manifest (no ${missing.join(", ")})`);
  if (m.format !== MANIFEST_FORMAT)
    throw new VmrigError(`${file}: manifest format ${m.format}; this vmrig reads format ${MANIFEST_FORMAT}`);
  return m;
}
