// npm run bench -- shard: how balanced `--shard K/N` is, as max/mean of the shards' costs (1.00 is
// perfect). Predicted: the static estimate on the project's 16-row matrix of scenario files.
// Measured: a 16-row matrix of cached Debian kernels (two scenarios, light and heavy) run once
// with --jobs auto; each row's guest time is then summed per shard, for the partition from the
// static estimate and for the one a later night computes from this run's history.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadScenario } from "../harness/scenario/load.ts";
import { repoRoot } from "../harness/util/paths.ts";
import { runScenarioFiles } from "../harness/run/schedule/run-many.ts";
import { silentProgress, discardOutput } from "../harness/run/progress.ts";
import { measuredRowCost, rowCosts, type RowCost } from "../harness/run/shard/cost.ts";
import { imbalance, partition, shardLoads } from "../harness/run/shard/partition.ts";
import type { RunResult, Scenario } from "../harness/types.ts";

/** 16 rows: Debian kernels, built kernels, arm64 rows with 4K/16K/64K pages, a fault scenario. */
export const MATRIX_FILES = [
  "default.yaml",
  "dnotify-bad-inode.yaml",
  "getdents-swiotlb.yaml",
  "kselftest-fs.yaml",
  "overlay-readdir-pagesize.yaml",
  "virtiofsd-faults.yaml",
];
const COUNTS = [2, 3, 4, 8];
const VERSIONS = ["6.12", "6.18.15", "7.3"];

const kernels = (n: number) =>
  Array.from({ length: n }, (_, i) => {
    const v = VERSIONS[i % VERSIONS.length]!;
    return `  k${i + 1}: { debian: { version: "${v}", flavour: cloud-amd64 }${i >= 3 ? `, cmdline: [nosmt]` : ""} }`;
  }).join("\n");

const LIGHT = `name: bench-shard-light
machine: { arch: x86_64, memory: 512M, cpus: 1 }
kernels:
${kernels(8)}
workloads:
  - { id: release, shell: { command: "uname -r", expectExit: 0 } }
expect: { default: PASS }
`;

const HEAVY = `name: bench-shard-heavy
machine: { arch: x86_64, memory: 512M, cpus: 1 }
kernels:
${kernels(8)}
shares:
  - { tag: share }
workloads:
  - { id: getdents-64K, readdir: { share: share, entries: 2000, bufferSize: 64K } }
  - { id: read-1M, read: { share: share, size: 32M, blockSize: 1M } }
  - { id: release, shell: { command: "uname -r", expectExit: 0 } }
expect: { default: PASS }
`;

const ratio = (x: number) => x.toFixed(2);

function predictedLine(costs: RowCost[], n: number): string {
  return `N=${n}: max/mean ${ratio(imbalance(shardLoads(partition(costs, n), n)))}`;
}

/** max/mean of what the shards' rows really took, for the partition `costs` gives. */
function measuredImbalance(costs: RowCost[], measured: Map<string, number>, n: number): number {
  const placed = partition(costs, n).map((p) => ({ ...p, cost: measured.get(p.key)! }));
  return imbalance(shardLoads(placed, n));
}

async function predictedOnly(): Promise<void> {
  const scenarios: Scenario[] = await Promise.all(
    MATRIX_FILES.map((f) => loadScenario(path.join(repoRoot, "scenarios", f))),
  );
  const costs = rowCosts(
    scenarios.map((s) => ({ scenario: s, rows: s.kernels })),
    () => undefined,
  );
  const total = costs.reduce((a, r) => a + r.cost, 0);
  console.log(
    `\n## shard balance, predicted: ${costs.length} rows of scenarios/ (${MATRIX_FILES.length} files), ` +
      `static estimate ${Math.round(total)} s in all, largest row ${Math.max(...costs.map((c) => c.cost))} s`,
  );
  for (const n of COUNTS) console.log(predictedLine(costs, n));
}

async function measuredMatrix(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), "vmrig-bench-shard-"));
  try {
    const files = [path.join(work, "light.yaml"), path.join(work, "heavy.yaml")];
    await writeFile(files[0]!, LIGHT);
    await writeFile(files[1]!, HEAVY);
    const t0 = Date.now();
    const many = await runScenarioFiles(files, {
      jobs: "auto",
      progress: silentProgress,
      out: discardOutput,
      resultsRoot: path.join(work, "results"),
    });
    const wall = Date.now() - t0;
    const runs: RunResult[] = many.files.map((f) => {
      if (!f.outcome) throw f.error ?? new Error(`${f.file}: no outcome`);
      return f.outcome.result;
    });
    const scenarios = await Promise.all(files.map((f) => loadScenario(f)));
    const rows = scenarios.map((s) => ({ scenario: s, rows: s.kernels }));
    const measured = new Map(
      runs.flatMap((r) => r.rows.map((row) => [`${r.scenario}/${row.label}`, measuredRowCost(row)] as const)),
    );
    const staticCosts = rowCosts(rows, () => undefined);
    const historyCosts = rowCosts(rows, (name) => {
      const r = runs.find((x) => x.scenario === name);
      return r ? { id: `${name}/bench`, rows: r.rows } : undefined;
    });
    const total = [...measured.values()].reduce((a, b) => a + b, 0);
    console.log(
      `\n## shard balance, measured: 16 rows (Debian ${VERSIONS.join(", ")}; 8 light, 8 heavy), TCG, ` +
        `${Math.round(total)} s of guest time (run in ${(wall / 1000).toFixed(0)} s with --jobs auto)`,
    );
    console.log("partition from      N   predicted max/mean   measured max/mean");
    for (const [name, costs] of [
      ["static estimate", staticCosts],
      ["this run's history", historyCosts],
    ] as const)
      for (const n of COUNTS) {
        const predicted = ratio(imbalance(shardLoads(partition(costs, n), n)));
        const real = ratio(measuredImbalance(costs, measured, n));
        console.log(`${name.padEnd(19)} ${String(n).padStart(2)}   ${predicted.padStart(18)}   ${real.padStart(17)}`);
      }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export async function shardBench(): Promise<void> {
  await predictedOnly();
  await measuredMatrix();
}
