// KTAP v1 (the kernel's Documentation/dev-tools/ktap.rst) and the TAP 13 that kselftest prints,
// read into test cases. Pure: the ktap workload kind (ktap.ts) turns the cases into cells.
//
//   KTAP version 1 | TAP version 13      a test's output begins (nested: indented further)
//   1..N                                 the plan
//   # text                               a diagnostic: it belongs to the next result at its depth
//   ok N name # SKIP reason              a result, with an optional directive
//   not ok N name                        kselftest.h writes "ok N # SKIP reason" (no name)
//   Bail out! reason                     the producer gave up

export type KtapDirective = "SKIP" | "TODO" | "XFAIL" | "XPASS" | "ERROR";

export interface KtapCase {
  /** Parent names joined with "/" for a nested subtest ("suite/case"); unique within a report. */
  name: string;
  number: number;
  ok: boolean;
  directive?: KtapDirective;
  /** The directive's text ("SKIP no statmount"). */
  reason?: string;
  /** Diagnostic lines printed before the result, without their "# ". */
  diagnostics: string[];
}

export interface KtapReport {
  /** "KTAP version 1", "TAP version 13": absent when the output has no header. */
  version?: string;
  /** The top level's `1..N`. */
  planned?: number;
  /** Result lines at the top level: fewer than planned means the output was cut short. */
  results: number;
  /** Leaf test cases in output order (a suite whose subtests were reported is its subtests). */
  cases: KtapCase[];
  bailOut?: string;
  /** kselftest's closing "# Totals: pass:3 fail:1 ...", when printed. */
  totals?: string;
}

const PRINTK_TIME = /^\[\s*\d+\.\d+\] ?/;
const VERSION = /^(KTAP version \d+|TAP version \d+)\s*$/;
const PLAN = /^1\.\.(\d+)/;
const RESULT = /^(not ok|ok)\s+(\d+)\s*(?:-\s+)?(.*)$/;
const DIRECTIVE = /(?:^|\s)#\s*(SKIP|TODO|XFAIL|XPASS|error)\b\s*(.*)$/i;

/** One depth's results not yet claimed by a parent, and its unclaimed diagnostics. */
interface Level {
  cases: KtapCase[];
  diagnostics: string[];
}

export function parseKtap(output: string): KtapReport {
  const report: KtapReport = { cases: [], results: 0 };
  // Keyed by indentation width: spaces before the line (KTAP nests by four, some producers by two).
  const levels = new Map<number, Level>();
  const level = (indent: number) =>
    levels.get(indent) ?? levels.set(indent, { cases: [], diagnostics: [] }).get(indent)!;
  let top: number | undefined;
  for (const line0 of output.replace(/\r/g, "").split("\n")) {
    // KUnit's results read from the kernel log carry printk's "[    0.060000] " first.
    const raw = line0.replace(PRINTK_TIME, "");
    const indent = raw.length - raw.trimStart().length;
    const line = raw.trim();
    if (VERSION.test(line)) {
      if (top === undefined || indent < top) [top, report.version] = [indent, line];
      continue;
    }
    const plan = PLAN.exec(line);
    if (plan && indent === (top ?? indent) && report.planned === undefined) report.planned = Number(plan[1]);
    else if (line.startsWith("Bail out!")) report.bailOut = line.slice("Bail out!".length).trim();
    else if (line.startsWith("# Totals:")) report.totals = line.slice(2);
    else if (line.startsWith("#")) diagnostic(level(indent), line);
    else if (RESULT.test(line)) {
      result(levels, indent, RESULT.exec(line)!);
      if (indent === (top ?? indent)) report.results++;
    }
  }
  report.cases = uniqueNames([...levels.entries()].sort(([a], [b]) => a - b).flatMap(([, l]) => l.cases));
  return report;
}

function diagnostic(l: Level, line: string): void {
  const text = line.replace(/^#\s?/, "");
  // "# Subtest: name" only announces a nested test; its result line names it again.
  if (!text.startsWith("Subtest:")) l.diagnostics.push(text);
}

/** A result claims its depth's diagnostics and every deeper result not yet claimed (its subtests). */
function result(levels: Map<number, Level>, indent: number, m: RegExpExecArray): void {
  const [, status, number, rest] = m;
  const d = DIRECTIVE.exec(rest!);
  const name = (d ? rest!.slice(0, d.index) : rest!).trim();
  const here = levels.get(indent) ?? { cases: [], diagnostics: [] };
  levels.set(indent, here);
  const c: KtapCase = { name, number: Number(number), ok: status === "ok", diagnostics: here.diagnostics.splice(0) };
  if (d) [c.directive, c.reason] = [d[1]!.toUpperCase() as KtapDirective, d[2]!.trim()];
  if (!c.name) c.name = c.reason || `test ${c.number}`;
  const children: KtapCase[] = [];
  for (const [deeper, l] of levels) {
    if (deeper <= indent) continue;
    children.push(...l.cases.splice(0));
    l.diagnostics.splice(0);
  }
  const prefixed = children.map((k) => ({ ...k, name: `${c.name}/${k.name}` }));
  here.cases.push(...prefixed);
  // A suite that failed with no failing subtest (it died between them) keeps a case of its own.
  if (!children.length || (isFailure(c) && !children.some(isFailure))) here.cases.push(c);
}

export function isFailure(c: KtapCase): boolean {
  return c.directive === "ERROR" || (!c.ok && c.directive !== "SKIP" && c.directive !== "TODO");
}

/** Two cases with one name (kselftest.h names a case by its message) get their numbers appended. */
function uniqueNames(cases: KtapCase[]): KtapCase[] {
  const count = new Map<string, number>();
  for (const c of cases) count.set(c.name, (count.get(c.name) ?? 0) + 1);
  return cases.map((c) => (count.get(c.name)! > 1 ? { ...c, name: `${c.name} #${c.number}` } : c));
}
