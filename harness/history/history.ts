// History: every run is a directory results/<scenario>/<stamp>/ holding results.json (kernels'
// identities, host, QEMU and virtiofsd versions, every cell) and scenario.yaml (the spec as it
// ran). This module finds and reads them; nothing else is needed to compare runs later.
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { RunResult } from "../types.ts";

export interface RunRecord {
  /** Absolute path of the run directory. */
  dir: string;
  /** "<scenario dir>/<stamp>", relative to the results root: how reports and baselines name it. */
  id: string;
  /** The scenario directory's name (the scenario's `name`). */
  scenario: string;
  stamp: string;
  result: RunResult;
  /** The scenario file as it ran (the copy in the run directory), when present. */
  scenarioYaml?: string;
}

/** A run directory, or a results.json inside one. */
export async function loadRun(where: string): Promise<RunRecord> {
  let dir = path.resolve(where);
  if ((await stat(dir)).isFile()) dir = path.dirname(dir);
  const text = await readFile(path.join(dir, "results.json"), "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new Error(
      e.code === "ENOENT" ? `${where} is not a vmrig run directory (no results.json)` : `${where}: ${e.message}`,
    );
  });
  let result: RunResult;
  try {
    result = JSON.parse(text) as RunResult;
  } catch (e) {
    throw new Error(`${path.join(dir, "results.json")}: not JSON (${(e as Error).message})`, { cause: e });
  }
  const scenarioYaml = await readFile(path.join(dir, "scenario.yaml"), "utf8").catch(() => undefined);
  const stamp = path.basename(dir);
  const scenario = path.basename(path.dirname(dir));
  return { dir, id: `${scenario}/${stamp}`, scenario, stamp, result, scenarioYaml };
}

/** Scenario directories under the results root (those holding at least one run). */
export async function listScenarios(resultsRoot: string): Promise<string[]> {
  const entries = await readdir(resultsRoot, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    if ((await listRunDirs(path.join(resultsRoot, e.name))).length) out.push(e.name);
  }
  return out.sort();
}

/** Run directories of one scenario directory, oldest first (stamps sort as time). */
export async function listRunDirs(scenarioDir: string): Promise<string[]> {
  const entries = await readdir(scenarioDir, { withFileTypes: true }).catch(() => []);
  const dirs: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const dir = path.join(scenarioDir, e.name);
    if (
      await stat(path.join(dir, "results.json")).then(
        () => true,
        () => false,
      )
    )
      dirs.push(dir);
  }
  return dirs.sort();
}

/** Every readable run of a scenario, oldest first; unreadable ones are skipped. */
export async function listRuns(resultsRoot: string, scenario: string): Promise<RunRecord[]> {
  const runs: RunRecord[] = [];
  for (const dir of await listRunDirs(path.join(resultsRoot, scenario))) {
    const r = await loadRun(dir).catch(() => undefined);
    if (r) runs.push(r);
  }
  return runs.sort((a, b) =>
    a.result.startedAt < b.result.startedAt
      ? -1
      : a.result.startedAt > b.result.startedAt
        ? 1
        : a.stamp.localeCompare(b.stamp),
  );
}

/** The run before `run` of the same scenario that finished (complete), if any. */
export function previousComplete(history: RunRecord[], run: RunRecord): RunRecord | undefined {
  const i = history.findIndex((h) => h.dir === run.dir);
  const before = i >= 0 ? history.slice(0, i) : history.filter((h) => h.result.startedAt < run.result.startedAt);
  return [...before].reverse().find((h) => h.result.complete);
}
