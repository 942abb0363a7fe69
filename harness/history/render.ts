// Comparisons in words: the terminal/Markdown text of `vmrig compare` and the nightly summary.
// Notable cells first (regressions, fixes, flaky, still failing, no verdict, new, removed), each
// with its outcomes and the inputs that changed; passing cells are only counted. Pure.
import { CELL_CLASSES, type CellClass, type CellComparison, type Comparison } from "./compare.ts";

export const CLASS_TITLES: Record<CellClass, string> = {
  regression: "Regressions (new failures)",
  fix: "Fixes (new passes)",
  flaky: "Flaky",
  "still-failing": "Still failing",
  infra: "No verdict (INFRA / not run)",
  new: "New cells",
  removed: "Removed cells",
  pass: "Passing",
};

const plural = (n: number, one: string, many = one + "s") => `${n} ${n === 1 ? one : many}`;

export function countsLine(c: Record<CellClass, number>): string {
  const parts = [
    plural(c.regression, "regression"),
    plural(c.fix, "fix", "fixes"),
    `${c.flaky} flaky`,
    `${c["still-failing"]} still failing`,
    `${c.infra} without verdict`,
  ];
  if (c.new) parts.push(`${c.new} new`);
  if (c.removed) parts.push(`${c.removed} removed`);
  parts.push(`${c.pass} passing`);
  return parts.join(", ");
}

function cellLine(c: CellComparison, md: boolean): string[] {
  const code = (s: string) => (md ? `\`${s.replace(/`/g, "'")}\`` : s);
  const was = c.a ? code(c.a.label) : "—";
  const now = c.b ? code(c.b.label) : "—";
  const miss = c.b && !c.b.met ? " ✗" : "";
  const head =
    `${md ? "- " : "  "}${md ? `**${c.kernel} / ${c.workload}**` : `${c.kernel} / ${c.workload}`}: ` +
    `${was} -> ${now}${miss}${c.note ? ` (${c.note})` : ""}`;
  const lines = [head];
  for (const ch of c.changes) {
    if (ch.what === "image" && c.changes.some((x) => x.what === "kernel")) continue;
    lines.push(`${md ? "  - " : "      "}${ch.what}: ${ch.from} -> ${ch.to}`);
  }
  return lines;
}

export function renderComparison(c: Comparison, opts: { markdown?: boolean; title?: string } = {}): string {
  const md = opts.markdown ?? false;
  const out: string[] = [];
  const title = opts.title ?? `${c.scenario}: ${c.a.id} -> ${c.b.id}`;
  out.push(md ? `## ${title}` : title);
  if (md) out.push("");
  if (!c.b.complete) out.push(`${md ? "" : "  "}(the newer run is INCOMPLETE)`);
  out.push(`${md ? "" : "  "}${countsLine(c.counts)}`);
  for (const cls of CELL_CLASSES) {
    if (cls === "pass") continue;
    const cells = c.cells.filter((x) => x.cls === cls);
    if (!cells.length) continue;
    out.push(md ? `\n### ${CLASS_TITLES[cls]}\n` : `\n${CLASS_TITLES[cls]}:`);
    for (const cell of cells) out.push(...cellLine(cell, md));
  }
  return out.join("\n") + "\n";
}

export interface SummaryEntry {
  scenario: string;
  comparison?: Comparison;
  /** When there is nothing to compare with. */
  only?: { id: string; met: number; cells: number; complete: boolean };
}

export function renderSummary(
  entries: SummaryEntry[],
  opts: { markdown?: boolean; generatedAt: string; against: string },
): string {
  const md = opts.markdown ?? false;
  const total = Object.fromEntries(CELL_CLASSES.map((k) => [k, 0])) as Record<CellClass, number>;
  for (const e of entries) if (e.comparison) for (const k of CELL_CLASSES) total[k] += e.comparison.counts[k];
  const out = [md ? `# vmrig nightly summary` : `vmrig nightly summary`, ""];
  out.push(`${entries.length} scenarios, newest run of each against ${opts.against}; generated ${opts.generatedAt}`);
  out.push(`total: ${countsLine(total)}`, "");
  for (const e of entries) {
    if (e.comparison)
      out.push(
        renderComparison(e.comparison, {
          markdown: md,
          title: `${e.scenario}: ${e.comparison.b.id} against ${e.comparison.a.id}`,
        }),
      );
    else if (e.only)
      out.push(
        `${md ? "## " : ""}${e.scenario}: ${e.only.id}: ${e.only.met} of ${e.only.cells} met` +
          `${e.only.complete ? "" : " (INCOMPLETE)"}; nothing earlier to compare with\n`,
      );
  }
  return out.join("\n");
}
