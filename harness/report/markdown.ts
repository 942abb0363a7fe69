// results.md: a short header, the GitHub table (same cells as the terminal), a legend, and the
// crash excerpts, so the file can be pasted into a patch's cover letter or a PR as it is.
import type { RunResult } from "../types.ts";
import { describeExpectation } from "../classify/expect.ts";
import { cellLabel } from "../classify/labels.ts";
import { missingCellLabel, summarise } from "./summary.ts";
import { rowPlatform, shardLines } from "./row-facts.ts";

const MAX_EXCERPT_LINES = 40;

/** Table cells cannot hold a pipe or a newline. */
const esc = (s: string) => s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ");

export const LEGEND = [
  "`PASS`: the workload did what it should",
  "`-EXXX`: the syscall failed with that errno; " +
    "*mount healthy* / *mount wedged* says whether the share still answered afterwards",
  "`FAIL`: it ran, but the result was wrong (count, checksum, exit code)",
  "`SHORT: saw N of M`: a listing ended without any error " +
    "but saw fewer entries than the host directory holds (silent loss)",
  "`HANG`: it did not finish in time (what hung)",
  "`CRASH`: the kernel oopsed, BUG()ed or panicked (first line of the report)",
  "`BOOT-FAIL`: the kernel never reached the guest's shell",
  "`INFRA`: vmrig or the host failed, which says nothing about the kernel",
  "`SKIP`: a KTAP test case said it does not apply to this kernel (its reason)",
  "`NOT RUN`: the run stopped before this cell",
  "`NOT REPORTED`: the workload ran but its KTAP output has no such test case",
  "✗ expected X: the cell did not meet the scenario's expectation",
];

function hostLine(run: RunResult): string {
  const h = run.host;
  const parts = [
    `QEMU ${h.qemu ?? "unknown"}`,
    `virtiofsd ${h.virtiofsd ?? "unknown"}`,
    `accel ${h.accel ?? "unknown"}${h.accelNote ? ` (${h.accelNote})` : ""}`,
    `host ${h.hostname}`,
  ];
  return parts.join(", ");
}

export function renderMarkdown(run: RunResult): string {
  const s = summarise(run);
  const out: string[] = [`# vmrig: ${run.scenario}`, ""];
  out.push(`- Scenario: \`${run.scenarioFile}\``);
  out.push(`- Host: ${hostLine(run)}`);
  const shards = shardLines(run);
  if (shards.length) out.push(`- Merged from ${run.shards!.count} shards: ${shards.map(esc).join("; ")}`);
  out.push(`- Started ${run.startedAt}${run.finishedAt ? `, finished ${run.finishedAt}` : ""}`);
  out.push(run.complete ? "- Run: complete" : `- Run: **INCOMPLETE** (interrupted; ${s.notRun} cells not run)`);
  out.push(
    `- Result: ${s.met} of ${s.cells} cells met their expectation${s.exitCode === 0 ? "" : " (**not all met**)"}`,
  );
  out.push("");

  out.push(`| Guest kernel | ${run.workloads.map(esc).join(" | ")} |`);
  out.push(`|---|${run.workloads.map(() => "---").join("|")}|`);
  for (const row of run.rows) {
    const platform = rowPlatform(row);
    const head =
      `**${esc(row.label)}**${platform ? `<br>${esc(platform)}` : ""}` +
      `${row.description ? `<br>${esc(row.description)}` : ""}`;
    const cells = run.workloads.map((w) => {
      const c = row.cells.find((x) => x.workload === w);
      if (!c) return missingCellLabel(w);
      return (
        esc(cellLabel(c.outcome)) +
        (c.met ? "" : ` ✗ expected ${esc(describeExpectation(c.expected))}`) +
        (c.notes?.length ? `<br>${esc(c.notes.join("; "))}` : "")
      );
    });
    out.push(`| ${head} | ${cells.join(" | ")} |`);
  }
  out.push("", "Legend:", "", ...LEGEND.map((l) => `- ${l}`));

  const crashes = run.rows.flatMap((r) => r.cells.filter((c) => c.outcome.kind === "crash").map((c) => ({ r, c })));
  if (crashes.length) out.push("", "## Crashes");
  for (const { r, c } of crashes) {
    if (c.outcome.kind !== "crash") continue;
    const lines = c.outcome.excerpt.split("\n");
    const shown = lines.slice(0, MAX_EXCERPT_LINES);
    if (lines.length > shown.length)
      shown.push(`[... ${lines.length - shown.length} more lines in the console log ...]`);
    const where = r.artifacts.console ? ` (console: \`${r.artifacts.console}\`)` : "";
    out.push("", `### ${r.label} / ${c.workload}: ${c.outcome.title}${where}`, "", "```", ...shown, "```");
  }
  out.push(...reproLines(run));
  return out.join("\n") + "\n";
}

/** The non-PASS cells' repro bundles (harness/run/repro-bundle.ts), each one script to run without vmrig. */
function reproLines(run: RunResult): string[] {
  const scripts = run.rows.flatMap((r) =>
    Object.entries(r.artifacts)
      .filter(([key]) => key.startsWith("repro-"))
      .map(([key, file]) => `- ${esc(r.label)} / ${esc(key.slice("repro-".length))}: [\`${file}\`](${file})`),
  );
  if (!scripts.length) return [];
  const why = "Each runs the cell again on a Debian machine without vmrig (qemu-system, bash; as root).";
  return ["", "## Repro bundles", "", why, "", ...scripts];
}
