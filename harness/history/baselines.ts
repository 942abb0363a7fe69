// Baselines: runs a team compares against ("the last release", "before the series") and that
// retention must never delete. Two ways to pin a run, both honoured by `vmrig gc`:
//   - results/baselines.json: { "version": 1, "baselines": { "<scenario>": "<scenario>/<stamp>" } },
//     written by `vmrig baseline <run-dir>`; the nightly summary can compare against it;
//   - a file named KEEP in the run directory (touch it by hand; its text can say why).
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { writeFileAtomic } from "../util/atomic-fs.ts";

export interface BaselinesFile {
  version: 1;
  baselines: Record<string, string>;
}

export const BASELINES_FILE = "baselines.json";
export const KEEP_MARKER = "KEEP";

export async function readBaselines(resultsRoot: string): Promise<BaselinesFile> {
  const file = path.join(resultsRoot, BASELINES_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return { version: 1, baselines: {} };
  }
  const parsed = JSON.parse(text) as Partial<BaselinesFile>;
  if (!parsed || typeof parsed.baselines !== "object" || parsed.baselines === null)
    throw new Error(`${file}: expected {"version": 1, "baselines": {...}}`);
  return { version: 1, baselines: { ...parsed.baselines } };
}

export async function writeBaselines(resultsRoot: string, b: BaselinesFile): Promise<void> {
  const file = path.join(resultsRoot, BASELINES_FILE);
  await writeFileAtomic(file, JSON.stringify(b, null, 2) + "\n");
}

/** Run ids ("<scenario>/<stamp>") that must be kept: pinned baselines and KEEP-marked runs. */
export function isPinned(runId: string, runDir: string, b: BaselinesFile): boolean {
  return Object.values(b.baselines).includes(runId) || existsSync(path.join(runDir, KEEP_MARKER));
}
