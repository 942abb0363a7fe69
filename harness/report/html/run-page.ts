// report.html of one run: the comparison table (a row per kernel, a column per workload) with
// coloured cells, each cell linking to its evidence (console log, dmesg, stacks, virtiofsd log,
// QEMU command line), marked with what changed since the previous run (regression, fix,
// flaky...) and a trend over the last nights. Pure: the model says which files exist.
import type { CellResult, KernelRowResult } from "../../types.ts";
import type { RunRecord } from "../../history/history.ts";
import { CELL_CLASSES, type CellComparison, type Comparison } from "../../history/compare.ts";
import { describeExpectation } from "../../classify/expect.ts";
import { cellDetail, cellLabel } from "../../classify/labels.ts";
import { missingCellLabel, summarise } from "../summary.ts";
import { anchorId, badge, esc, hrefOf, legend, page, toneColor, toneOf } from "./common.ts";
import { trendSvg, type TrendPoint } from "./trend.ts";
import { formatBootPhases, rowPlatform, shardLines } from "../row-facts.ts";

/** An artifact as it is on disk now: still plain, compressed by retention, or gone. */
export interface ArtifactLink {
  /** The path results.json recorded, relative to the run directory. */
  rel: string;
  /** What to link (rel, or rel + ".gz"), relative to the run directory; absent when gone. */
  href?: string;
  state: "plain" | "gz" | "missing";
}

export interface RunPageModel {
  run: RunRecord;
  /** This run against the previous complete run (or a baseline). */
  comparison?: Comparison;
  /** Link to the compared run's report, relative to this run's directory. */
  comparedHref?: string;
  comparedWhat?: string;
  /** Trend points per `${kernel}\0${workload}`, oldest first, this run last. */
  trends: Record<string, TrendPoint[]>;
  /** Every artifact path of every row, resolved. */
  artifacts: Record<string, ArtifactLink>;
  /** Other files of the run directory that exist (results.json, results.md, junit.xml, scenario.yaml). */
  files: string[];
  /** Link to the index over runs, relative to this run's directory. */
  indexHref?: string;
  pinned?: string;
}

export const trendKey = (kernel: string, workload: string) => `${kernel}\0${workload}`;

const ARTIFACT_TITLES: Record<string, string> = {
  console: "console",
  "console-failed-boot": "console (failed boot)",
  dmesg: "dmesg",
  qemuCmdline: "QEMU cmdline",
  qemuStderr: "QEMU stderr",
};

function artifactTitle(key: string): string {
  const boot = /-boot(\d+)$/.exec(key);
  const base = boot ? key.slice(0, -boot[0].length) : key;
  const name =
    ARTIFACT_TITLES[base] ??
    (/stack/i.test(base)
      ? base === "stacks"
        ? "stacks"
        : base.replace(/^stacks?[-_]?/i, "stacks ").trim()
      : base.startsWith("virtiofsd-")
        ? `virtiofsd ${base.slice("virtiofsd-".length)}`
        : base);
  return boot ? `${name} (boot ${boot[1]})` : name;
}

const ORDER = [/^console/, /^dmesg/, /stack/i, /^virtiofsd/, /^qemuCmdline/, /^qemuStderr/];
const rank = (k: string) => {
  const i = ORDER.findIndex((re) => re.test(k));
  return i < 0 ? ORDER.length : i;
};

/** The row's artifacts that belong to this cell: row-wide ones, and those named after the workload. */
function cellArtifacts(row: KernelRowResult, workload: string, workloads: string[]): Array<[string, string]> {
  const others = workloads.filter((w) => w !== workload);
  // A search's probes are linked from its probe table, not from the cell.
  return Object.entries(row.artifacts)
    .filter(([k]) => !k.startsWith("search-"))
    .filter(([k]) => k.includes(workload) || !others.some((w) => k.includes(w)))
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
}

function linksHtml(m: RunPageModel, entries: Array<[string, string]>): string {
  return entries
    .map(([key, rel]) => {
      const a = m.artifacts[rel];
      const title = artifactTitle(key);
      if (!a?.href) return `<span class="gone" title="${esc(rel)}: removed by retention">${esc(title)}</span>`;
      return `<a href="${esc(hrefOf(a.href))}">${esc(title)}${a.state === "gz" ? " (.gz)" : ""}</a>`;
    })
    .join(" ");
}

