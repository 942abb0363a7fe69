// Shared pieces of the static HTML reports: escaping, colours, the page frame. No scripts, no
// external resources: a report opens from a CI artifact archive or a file:// URL as it is.
import type { CellClass } from "../../history/compare.ts";

export const esc = (s: string | number | null | undefined) =>
  String(s ?? "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");

/** A relative path as an href: each segment percent-encoded, separators kept. */
export const hrefOf = (rel: string) => rel.split("/").map(encodeURIComponent).join("/");

/** An id safe in HTML and in a URL fragment. */
export const anchorId = (...parts: string[]) => "c-" + parts.map((p) => p.replace(/[^A-Za-z0-9_.-]/g, "_")).join("--");

export { toneOf, type Tone } from "../tone.ts";
import type { Tone } from "../tone.ts";

/** Tone from an outcome key (compare.ts outcomeKey), for history points. */
export function toneOfKey(key: string | undefined): Tone {
  if (!key) return "dim";
  if (key === "PASS") return "good";
  if (key.startsWith("-") || key === "FAIL" || key.startsWith("SHORT")) return "warn";
  if (key === "INFRA") return "infra";
  if (key === "NOT-RUN") return "dim";
  return "bad";
}

export const toneColor: Record<Tone, { bg: string; fg: string; dot: string }> = {
  good: { bg: "#dff3df", fg: "#14532d", dot: "#2e9d4a" },
  warn: { bg: "#fff1c7", fg: "#6b4e00", dot: "#d69e00" },
  bad: { bg: "#f9d4d4", fg: "#7f1d1d", dot: "#d33b3b" },
  infra: { bg: "#eadff7", fg: "#4c1d95", dot: "#8b5cc6" },
  dim: { bg: "#efefef", fg: "#555555", dot: "#9a9a9a" },
};

export const classStyle: Record<CellClass, { text: string; bg: string; fg: string }> = {
  regression: { text: "REGRESSION", bg: "#b91c1c", fg: "#ffffff" },
  fix: { text: "FIX", bg: "#15803d", fg: "#ffffff" },
  flaky: { text: "FLAKY", bg: "#c2410c", fg: "#ffffff" },
  "still-failing": { text: "STILL FAILING", bg: "#7f1d1d", fg: "#ffffff" },
  infra: { text: "NO VERDICT", bg: "#6d28d9", fg: "#ffffff" },
  new: { text: "NEW", bg: "#1d4ed8", fg: "#ffffff" },
  removed: { text: "REMOVED", bg: "#525252", fg: "#ffffff" },
  pass: { text: "", bg: "transparent", fg: "inherit" },
};

export const badge = (cls: CellClass) => {
  const s = classStyle[cls];
  return s.text ? `<span class="badge" style="background:${s.bg};color:${s.fg}">${s.text}</span>` : "";
};

const CSS =
  `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;` +
  `margin:20px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:24px 0 8px}
.facts{color:#444;margin:0 0 12px;padding:0;list-style:none} .facts li{margin:2px 0}
table.grid{border-collapse:collapse;margin:8px 0}
table.grid th,table.grid td{border:1px solid #c9ced6;padding:6px 8px;vertical-align:top;text-align:left}
table.grid th{background:#f3f4f6}
td.cell{min-width:190px;max-width:320px}
.label{font-weight:600;word-break:break-word}
.miss{color:#b91c1c;font-weight:700}
.badge{display:inline-block;font-size:11px;font-weight:700;border-radius:3px;padding:1px 5px;margin:2px 0}
.links{font-size:12px;margin-top:4px} .links a{margin-right:6px;white-space:nowrap}
.gone{color:#888;text-decoration:line-through;margin-right:6px}
.changes{font-size:12px;color:#333;margin-top:3px}
.kdesc{font-size:12px;color:#555} ` +
  `.ident{font-family:ui-monospace,monospace;font-size:11px;color:#666;word-break:break-all}
.counts span{margin-right:10px}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:8px;overflow:auto;max-height:420px;font-size:12px}
.legend span{display:inline-block;padding:1px 6px;margin:2px 6px 2px 0;border-radius:3px}
svg.trend{display:block;margin-top:4px}
.strip a{display:inline-block;width:14px;height:14px;margin-right:2px;border-radius:2px;vertical-align:middle}
.muted{color:#666}
`;

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

export function legend(): string {
  const item = (t: Tone, text: string) =>
    `<span style="background:${toneColor[t].bg};color:${toneColor[t].fg}">${esc(text)}</span>`;
  return (
    `<p class="legend">${item("good", "PASS")}${item("warn", "-EXXX / FAIL")}` +
    `${item("bad", "HANG / CRASH / BOOT-FAIL")}${item("infra", "INFRA (says nothing about the kernel)")}` +
    `${item("dim", "NOT RUN")}<span class="miss">✗ expected X</span>: missed its expectation</p>`
  );
}
