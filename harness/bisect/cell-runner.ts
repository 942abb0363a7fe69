// One bisect step for real: build the clone's tree at a commit through the kernel build
// pipeline (cache, ccache, incremental O= directory), then run the one cell `repeat` times, each
// in a fresh guest, through the ordinary scenario runner. A tree that does not configure or
// compile is a result (the step is skipped), not an error; a host that cannot build is an error.
import fs from "node:fs/promises";
import path from "node:path";
import type { KernelEntry, Scenario, WorkloadSpec } from "../types.ts";
import { artifactOf } from "../kernels/from-source/builder.ts";
import type { BuildSpec } from "../kernels/from-source/spec.ts";
import { buildTreeKernel, treeBuildLog } from "../kernels/from-source/tree-build.ts";
import { runScenarioFile } from "../run/run-file.ts";
import type { Progress } from "../run/progress.ts";
import { HostError, VmrigError } from "../util/errors.ts";
import type { BuildInfo, RunInfo, StepPhase } from "./state.ts";

export interface StepTarget {
  phase: StepPhase;
  index: number;
  commit: string;
  subject: string;
  /** Verify: this commit is reverted on top of `commit` (the tree already holds the revert). */
  reverted?: string;
  /** Directory name of this step's results under <bisect dir>/steps. */
  name: string;
  /** Makes the clone's tree hold the target; called only when the kernel must be built. */
  prepare: () => Promise<void>;
}

export interface StepRun {
  build: BuildInfo;
  runs: RunInfo[];
}

/** Builds and runs one target. Tests replace it; the git side of a bisect stays real. */
export interface StepRunner {
  run(t: StepTarget): Promise<StepRun>;
}

export interface CellRunnerOptions {
  scenario: Scenario;
  entry: KernelEntry;
  spec: BuildSpec;
  workload: WorkloadSpec;
  repeat: number;
  /** The work slot: slot/src is the clone, slot/out the build directory. */
  slot: string;
  /** The tree's name for descriptions. */
  treeName: string;
  /** The bisect's results directory. */
  dir: string;
  signal: AbortSignal;
  progress: Progress;
}

const sink = { write: () => true } as unknown as NodeJS.WritableStream;

export function createCellRunner(o: CellRunnerOptions): StepRunner {
  const label = o.entry.label;
  return {
    async run(t) {
      const stepDir = path.join(o.dir, "steps", t.name);
      const short = t.commit.slice(0, 12) + (t.reverted ? ` - ${t.reverted.slice(0, 12)}` : "");
      const log = (l: string) => o.progress.stage(label, `${short}: ${l}`);
      const started = Date.now();
      let build: BuildInfo;
      let outcome;
      try {
        outcome = await buildTreeKernel(
          {
            spec: o.spec,
            sourceIdentity: t.reverted ? `git:${t.commit} revert:${t.reverted}` : `git:${t.commit}`,
            detail: `${o.treeName} ${short} (${t.subject})`,
            description: `built ${o.treeName}@${short} (${o.spec.arch}, ${[o.spec.base, ...o.spec.fragments.map((f) => path.basename(f))].join("+")})`,
            slot: o.slot,
            prepare: t.prepare,
          },
          { arch: o.spec.arch, signal: o.signal, log },
        );
      } catch (e) {
        if (o.signal.aborted || e instanceof HostError || !(e instanceof VmrigError)) throw e;
        await fs.mkdir(stepDir, { recursive: true });
        const kept = path.join(stepDir, "build.log");
        const saved = await fs.copyFile(treeBuildLog(o.slot), kept).then(
          () => true,
          () => false,
        );
        const first = saved ? firstBuildError(await fs.readFile(kept, "utf8"), path.join(o.slot, "src")) : undefined;
        build = {
          how: "failed",
          ms: Date.now() - started,
          error: [...(first ? [first] : []), ...e.message.split("\n").slice(0, 12)].join("\n"),
          ...(saved ? { log: path.relative(o.dir, kept) } : {}),
        };
        o.progress.info(`[${label}] ${short}: build failed${saved ? ` (log: ${kept})` : ""}`);
        return { build, runs: [] };
      }
      build = {
        how: outcome.how,
        ms: Date.now() - started,
        key: outcome.manifest.key,
        ...(outcome.make ? { makeMs: outcome.make.ms, compiled: outcome.make.compiled.length } : {}),
      };
      const artifact = artifactOf(o.spec, outcome.manifest);

      const source = {
        kind: "path" as const,
        kernel: artifact.image,
        ...(artifact.config ? { config: artifact.config } : {}),
      };
      const runs = await runCell(o, t.name, (row) => ({ ...row, source }));
      return { build, runs };
    },
  };
}

export type CellRunOptions = Pick<
  CellRunnerOptions,
  "scenario" | "entry" | "workload" | "repeat" | "dir" | "signal" | "progress"
>;

/**
 * The one cell, `repeat` times, through the ordinary scenario runner: one row per run, each its
 * own guest, `rowFor` making the entry the step's (its kernel, its QEMU). Results go to
 * <dir>/steps/<name>.
 */
export async function runCell(
  o: CellRunOptions,
  name: string,
  rowFor: (row: KernelEntry) => KernelEntry,
): Promise<RunInfo[]> {
  const label = o.entry.label;
  const rows: KernelEntry[] = Array.from({ length: o.repeat }, (_, i) =>
    rowFor({ ...o.entry, label: o.repeat === 1 ? label : `${label}-run${i + 1}` }),
  );
  const faults = o.scenario.faults?.filter((f) => f.during === o.workload.id);
  const scenario: Scenario = { ...o.scenario, name, kernels: rows, workloads: [o.workload], faults };
  if (!faults?.length) delete scenario.faults;
  const { result, runDir } = await runScenarioFile(o.scenario.file, {
    scenario,
    resultsRoot: path.join(o.dir, "steps"),
    progress: o.progress,
    signal: o.signal,
    out: sink,
    color: false,
  });
  return result.rows.map((row) => {
    const cell = row.cells.find((c) => c.workload === o.workload.id);
    return {
      outcome: cell?.outcome ?? { kind: "not-run", reason: "the row has no cell" },
      ...(row.bootMs !== undefined ? { bootMs: row.bootMs } : {}),
      workloadMs: cell?.durationMs ?? 0,
      runDir: path.relative(o.dir, path.join(runDir, row.label)),
    };
  });
}

/**
 * The first compiler or make error in a build log, with the work tree's path taken off:
 * "fs/fuse/readdir.c:647:13: error: implicit declaration of function 'fuse_readdir_bad_inode'".
 */
export function firstBuildError(log: string, src: string): string | undefined {
  const lines = log.split("\n");
  const line =
    lines.find((l) => /(^|\s)(fatal )?error: /.test(l)) ?? lines.find((l) => /^make(\[\d+\])?: \*\*\* /.test(l));
  if (!line) return undefined;
  const tidy = line
    .split(`${src}/`)
    .join("")
    .replace(/(^|\s)\.\.\/src\//g, "$1")
    .replace(/\s*\[-W[^\]]*\]$/, "")
    .trim();
  return tidy.length > 160 ? `${tidy.slice(0, 157)}...` : tidy;
}
