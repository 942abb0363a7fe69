// A cell's trend over the last nights as an inline SVG: one dot per run, coloured by outcome
// (ringed red when the expectation was missed), on a line of the cell's duration (log scale,
// so a step that went from 2 s to 20 s stands out). Each dot links to that night's report.
import { esc, toneColor, toneOfKey } from "./common.ts";
import type { HistoryPoint } from "../../history/compare.ts";

/** A cell's history point (harness/history/compare.ts), with what the page adds to it. */
export interface TrendPoint extends Omit<HistoryPoint, "inputs"> {
  /** Link to that run's report, when it exists. */
  href?: string;
  current?: boolean;
}

const STEP = 14;
const H = 30;
const PAD = 6;

export function trendSvg(points: TrendPoint[]): string {
  if (points.length === 0) return "";
  const w = Math.max(STEP * 2, PAD * 2 + STEP * (points.length - 1));
  const timed = points.filter((p) => p.key && (p.durationMs ?? 0) > 0).map((p) => Math.log10(p.durationMs!));
  const lo = timed.length ? Math.min(...timed) : 0;
  const hi = timed.length ? Math.max(...timed) : 1;
  const y = (p: TrendPoint) => {
    if (!p.key || !(p.durationMs! > 0)) return H - PAD;
    if (hi - lo < 1e-9) return H / 2;
    return H - PAD - ((Math.log10(p.durationMs!) - lo) / (hi - lo)) * (H - 2 * PAD);
  };
  const x = (i: number) => PAD + i * STEP;
  const line = points
    .map((p, i) => ({ p, i }))
    .filter(({ p }) => p.key && (p.durationMs ?? 0) > 0)
    .map(({ p, i }) => `${x(i).toFixed(1)},${y(p).toFixed(1)}`);
  const parts: string[] = [];
  if (line.length > 1)
    parts.push(`<polyline points="${line.join(" ")}" fill="none" stroke="#8c959f" stroke-width="1.2"/>`);
  points.forEach((p, i) => {
    const title =
      `${p.startedAt.replace("T", " ").replace(/\.\d+Z$/, "Z")}: ${p.label ?? "not in this run"}` +
      `${p.met === false ? " (missed expectation)" : ""}` +
      `${p.durationMs ? `, ${(p.durationMs / 1000).toFixed(1)} s` : ""}`;
    const r = p.current ? 5 : 3.5;
    const dot = p.key
      ? `<circle cx="${x(i)}" cy="${y(p).toFixed(1)}" r="${r}" fill="${toneColor[toneOfKey(p.key)].dot}"` +
        `${p.met === false ? ` stroke="#7f1d1d" stroke-width="1.6"` : ""}/>`
      : `<circle cx="${x(i)}" cy="${H - PAD}" r="2.5" fill="none" stroke="#9a9a9a"/>`;
    const inner = `<title>${esc(title)}</title>${dot}`;
    parts.push(p.href && !p.current ? `<a href="${esc(p.href)}">${inner}</a>` : `<g>${inner}</g>`);
  });
  return (
    `<svg class="trend" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${H}" viewBox="0 0 ${w} ${H}" ` +
    `role="img" aria-label="trend over ${points.length} runs">${parts.join("")}</svg>`
  );
}
