// `vmrig export kcidb RUN...`: runs as KCIDB I/O JSON for KernelCI's results database (docs/kcidb.md).
// The mapping is harness/report/kcidb.ts; this reads the run and writes the file whole or not at all.
import { parseArgs } from "node:util";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { ExitCode, VmrigError } from "../util/errors.ts";
import { writeFileAtomic } from "../util/atomic-fs.ts";
import { KCIDB_ORIGIN, runsToKcidb } from "../report/kcidb.ts";
import { resolveRun } from "./nightly.ts";
import { resolveArtifact } from "../report/html/write.ts";
import type { RunRecord } from "../history/history.ts";

/**
 * The run with its files as they are on disk: a log `vmrig gc` gzipped is linked as .gz, and one
 * it pruned is left out, so every URL in the report points at a file that is there.
 */
function filesAsStored(run: RunRecord): RunRecord {
  const rows = run.result.rows.map((row) => {
    const stored = Object.entries(row.artifacts).flatMap(([name, rel]) => {
      const found = resolveArtifact(run.dir, rel);
      return found.href === undefined ? [] : [[name, found.href] as const];
    });
    return { ...row, artifacts: Object.fromEntries(stored) };
  });
  return { ...run, result: { ...run.result, rows } };
}

export const exportUsage =
  "  export kcidb RUN... [--origin NAME] [--artifacts-url URL] [-o FILE]\n" +
  "                                                runs as KCIDB I/O JSON, for KernelCI's results database";

/** The results root's URL: it must parse, and ends with "/" so run ids go under it. */
function artifactsBase(given: string | undefined, resultsRoot: string): string {
  if (given === undefined) return pathToFileURL(resultsRoot + path.sep).href;
  let u: URL;
  try {
    u = new URL(given);
  } catch {
    throw new VmrigError(`--artifacts-url "${given}" is not a URL (e.g. https://ci.example.org/runs/42/)`);
  }
  return u.href.endsWith("/") ? u.href : `${u.href}/`;
}

export async function exportCommand(args: string[], write: (text: string) => void): Promise<number> {
  const [format, ...rest] = args;
  if (format !== "kcidb") throw new VmrigError(`unknown export format "${format ?? ""}" (kcidb)\n${exportUsage}`);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      origin: { type: "string", default: "vmrig" },
      "artifacts-url": { type: "string" },
      output: { type: "string", short: "o" },
    },
  });
  if (!positionals.length) throw new VmrigError(`export kcidb needs a run\n${exportUsage}`);
  if (!KCIDB_ORIGIN.test(values.origin))
    throw new VmrigError(`--origin "${values.origin}": KCIDB origins are lower-case letters, digits and _`);
  const runs = (await Promise.all(positionals.map((p) => resolveRun(p)))).map(filesAsStored);
  // Run ids are relative to the results root: by default, the first run's.
  const root = path.dirname(path.dirname(runs[0]!.dir));
  const artifactsUrl = artifactsBase(values["artifacts-url"], root);
  const report = runsToKcidb(runs, { origin: values.origin, artifactsUrl });
  const text = JSON.stringify(report, null, 2) + "\n";
  if (values.output === undefined) write(text);
  else await writeFileAtomic(path.resolve(values.output), text);
  return ExitCode.ok;
}
