// index.html at the results root: the morning page. Per scenario, the newest run's verdict and
// what changed since the run before (regressions, fixes, flaky cells, each linking to the cell),
// a strip of the last nights, and every run kept with its versions and retention state. Pure.
import { CELL_CLASSES, type CellClass, type CellComparison } from "../../history/compare.ts";
import { anchorId, badge, esc, hrefOf, page, toneColor, type Tone } from "./common.ts";

export interface IndexRun {
  id: string;
  /** report.html relative to the results root, when it exists. */
  href?: string;
  startedAt: string;
  complete: boolean;
  met: number;
  cells: number;
  kernels: string[];
  qemu?: string;
  virtiofsd?: string;
  counts?: Record<CellClass, number>;
  pinned?: string;
  artifacts: "kept" | "compressed" | "pruned";
}

export interface IndexScenario {
  name: string;
  /** Newest first. */
  runs: IndexRun[];
  /** The newest run's notable cells against the run before it. */
  notable: CellComparison[];
  comparedWith?: string;
}

export interface IndexModel {
  generatedAt: string;
  scenarios: IndexScenario[];
  /** Nights shown in the strip. */
  strip?: number;
}

function runTone(r: IndexRun): Tone {
  if (!r.complete) return "dim";
  if (r.counts && r.counts.regression > 0) return "bad";
  return r.met === r.cells && r.cells > 0 ? "good" : "warn";
}

const countsHtml = (c: Record<CellClass, number> | undefined) =>
  c
    ? CELL_CLASSES.filter((k) => k !== "pass" && c[k] > 0)
        .map((k) => `${badge(k)}&nbsp;${c[k]}`)
        .join(" ") || "no change"
    : '<span class="muted">—</span>';

export function renderIndexPage(m: IndexModel): string {
  const body: string[] = [
    `<h1>vmrig results</h1>`,
    `<p class="muted">generated ${esc(m.generatedAt)}; newest runs first</p>`,
  ];
  if (m.scenarios.length === 0) body.push("<p>No runs yet.</p>");
  body.push("<ul>");
  for (const s of m.scenarios)
    body.push(`<li><a href="#${anchorId(s.name)}">${esc(s.name)}</a> ${countsHtml(s.runs[0]?.counts)}</li>`);
  body.push("</ul>");
  for (const s of m.scenarios) {
    const newest = s.runs[0];
    body.push(`<h2 id="${anchorId(s.name)}">${esc(s.name)}</h2>`);
    if (newest) {
      const link = newest.href
        ? `<a href="${esc(hrefOf(newest.href))}">${esc(newest.startedAt)}</a>`
        : esc(newest.startedAt);
      body.push(
        `<p>newest ${link}: <b>${newest.met} of ${newest.cells} cells met their expectation</b>` +
          `${newest.complete ? "" : ' <span class="miss">INCOMPLETE</span>'}` +
          `${s.comparedWith ? `; against ${esc(s.comparedWith)}: ${countsHtml(newest.counts)}` : ""}</p>`,
      );
      if (s.notable.length) {
        body.push("<ul>");
        for (const c of s.notable) {
          const cell = newest.href
            ? `<a href="${esc(hrefOf(newest.href))}#${anchorId(c.kernel, c.workload)}">` +
              `${esc(c.kernel)} / ${esc(c.workload)}</a>`
            : esc(`${c.kernel} / ${c.workload}`);
          const change = c.changes
            .filter((x) => x.what !== "image")
            .map((x) => `${x.what}: ${x.from} → ${x.to}`)
            .join("; ");
          body.push(
            `<li>${badge(c.cls)} ${cell}: ${esc(c.a?.label ?? "—")} → ${esc(c.b?.label ?? "—")}` +
              `${c.note ? ` <span class="muted">(${esc(c.note)})</span>` : ""}` +
              `${change ? `<div class="changes">${esc(change)}</div>` : ""}</li>`,
          );
        }
        body.push("</ul>");
      }
    }
    const strip = s.runs.slice(0, m.strip ?? 30).reverse();
    body.push(
      `<p class="strip">${strip
        .map((r) => {
          const t = toneColor[runTone(r)];
          const title = `${r.startedAt}: ${r.met}/${r.cells} met${r.complete ? "" : ", incomplete"}`;
          return r.href
            ? `<a href="${esc(hrefOf(r.href))}" title="${esc(title)}" style="background:${t.dot}"></a>`
            : `<a title="${esc(title)}" style="background:${t.dot};opacity:.5"></a>`;
        })
        .join("")} <span class="muted">last ${strip.length} runs, oldest left</span></p>`,
    );
    body.push(
      '<table class="grid"><thead><tr><th>run</th><th>cells met</th><th>against the run before</th>' +
        "<th>kernels</th><th>QEMU / virtiofsd</th><th>artifacts</th></tr></thead><tbody>",
    );
    for (const r of s.runs) {
      const t = toneColor[runTone(r)];
      const name = r.href ? `<a href="${esc(hrefOf(r.href))}">${esc(r.startedAt)}</a>` : esc(r.startedAt);
      const pinned = r.pinned
        ? ` <span class="badge" style="background:#0f766e;color:#fff">${esc(r.pinned)}</span>`
        : "";
      body.push(
        `<tr><td>${name}${pinned}</td>` +
          `<td style="background:${t.bg};color:${t.fg}">${r.met} / ${r.cells}` +
          `${r.complete ? "" : " (incomplete)"}</td>` +
          `<td>${countsHtml(r.counts)}</td><td>${esc(r.kernels.join(", "))}</td>` +
          `<td>${esc(r.qemu ?? "?")} / ${esc(r.virtiofsd ?? "?")}</td><td>${r.artifacts}</td></tr>`,
      );
    }
    body.push("</tbody></table>");
  }
  return page("vmrig results", body.join("\n"));
}
