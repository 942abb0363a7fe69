// A run's files, written the same way whether one host ran every row (`vmrig run`) or shards ran
// them and `vmrig merge` put them together: results.json, results.md, junit.xml, report.html.
import path from "node:path";
import type { RunResult } from "../types.ts";
import { renderJUnit, renderMarkdown, renderTerminalTable } from "../report/index.ts";
import { repoRoot } from "../util/paths.ts";
import { writeFileAtomic } from "../util/atomic-fs.ts";
import { writeHtmlReports } from "../report/html/write.ts";

export const writeResultsJson = (runDir: string, r: RunResult) =>
  writeFileAtomic(path.join(runDir, "results.json"), JSON.stringify(r, null, 2) + "\n");

/** results.json, results.md, junit.xml, then report.html and the results root's index.html. */
export async function writeRunFiles(
  result: RunResult,
  runDir: string,
  resultsRoot: string,
  log: (line: string) => void,
): Promise<void> {
  await writeResultsJson(runDir, result);
  await writeFileAtomic(path.join(runDir, "results.md"), renderMarkdown(result));
  // CI checks out the repository: results under it are attached by their path in it.
  const inRepo = !path.relative(repoRoot, runDir).startsWith("..");
  const attachmentBase = inRepo ? path.relative(repoRoot, runDir) : runDir;
  await writeFileAtomic(path.join(runDir, "junit.xml"), renderJUnit(result, { attachmentBase }));
  await writeHtmlReports(runDir, resultsRoot).catch((e: Error) => log(`report.html not written: ${e.message}`));
}

/** The table, then where the run's files are. */
export function printRun(
  result: RunResult,
  runDir: string,
  opts: { out?: NodeJS.WritableStream; color?: boolean },
): void {
  const out = opts.out ?? process.stdout;
  const color = opts.color ?? Boolean((out as NodeJS.WriteStream).isTTY);
  out.write("\n" + renderTerminalTable(result, { color }) + "\n");
  out.write(`results: ${path.relative(process.cwd(), runDir) || runDir}\n`);
}
