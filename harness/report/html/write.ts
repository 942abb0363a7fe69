// Writes report.html into a run directory and index.html at the results root, from what is on
// disk: the run's results.json, its siblings (history, trends, the run to compare with), and
// which artifacts still exist plain or gzipped after retention. Called at the end of every
// run, and again by `vmrig gc` for runs whose logs it compressed or removed.
import { existsSync } from "node:fs";
import path from "node:path";
import { writeFileAtomic } from "../../util/atomic-fs.ts";
import { compareWithHistory } from "../../history/compare.ts";
import { cellHistory } from "../../history/compare.ts";
import { listRuns, listScenarios, loadRun, previousComplete, type RunRecord } from "../../history/history.ts";
import { isPinned, KEEP_MARKER, readBaselines, type BaselinesFile } from "../../history/baselines.ts";
import { summarise } from "../summary.ts";
import { renderIndexPage, type IndexRun, type IndexScenario } from "./index-page.ts";
import { renderRunPage, trendKey, type ArtifactLink } from "./run-page.ts";
import type { TrendPoint } from "./trend.ts";

export const REPORT_FILE = "report.html";
export const INDEX_FILE = "index.html";
/** Nights in a cell's trend line. */
export const TREND_RUNS = 14;
const RUN_FILES = ["results.json", "results.md", "junit.xml", "scenario.yaml"];

const posix = (p: string) => p.split(path.sep).join("/");

/** Where an artifact is now: as recorded, gzipped by retention, or gone. */
export function resolveArtifact(runDir: string, rel: string): ArtifactLink {
  if (existsSync(path.join(runDir, rel))) return { rel, href: rel, state: "plain" };
  if (existsSync(path.join(runDir, rel + ".gz"))) return { rel, href: rel + ".gz", state: "gz" };
  return { rel, state: "missing" };
}

function pinnedWhy(run: RunRecord, b: BaselinesFile): string | undefined {
  if (Object.entries(b.baselines).some(([, id]) => id === run.id)) return "baseline";
  if (existsSync(path.join(run.dir, KEEP_MARKER))) return "kept";
  return isPinned(run.id, run.dir, b) ? "pinned" : undefined;
}

export async function writeRunReport(
  run: RunRecord,
  resultsRoot: string,
  history?: RunRecord[],
  baselines?: BaselinesFile,
): Promise<string> {
  const all = history ?? (await listRuns(resultsRoot, run.scenario));
  const upTo = all.filter((h) => h.result.startedAt <= run.result.startedAt && h.dir !== run.dir);
  upTo.push(run);
  const prev = previousComplete(upTo, run);
  const comparison = prev ? compareWithHistory(prev, run, upTo) : undefined;
  const recent = upTo.slice(-TREND_RUNS);

  const trends: Record<string, TrendPoint[]> = {};
  for (const row of run.result.rows) {
    for (const w of run.result.workloads) {
      trends[trendKey(row.label, w)] = cellHistory(recent, row.label, w).map((p, i) => {
        const other = recent[i]!;
        const report = path.join(other.dir, REPORT_FILE);
        return {
          ...p,
          current: other.dir === run.dir,
          href: other.dir !== run.dir && existsSync(report) ? posix(path.relative(run.dir, report)) : undefined,
        };
      });
    }
  }
  const artifacts: Record<string, ArtifactLink> = {};
  for (const row of run.result.rows)
    for (const rel of Object.values(row.artifacts)) artifacts[rel] = resolveArtifact(run.dir, rel);
  const html = renderRunPage({
    run,
    comparison,
    comparedHref:
      prev && existsSync(path.join(prev.dir, REPORT_FILE))
        ? posix(path.relative(run.dir, path.join(prev.dir, REPORT_FILE)))
        : undefined,
    comparedWhat: "the previous run",
    trends,
    artifacts,
    files: RUN_FILES.filter((f) => existsSync(path.join(run.dir, f))),
    indexHref: posix(path.relative(run.dir, path.join(resultsRoot, INDEX_FILE))),
    pinned: pinnedWhy(
      run,
      baselines ?? (await readBaselines(resultsRoot).catch(() => ({ version: 1 as const, baselines: {} }))),
    ),
  });
  const file = path.join(run.dir, REPORT_FILE);
  await writeFileAtomic(file, html);
  return file;
}

function artifactsState(run: RunRecord): IndexRun["artifacts"] {
  const links = run.result.rows.flatMap((r) => Object.values(r.artifacts)).map((rel) => resolveArtifact(run.dir, rel));
  if (links.length && links.every((l) => l.state === "missing")) return "pruned";
  return links.some((l) => l.state === "gz") ? "compressed" : "kept";
}

export async function writeIndex(resultsRoot: string): Promise<string> {
  const baselines = await readBaselines(resultsRoot).catch(() => ({ version: 1 as const, baselines: {} }));
  const scenarios: IndexScenario[] = [];
  for (const name of await listScenarios(resultsRoot)) {
    const history = await listRuns(resultsRoot, name);
    const runs: IndexRun[] = [];
    let notable: IndexScenario["notable"] = [];
    let comparedWith: string | undefined;
    history.forEach((run, i) => {
      const upTo = history.slice(0, i + 1);
      const prev = previousComplete(upTo, run);
      const cmp = prev ? compareWithHistory(prev, run, upTo) : undefined;
      const s = summarise(run.result);
      const report = path.join(run.dir, REPORT_FILE);
      runs.unshift({
        id: run.id,
        href: existsSync(report) ? posix(path.relative(resultsRoot, report)) : undefined,
        startedAt: run.result.startedAt,
        complete: run.result.complete,
        met: s.met,
        cells: s.cells,
        kernels: run.result.rows.map((r) => r.label),
        qemu: run.result.host.qemu,
        virtiofsd: run.result.host.virtiofsd,
        counts: cmp?.counts,
        pinned: pinnedWhy(run, baselines),
        artifacts: artifactsState(run),
      });
      if (i === history.length - 1) {
        notable = cmp?.cells.filter((c) => c.cls !== "pass") ?? [];
        comparedWith = prev?.id;
      }
    });
    scenarios.push({ name, runs, notable, comparedWith });
  }
  const file = path.join(resultsRoot, INDEX_FILE);
  await writeFileAtomic(file, renderIndexPage({ generatedAt: new Date().toISOString(), scenarios }));
  return file;
}

/** After a run: its report.html, then the index over every run. */
export async function writeHtmlReports(runDir: string, resultsRoot: string): Promise<void> {
  const run = await loadRun(runDir);
  await writeRunReport(run, resultsRoot);
  await writeIndex(resultsRoot);
}
