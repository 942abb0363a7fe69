// Manual stress: 8 guests (--jobs 8) on this host vs serial, interleaved; tables must be identical.
import os from "node:os";
import { runScenarioFile } from "/work/main/harness/run/run-file.ts";
import { runScenarioFiles } from "/work/main/harness/nightly/run-many.ts";
import { renderTerminalTable } from "/work/main/harness/report/table.ts";
const quiet = { info: () => undefined, stage: () => undefined, cell: () => undefined, done: () => undefined };
const sink = { write: () => true } as unknown as NodeJS.WritableStream;
const file = "/tmp/v9/stress.yaml";
const resultsRoot = "/tmp/v9/stress5-results";
const tables = new Map<string, string[]>();
for (const mode of ["serial", "par", "par", "par", "serial", "par", "par"]) {
  const t0 = Date.now();
  let table: string; let extra = "";
  if (mode === "serial") table = renderTerminalTable((await runScenarioFile(file, { resultsRoot, progress: quiet, out: sink })).result, { color: false });
  else {
    const r = await runScenarioFiles([file], { jobs: 8, resultsRoot, progress: quiet, out: sink });
    const o = r.files[0]!.outcome!;
    table = renderTerminalTable(o.result, { color: false });
    extra = ` peak ${r.stats.peakGuests} guests, timeScale ${o.result.rows[0]!.evidence.timeScale}, boot ${o.result.rows.map((x) => ((x.bootMs ?? 0) / 1000).toFixed(0)).join("/")} s`;
  }
  const kinds = table.includes("HANG") || table.includes("INFRA") ? " HANG/INFRA!" : "";
  (tables.get(table) ?? tables.set(table, []).get(table)!).push(mode);
  console.log(`${mode} ${((Date.now() - t0) / 1000).toFixed(0)} s${extra}${kinds}; load ${os.loadavg()[0]!.toFixed(1)}`);
}
console.log(`distinct tables: ${tables.size}`);
for (const [t, modes] of tables) console.log(modes.join(","), "\n" + t);
