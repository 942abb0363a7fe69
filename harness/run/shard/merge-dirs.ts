// The adapter of `vmrig merge`: finds the shards' run directories under the paths given (as CI
// downloads artifacts: a run directory, or any folder above some), checks them all, then writes
// one run directory per scenario under the results root, with every row's files linked in.
import { copyFile, link, lstat, mkdir, readdir, readlink, symlink } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import type { RunResult } from "../../types.ts";
import { VmrigError } from "../../util/errors.ts";
import { createRunDir } from "../../util/run-dir.ts";
import { loadRun } from "../../history/history.ts";
import { summarise } from "../../report/summary.ts";
import { printRun, writeRunFiles } from "../outputs.ts";
import { readManifest, SHARD_FILE } from "./manifest.ts";
import { checkShards, mergeScenario, type ShardRun } from "./merge.ts";

/** Artifact folders sit a few levels down: <artifact>/<results root>/<scenario>/<stamp>/shard.json. */
const SEARCH_DEPTH = 5;

async function findShardDirs(where: string, depth = 0): Promise<string[]> {
  if (existsSync(path.join(where, SHARD_FILE))) return [where];
  if (depth >= SEARCH_DEPTH) return [];
  const entries = await readdir(where, { withFileTypes: true }).catch(() => []);
  const found = await Promise.all(
    entries.filter((e) => e.isDirectory()).map((e) => findShardDirs(path.join(where, e.name), depth + 1)),
  );
  return found.flat().sort();
}

/** Every shard run under `paths`; a path that is missing or holds no shard is refused by name. */
export async function readShards(paths: string[]): Promise<ShardRun[]> {
  const shards: ShardRun[] = [];
  for (const p of paths) {
    const abs = path.resolve(p);
    if (!existsSync(abs)) throw new VmrigError(`merge: ${p}: no such directory`);
    const dirs = await findShardDirs(abs);
    if (!dirs.length)
      throw new VmrigError(`merge: ${p} holds no shard run directory (no ${SHARD_FILE}: was it run with --shard?)`);
    for (const dir of dirs) {
      const manifest = (await readManifest(dir))!;
      const run = await loadRun(dir).catch((e: Error) => {
        throw new VmrigError(`merge: ${e.message}`);
      });
      shards.push({ dir, manifest, result: run.result });
    }
  }
  return shards;
}

/** Hard links (a copy across file systems): a shard's consoles and repro bundles, without doubling the disk. */
async function linkTree(src: string, dst: string): Promise<void> {
  const st = await lstat(src);
  if (st.isDirectory()) {
    await mkdir(dst, { recursive: true });
    for (const e of await readdir(src)) await linkTree(path.join(src, e), path.join(dst, e));
  } else if (st.isSymbolicLink()) await symlink(await readlink(src), dst);
  else
    await link(src, dst).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== "EXDEV" && e.code !== "EPERM") throw e;
      await copyFile(src, dst);
    });
}

/** The top folders a row's files are in (its label's, and any other its artifacts name). */
function rowFolders(result: RunResult, label: string): string[] {
  const row = result.rows.find((r) => r.label === label)!;
  const tops = Object.values(row.artifacts).map((rel) => rel.split("/")[0]!);
  return [...new Set([label, ...tops])];
}

export interface MergedRun {
  result: RunResult;
  runDir: string;
  exitCode: number;
}

/** Checks every shard first, then writes one merged run per scenario under `resultsRoot`. */
export async function mergeShards(
  paths: string[],
  resultsRoot: string,
  opts: { out?: NodeJS.WritableStream; color?: boolean; log: (line: string) => void },
): Promise<MergedRun[]> {
  const shards = await readShards(paths);
  checkShards(shards);
  const merged: MergedRun[] = [];
  for (const sc of shards[0]!.manifest.scenarios) {
    const mine = shards.filter((s) => s.result.scenario === sc.name);
    if (!mine.length) continue;
    const result = mergeScenario(mine);
    const runDir = await createRunDir(path.join(resultsRoot, sc.name), new Date(result.startedAt));
    await copyFile(path.join(mine[0]!.dir, "scenario.yaml"), path.join(runDir, "scenario.yaml")).catch(() => undefined);
    for (const s of mine)
      for (const row of s.result.rows)
        for (const folder of rowFolders(s.result, row.label))
          if (existsSync(path.join(s.dir, folder))) await linkTree(path.join(s.dir, folder), path.join(runDir, folder));
    await writeRunFiles(result, runDir, resultsRoot, opts.log);
    printRun(result, runDir, opts);
    merged.push({ result, runDir, exitCode: summarise(result).exitCode });
  }
  return merged;
}