function cellHtml(m: RunPageModel, row: KernelRowResult, workload: string, cmp: CellComparison | undefined): string {
  const c: CellResult | undefined = row.cells.find((x) => x.workload === workload);
  const points = m.trends[trendKey(row.label, workload)] ?? [];
  const links = linksHtml(m, cellArtifacts(row, workload, m.run.result.workloads));
  const id = anchorId(row.label, workload);
  if (!c) {
    const t = toneColor.dim;
    return (
      `<td class="cell" id="${id}" style="background:${t.bg};color:${t.fg}"><div class="label">${missingCellLabel(workload)}</div>` +
      `${cmp ? badge(cmp.cls) : ""}${trendSvg(points)}<div class="links">${links}</div></td>`
    );
  }
  const t = toneColor[toneOf[c.outcome.kind]];
  const parts = [`<div class="label">${esc(cellLabel(c.outcome))}</div>`];
  if (!c.met) parts.push(`<div class="miss">✗ expected ${esc(describeExpectation(c.expected))}</div>`);
  if (cmp && cmp.cls !== "pass") {
    parts.push(
      `<div>${badge(cmp.cls)}` +
        `${cmp.a && cmp.a.key !== cmp.b?.key ? ` <span class="muted">was ${esc(cmp.a.label)}</span>` : ""}</div>`,
    );
    const changed = cmp.changes.filter((x) => x.what !== "image");
    if (changed.length) parts.push(`<div class="changes">changed: ${changed.map((x) => esc(x.what)).join(", ")}</div>`);
  }
  parts.push(trendSvg(points));
  parts.push(`<div class="links">${links}${hasDetail(c, cmp) ? ` <a href="#${id}-detail">details</a>` : ""}</div>`);
  return `<td class="cell" id="${id}" style="background:${t.bg};color:${t.fg}">${parts.join("")}</td>`;
}

/** Passing, unchanged cells need no paragraph of their own. */
const hasDetail = (c: CellResult, cmp: CellComparison | undefined) =>
  !(c.outcome.kind === "pass" && c.met && (!cmp || cmp.cls === "pass"));

function detailHtml(m: RunPageModel, row: KernelRowResult, c: CellResult, cmp: CellComparison | undefined): string {
  const id = anchorId(row.label, c.workload);
  const out = [
    `<h3 id="${id}-detail">${esc(row.label)} / ${esc(c.workload)}: ${esc(cellLabel(c.outcome))}</h3>`,
    '<ul class="facts">',
  ];
  out.push(
    `<li>expected ${esc(describeExpectation(c.expected))}: ${c.met ? "met" : '<span class="miss">missed</span>'}; ` +
      `took ${(c.durationMs / 1000).toFixed(1)} s</li>`,
  );
  if (cmp) {
    out.push(
      `<li>against ${esc(m.comparedWhat ?? "the previous run")}: ${badge(cmp.cls) || "unchanged"}` +
        `${cmp.a && cmp.a.key !== cmp.b?.key ? ` was ${esc(cmp.a.label)}` : ""}` +
        `${cmp.note ? ` (${esc(cmp.note)})` : ""}</li>`,
    );
    for (const ch of cmp.changes) out.push(`<li class="changes">${esc(ch.what)}: ${esc(ch.from)} → ${esc(ch.to)}</li>`);
  }
  if (c.outcome.kind === "crash" && c.outcome.signature)
    out.push(`<li>signature: <code>${esc(c.outcome.signature)}</code></li>`);
  out.push("</ul>");
  const detail = cellDetail(c.outcome);
  if (detail && detail.includes("\n")) out.push(`<pre>${esc(detail)}</pre>`);
  else if (detail) out.push(`<p>${esc(detail)}</p>`);
  out.push(searchProbesHtml(m, c));
  const stacks = c.evidence?.stacks;
  if (typeof stacks === "string" && stacks) out.push(`<p>blocked-task stacks:</p><pre>${esc(stacks)}</pre>`);
  const msgs = c.evidence?.kernelMessages;
  if (typeof msgs === "string" && msgs.trim())
    out.push(`<details><summary>kernel messages during the step</summary><pre>${esc(msgs)}</pre></details>`);
  out.push(
    `<p class="links">${linksHtml(m, cellArtifacts(row, c.workload, m.run.result.workloads))} ` +
      `<a href="#${id}">back to the table</a></p>`,
  );
  return out.join("\n");
}

/** A search's probes in the order they ran: value, outcome, seconds (empty for other cells). */
function searchProbesHtml(m: RunPageModel, c: CellResult): string {
  const search = c.evidence?.search as { probes?: Array<Record<string, unknown>> } | undefined;
  if (!Array.isArray(search?.probes) || search.probes.length === 0) return "";
  const rows = search.probes.map((p) => {
    const outcome = p.outcome as CellResult["outcome"];
    const seconds = (Number(p.durationMs) / 1000).toFixed(1);
    const files = Array.isArray(p.artifacts) ? (p.artifacts as string[]) : [];
    const links = linksHtml(
      m,
      files.map((rel): [string, string] => [rel.split("/").pop() ?? rel, rel]),
    );
    return (
      `<tr><td>${esc(String(p.label))}</td><td>${esc(cellLabel(outcome))}</td><td>${seconds} s</td>` +
      `<td class="links">${links}</td></tr>`
    );
  });
  return (
    `<details><summary>${rows.length} probes, in the order they ran</summary><table class="probes">` +
    `<tr><th>value</th><th>outcome</th><th>took</th><th>evidence</th></tr>${rows.join("")}</table></details>`
  );
}

