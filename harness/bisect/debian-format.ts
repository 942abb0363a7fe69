// What a bisect over Debian packages prints: the list it searched, a line per step, the answer
// with its upstream versions, changelog entries and the source bisect that continues. Pure.
import type { ChangelogEntry } from "../debian/changelog.ts";
import { cellSummary, formatConfidence, formatSeconds, stepLabel } from "./format.ts";
import type { DebianAnswer, DebianBisectParams, ListedVersion } from "./debian-state.ts";
import { listSteps } from "./debian-range.ts";
import type { BisectResult, StepRecord } from "./state.ts";

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

const familyName = (p: DebianBisectParams) =>
  p.family === "kernel" ? `Debian ${p.what} kernels` : `Debian ${p.what} builds`;

/** The header, the suites searched and the list, one line per version. */
export function debianHeaderLines(
  p: DebianBisectParams,
  suites: readonly string[],
  versions: readonly ListedVersion[],
  stepsBefore: number,
): string[] {
  const cell = `cell ${p.kernel} x ${p.workload}, ${plural(p.repeat, "run")} per version`;
  const resuming = stepsBefore > 0 ? `; resuming (${plural(stepsBefore, "step")} done before)` : "";
  const width = Math.max(...versions.map((v) => v.version.length));
  return [
    `bisect ${plural(versions.length, "version")} of ${familyName(p)} ${p.good}..${p.bad} ` +
      `(${p.goodSpec}..${p.badSpec}): ` +
      `at most ${listSteps(versions.length)} steps after the ends; ${cell}${resuming}`,
    `searched ${suites.join(", ")}: ${versions.length} versions from ${p.good} to ${p.bad}`,
    ...versions.map((v) => `  ${v.version.padEnd(width)}  ${v.suites.join(", ")}`),
  ];
}

/** `step 2      6.16.12-1~bpo13+1  boot  6.9s  getdents-1M -ENOMEM  => bad  (ENOMEM reproduced 1/1)  <package>` */
export function debianStepLine(r: StepRecord, workload: string, opts: { resumed?: boolean } = {}): string {
  const boots = r.runs.map((x) => x.bootMs).filter((x): x is number => x !== undefined);
  const boot = boots.length ? formatSeconds(boots.reduce((a, b) => a + b, 0) / boots.length) : "-";
  const cell = r.build.how === "failed" ? "not run" : `${workload} ${cellSummary(r.runs.map((x) => x.outcome))}`;
  return [
    stepLabel(r).padEnd(10),
    r.commit.padEnd(18),
    `boot ${boot.padStart(5)}`,
    cell.padEnd(24),
    `=> ${r.verdict.padEnd(4)}`,
    `(${r.reason})`,
    r.subject,
    opts.resumed ? "[done before]" : "",
  ]
    .filter((x) => x !== "")
    .join("  ");
}

const describeVersion = (v: ListedVersion, tag: string | undefined) =>
  `${v.name} ${v.version} (${v.suites.join(", ")})${tag ? `, upstream ${tag}` : ", no upstream tag"}`;

/** The answer: last good, first bad, how many boots for how many versions, the confidence. */
export function debianResultLines(
  r: BisectResult,
  answer: DebianAnswer | undefined,
  counts: { boots: number; versions: number; repeat: number; bad: { reproduced: number; runs: number } },
): string[] {
  const budget = `ceil(log2(${counts.versions}))+2 = ${Math.ceil(Math.log2(counts.versions)) + 2}`;
  const cost = `${plural(counts.boots, "boot")} for ${plural(counts.versions, "version")} (${budget})`;
  if (r.kind !== "found" || !answer) {
    return [
      `skipped versions hide the first bad one; it is one of: ${(r.candidates ?? []).join(", ")}`,
      `  ${plural(r.steps, "bisect step")} (${r.skips} skipped); ${cost}`,
    ];
  }
  const rate = `the bad end reproduced ${counts.bad.reproduced}/${counts.bad.runs}`;
  return [
    `last good: ${describeVersion(answer.lastGood, answer.lastGoodTag)}`,
    `first bad: ${describeVersion(answer.firstBad, answer.firstBadTag)}`,
    `  ${plural(r.steps, "bisect step")}${r.skips ? ` (${r.skips} skipped)` : ""}, ` +
      `${plural(counts.repeat, "run")} per version; ${cost}; confidence ${formatConfidence(r.confidence)} (${rate})`,
  ];
}

/** Each entry's header and its first top-level items; the whole text is in the results directory. */
export function changelogLines(entries: readonly ChangelogEntry[], itemsPerEntry = 3): string[] {
  const lines: string[] = [];
  for (const e of entries) {
    lines.push(`  ${e.source} (${e.version}) ${e.distributions}; ${e.date}`);
    const items = e.body.filter((l) => /^ {2}\* /.test(l));
    for (const item of items.slice(0, itemsPerEntry)) lines.push(`    ${item.trim()}`);
    if (items.length > itemsPerEntry) lines.push(`    ... ${items.length - itemsPerEntry} more items`);
  }
  return lines;
}
