// The terminal table the seeds print by hand: a row per kernel, a column per workload.
//
//   Guest kernel                    │ getdents                          │ read
//   ────────────────────────────────┼───────────────────────────────────┼─────
//   stock — Debian 6.12.95 cloud    │ -EIO, mount wedged ✗ expected PASS │ PASS
//
// A cell shows its label, and a mark only when it missed its expectation. Colour only when
// asked (the caller knows whether the stream is a TTY). Columns shrink, widest first, to fit
// `width`; a truncated cell keeps its mark, since the mark is what a reader scans for.
import { toneOf, type Tone as CellTone } from "./tone.ts";
import type { CellResult, KernelRowResult, RunResult } from "../types.ts";
import { describeExpectation } from "../classify/expect.ts";
import { cellLabel } from "../classify/labels.ts";
import { missingCellLabel, summarise } from "./summary.ts";
import { footnotes, rowHeading } from "./row-facts.ts";

export interface TableOptions {
  color: boolean;
  /** Total width in columns. Without it, no total limit, but each cell is capped at CELL_CAP. */
  width?: number;
}

type Tone = CellTone | "plain";

interface Piece {
  text: string;
  tone: Tone;
  /** "✗ expected PASS" when the cell missed its expectation. */
  mark?: string;
}

const CELL_CAP = 48;
const MIN_COLUMN = 8;
const SEP = " │ ";

const ANSI: Record<Tone, string> = { good: "32", warn: "33", bad: "31", infra: "35", dim: "2", plain: "" };
const MARK_ANSI = "1;31";

const len = (s: string) => [...s].length;
const cut = (s: string, n: number) =>
  len(s) <= n ? s : n <= 1 ? "…".slice(0, n) : [...s].slice(0, n - 1).join("") + "…";

function cellPiece(w: string, c: CellResult | undefined, marker = ""): Piece {
  if (!c) return { text: missingCellLabel(w), tone: "dim" };
  const piece: Piece = { text: cellLabel(c.outcome) + marker, tone: toneOf[c.outcome.kind] };
  if (!c.met) piece.mark = `✗ expected ${describeExpectation(c.expected)}`;
  return piece;
}

function rowPieces(
  run: RunResult,
  row: KernelRowResult,
  marker: (kernel: string, workload: string) => string,
): Piece[] {
  const head = rowHeading(row);
  return [
    { text: head, tone: "plain" },
    ...run.workloads.map((w) =>
      cellPiece(
        w,
        row.cells.find((c) => c.workload === w),
        marker(row.label, w),
      ),
    ),
  ];
}

const natural = (p: Piece) => len(p.text) + (p.mark ? 1 + len(p.mark) : 0);

/** Marks from long to short; a narrow cell takes the longest that leaves its label readable. */
const markVariants = (expected: string) => [`✗ expected ${expected}`, `✗ exp ${expected}`, "✗"];
const LABEL_KEEP = 10;

/** Fit a piece into exactly `w` columns: shorten the mark while the label would suffer, then the label. */
function fit(p: Piece, w: number, color: boolean): string {
  let text = p.text;
  let mark = p.mark;
  if (natural(p) > w) {
    if (mark) {
      const keep = Math.min(len(text), LABEL_KEEP);
      const expected = mark.replace(/^✗ expected /, "");
      mark = markVariants(expected).find((m) => len(m) + 1 + keep <= w) ?? "✗";
    }
    text = cut(text, Math.max(1, mark ? w - len(mark) - 1 : w));
  }
  const plainWidth = len(text) + (mark ? 1 + len(mark) : 0);
  const paint = (s: string, code: string) => (color && code ? `\x1b[${code}m${s}\x1b[0m` : s);
  return (
    paint(text, ANSI[p.tone]) + (mark ? " " + paint(mark, MARK_ANSI) : "") + " ".repeat(Math.max(0, w - plainWidth))
  );
}

function columnWidths(table: Piece[][], width: number | undefined): number[] {
  const cap = width === undefined ? CELL_CAP : Infinity;
  const widths = table[0]!.map((_, i) => Math.min(cap, Math.max(...table.map((r) => natural(r[i]!)))));
  if (width === undefined) return widths;
  const room = width - SEP.length * (widths.length - 1);
  // Take one column from the widest column until the table fits or nothing can shrink.
  while (widths.reduce((a, b) => a + b, 0) > room) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest]! <= MIN_COLUMN) break;
    widths[widest]!--;
  }
  return widths;
}

export function renderTerminalTable(run: RunResult, opts: TableOptions): string {
  const header: Piece[] = [
    { text: "Guest kernel", tone: "plain" },
    ...run.workloads.map((w): Piece => ({ text: w, tone: "plain" })),
  ];
  const notes = footnotes(run);
  const table = [header, ...run.rows.map((r) => rowPieces(run, r, notes.marker))];
  const widths = columnWidths(table, opts.width);
  const line = (r: Piece[]) =>
    r
      .map((p, i) => fit(p, widths[i]!, opts.color))
      .join(SEP)
      .trimEnd();
  const out = [line(header), widths.map((w) => "─".repeat(w)).join("─┼─"), ...table.slice(1).map(line)];
  if (notes.notes.length) out.push("", ...notes.notes.map((f) => `[${f.n}] ${f.kernel} / ${f.workload}: ${f.text}`));

  const s = summarise(run);
  let footer = `${s.met} of ${s.cells} cells met their expectation`;
  if (!run.complete) footer += `; run INCOMPLETE (${s.notRun} not run)`;
  out.push("", opts.color && s.exitCode !== 0 ? `\x1b[1m${footer}\x1b[0m` : footer);
  return out.join("\n");
}
