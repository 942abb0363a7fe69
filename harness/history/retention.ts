// Retention (`vmrig gc`): per scenario, newest first,
//   the newest `compressAfter` runs        keep everything as it is (the morning's links open in a browser)
//   the newest `keep` runs                 gzip their guest logs (console, dmesg, virtiofsd, ...)
//   older runs                             prune: delete the per-kernel artifact directories, keep
//                                          results.json/.md, junit.xml, scenario.yaml, report.html
//                                          (history, trends and comparisons still work)
//   beyond `maxRuns` (default unlimited)   delete the run directory
// A run pinned as a baseline (baselines.json) or marked KEEP is never pruned or deleted (its
// logs may be gzipped; its report's links follow). A run still being written is not touched.
// planRetention is pure; applyRetention does what the plan says.
import { createReadStream, createWriteStream } from "node:fs";
import { readdir, rm, stat, unlink } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import path from "node:path";
import { buildFileAtomic } from "../util/atomic-fs.ts";

export interface RetentionPolicy {
  keep: number;
  compressAfter: number;
  maxRuns: number;
}

export const DEFAULT_POLICY: RetentionPolicy = { keep: 14, compressAfter: 1, maxRuns: Infinity };

export interface RunFacts {
  id: string;
  scenario: string;
  startedAt: string;
  pinned: boolean;
  /** Still being written by a running vmrig (no finishedAt, results.json touched recently). */
  inProgress: boolean;
  /** What is on disk: all logs plain, some gzipped, artifact directories gone. */
  state: "kept" | "compressed" | "pruned";
}

export type RetentionAction = "keep" | "compress" | "prune" | "delete";

export interface PlannedAction {
  id: string;
  action: RetentionAction;
  why: string;
}

export function planRetention(runs: RunFacts[], policy: RetentionPolicy): PlannedAction[] {
  const out: PlannedAction[] = [];
  const scenarios = [...new Set(runs.map((r) => r.scenario))];
  for (const s of scenarios) {
    const newestFirst = runs
      .filter((r) => r.scenario === s)
      .sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : b.id.localeCompare(a.id)));
    for (const r of newestFirst.filter((x) => x.inProgress))
      out.push({ id: r.id, action: "keep", why: "still being written" });
    // A run still being written does not count: the last finished run keeps its place.
    newestFirst
      .filter((x) => !x.inProgress)
      .forEach((r, i) => {
        const nth = `#${i + 1} newest`;
        if (i < policy.compressAfter)
          return out.push({ id: r.id, action: "keep", why: `${nth}, within --compress-after ${policy.compressAfter}` });
        const compress = (why: string): PlannedAction => ({
          id: r.id,
          action: r.state === "kept" ? "compress" : "keep",
          why: r.state === "kept" ? why : `${why}; already ${r.state}`,
        });
        if (r.pinned) return out.push(compress(`${nth}, pinned (baseline or KEEP): never pruned`));
        if (i < policy.keep) return out.push(compress(`${nth}, within --keep ${policy.keep}`));
        if (i >= policy.maxRuns)
          return out.push({ id: r.id, action: "delete", why: `${nth}, beyond --max-runs ${policy.maxRuns}` });
        out.push(
          r.state === "pruned"
            ? { id: r.id, action: "keep", why: `${nth}, already pruned` }
            : {
                id: r.id,
                action: "prune",
                why: `${nth}, beyond --keep ${policy.keep}: artifacts removed, results kept`,
              },
        );
      });
  }
  return out;
}

/** Files a run's logs live in: everything below the run directory's subdirectories. */
async function artifactFiles(runDir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  for (const e of await readdir(runDir, { withFileTypes: true }))
    if (e.isDirectory()) await walk(path.join(runDir, e.name));
  return out;
}

/** Smaller files than this stay plain (the QEMU command line): gzip would not save anything. */
export const COMPRESS_MIN_BYTES = 4096;

/** A file inside a cell's repro bundle (<row>/repro-<workload>/...). */
const REPRO_BUNDLE_PATH = /(^|\/)repro-[^/]+\//;

export async function compressRun(runDir: string): Promise<{ files: number; before: number; after: number }> {
  let files = 0;
  let before = 0;
  let after = 0;
  for (const f of await artifactFiles(runDir)) {
    // A repro bundle must stay runnable as it is; its big files are hard links that cost nothing.
    if (f.endsWith(".gz") || REPRO_BUNDLE_PATH.test(path.relative(runDir, f))) continue;
    const size = (await stat(f)).size;
    if (size < COMPRESS_MIN_BYTES) continue;
    const gzip = (tmp: string) => pipeline(createReadStream(f), createGzip({ level: 9 }), createWriteStream(tmp));
    await buildFileAtomic(`${f}.gz`, gzip);
    await unlink(f);
    files++;
    before += size;
    after += (await stat(`${f}.gz`)).size;
  }
  return { files, before, after };
}

export async function pruneRun(runDir: string): Promise<number> {
  let bytes = 0;
  for (const f of await artifactFiles(runDir)) bytes += (await stat(f).catch(() => ({ size: 0 }))).size;
  for (const e of await readdir(runDir, { withFileTypes: true }))
    if (e.isDirectory()) await rm(path.join(runDir, e.name), { recursive: true, force: true });
  return bytes;
}

export async function deleteRun(runDir: string): Promise<number> {
  let bytes = 0;
  for (const f of await artifactFiles(runDir)) bytes += (await stat(f).catch(() => ({ size: 0 }))).size;
  await rm(runDir, { recursive: true, force: true });
  return bytes;
}