export function renderRunPage(m: RunPageModel): string {
  const r = m.run.result;
  const s = summarise(r);
  const h = r.host;
  const title = `vmrig: ${r.scenario} — ${r.startedAt}`;
  const body: string[] = [];
  body.push(`<h1>${esc(r.scenario)} <span class="muted">${esc(r.startedAt)}</span></h1>`);
  body.push('<ul class="facts">');
  if (m.indexHref) body.push(`<li><a href="${esc(m.indexHref)}">all runs</a></li>`);
  const pinned = m.pinned
    ? ` <span class="badge" style="background:#0f766e;color:#fff">PINNED: ${esc(m.pinned)}</span>`
    : "";
  body.push(`<li>scenario ${esc(r.scenarioFile)}; run ${esc(m.run.id)}${pinned}</li>`);
  body.push(
    `<li>host ${esc(h.hostname)}; QEMU ${esc(h.qemu ?? "unknown")}; virtiofsd ${esc(h.virtiofsd ?? "unknown")}; ` +
      `accel ${esc(h.accel ?? "unknown")}` +
      `${h.accelNote ? ` <span class="muted">(${esc(h.accelNote)})</span>` : ""}</li>`,
  );
  const shards = shardLines(r);
  if (shards.length)
    body.push(`<li>merged from ${r.shards!.count} shards: ${shards.map((l) => esc(l)).join("; ")}</li>`);
  body.push(
    `<li>${r.complete ? "complete" : `<span class="miss">INCOMPLETE</span> (${s.notRun} cells not run)`}; ` +
      `finished ${esc(r.finishedAt ?? "—")}</li>`,
  );
  body.push(`<li><b>${s.met} of ${s.cells} cells met their expectation</b></li>`);
  if (m.comparison) {
    const counts = CELL_CLASSES.filter((c) => c !== "pass" && m.comparison!.counts[c] > 0).map(
      (c) => `${badge(c)} ${m.comparison!.counts[c]}`,
    );
    const against = m.comparedHref
      ? `<a href="${esc(m.comparedHref)}">${esc(m.comparison.a.id)}</a>`
      : esc(m.comparison.a.id);
    body.push(
      `<li class="counts">against ${esc(m.comparedWhat ?? "the previous run")} ${against}: ` +
        `${counts.length ? counts.join(" ") : "no change"}</li>`,
    );
  } else body.push('<li class="muted">no earlier complete run to compare with</li>');
  const files = m.files.map((f) => `<a href="${esc(hrefOf(f))}">${esc(f)}</a>`).join(" ");
  if (files) body.push(`<li class="links">${files}</li>`);
  body.push("</ul>");

  const cmpOf = (k: string, w: string) => m.comparison?.cells.find((c) => c.kernel === k && c.workload === w);
  body.push('<table class="grid"><thead><tr><th>Guest kernel</th>');
  for (const w of r.workloads) body.push(`<th>${esc(w)}</th>`);
  body.push("</tr></thead><tbody>");
  for (const row of r.rows) {
    const ident =
      typeof row.evidence?.kernel === "string" ? `<div class="ident">${esc(row.evidence.kernel)}</div>` : "";
    const scale = typeof row.evidence?.timeScale === "number" ? `, timeouts x${row.evidence.timeScale.toFixed(1)}` : "";
    const phases = row.bootPhases ? ` title="${esc(formatBootPhases(row.bootPhases))}"` : "";
    const boot =
      row.bootMs !== undefined
        ? `<div class="kdesc"${phases}>boot to SSH ${(row.bootMs / 1000).toFixed(1)} s${scale}</div>`
        : "";
    const platform = rowPlatform(row);
    const where = platform ? `<div class="kdesc">${esc(platform)}</div>` : "";
    body.push(
      `<tr><th><div>${esc(row.label)}</div>${where}` +
        `<div class="kdesc">${esc(row.description)}</div>${ident}${boot}</th>`,
    );
    for (const w of r.workloads) body.push(cellHtml(m, row, w, cmpOf(row.label, w)));
    body.push("</tr>");
  }
  body.push("</tbody></table>");
  body.push(legend());

  const gone = m.comparison?.cells.filter((c) => c.cls === "removed") ?? [];
  if (gone.length)
    body.push(
      `<p class="muted">cells of ${esc(m.comparison!.a.id)} not in this run: ` +
        `${gone.map((c) => esc(`${c.kernel}/${c.workload}`)).join(", ")}</p>`,
    );

  body.push("<h2>Cells that did not simply pass</h2>");
  for (const row of r.rows) {
    for (const w of r.workloads) {
      const c = row.cells.find((x) => x.workload === w);
      if (c && hasDetail(c, cmpOf(row.label, w))) body.push(detailHtml(m, row, c, cmpOf(row.label, w)));
    }
  }
  return page(title, body.join("\n"));
}
