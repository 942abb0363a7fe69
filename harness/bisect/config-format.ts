// What a configuration bisect prints: the differing options, a line per step, the option (or
// the options olddefconfig keeps together) with GOOD's and BAD's values. Pure.
import type { OptionChange } from "./config-split.ts";
import { expectedProbes } from "./config-split.ts";
import type { ConfigAnswer, ConfigBisectParams, ConfigStepRecord } from "./config-state.ts";
import { cellSummary, formatConfidence, formatSeconds, stepLabel } from "./format.ts";
import type { BisectResult } from "./state.ts";

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** `y`, `m`, `not set`, `"a string"`, `0x1000`: a value as .config means it. */
export const shownValue = (v: string) => (v === "n" ? "not set" : v);

/** `CONFIG_IKCONFIG_PROC  good y  bad not set` */
export function optionLine(c: OptionChange, width = c.option.length): string {
  return `${c.option.padEnd(width)}  good ${shownValue(c.good)}  bad ${shownValue(c.bad)}`;
}

/** The header and the differing options (the first `shown` of them). */
export function configHeaderLines(
  p: ConfigBisectParams,
  diff: readonly OptionChange[],
  stepsBefore: number,
  shown = 40,
): string[] {
  const cell = `cell ${p.kernel} x ${p.workload}, ${plural(p.repeat, "run")} per config`;
  const resuming = stepsBefore > 0 ? `; resuming (${plural(stepsBefore, "step")} done before)` : "";
  const width = Math.max(...diff.slice(0, shown).map((c) => c.option.length));
  return [
    `bisect ${plural(diff.length, "option")} that differ between ${p.good} (good) and ${p.bad} (bad), as resolved: ` +
      `about ${expectedProbes(diff.length)} steps after the ends; ${cell}${resuming}`,
    ...diff.slice(0, shown).map((c) => `  ${optionLine(c, width)}`),
    ...(diff.length > shown ? [`  ... ${diff.length - shown} more (state.json has them all)`] : []),
  ];
}

function buildColumn(r: ConfigStepRecord): string {
  if (r.reusedFrom !== undefined) return "    - reused";
  const how = r.build.how === "cached-after-config" ? "cached" : r.build.how === "failed" ? "FAILED" : r.build.how;
  return `${formatSeconds(r.build.ms).padStart(6)} ${how}`;
}

/** `step 2      +37 options  a1b2c3d4e5f6a7b8  build  2m41s built  boot 6.1s  sh PASS  => good  (passed 1/1)` */
export function configStepLine(r: ConfigStepRecord, workload: string, opts: { resumed?: boolean } = {}): string {
  const boots = r.runs.map((x) => x.bootMs).filter((x): x is number => x !== undefined);
  const boot = boots.length ? formatSeconds(boots.reduce((a, b) => a + b, 0) / boots.length) : "-";
  const cell = r.runs.length === 0 ? "not run" : `${workload} ${cellSummary(r.runs.map((x) => x.outcome))}`;
  return [
    stepLabel(r).padEnd(10),
    `+${plural(r.applied.length, "option")}`.padEnd(13),
    r.configKey,
    `build ${buildColumn(r).padEnd(13)}`,
    `boot ${boot.padStart(5)}`,
    cell.padEnd(24),
    `=> ${r.verdict.padEnd(4)}`,
    `(${r.reason})`,
    opts.resumed ? "[done before]" : "",
  ]
    .filter((x) => x !== "")
    .join("  ");
}

/** The answer: the option, what olddefconfig changes with it, how many steps, the confidence. */
export function configResultLines(
  r: BisectResult,
  answer: ConfigAnswer | undefined,
  counts: { options: number; repeat: number; bad: { reproduced: number; runs: number } },
): string[] {
  const cost = `${plural(r.steps, "bisect step")}${r.skips ? ` (${r.skips} skipped)` : ""} for ${plural(counts.options, "option")}`;
  if (r.kind !== "found" || !answer) {
    return [
      "skipped steps hide the option; BAD with GOOD's values of the options already applied passes with one of:",
      ...(r.candidates ?? []).map((c) => `  ${c}`),
      `  ${cost}`,
    ];
  }
  const others = answer.together.filter((c) => c.option !== answer.option.option);
  const width = Math.max(...answer.together.map((c) => c.option.length), answer.option.option.length);
  const rate = `the bad end reproduced ${counts.bad.reproduced}/${counts.bad.runs}`;
  return [
    `the option: ${optionLine(answer.option)}`,
    ...(others.length
      ? [
          `  olddefconfig changes ${plural(others.length, "more option")} with it (they cannot be separated):`,
          ...others.map((c) => `    ${optionLine(c, width)}`),
        ]
      : []),
    `  last bad config: ${answer.lastBad}`,
    `  first good config: ${answer.firstGood}`,
    `  ${cost}, ${plural(counts.repeat, "run")} per config; confidence ${formatConfidence(r.confidence)} (${rate})`,
  ];
}
