// The decisions of a parameter search, and the cell it becomes. Pure: the next value to probe is
// a function of the runs so far, so the runner may lose its guest (or be resumed) between any two
// runs and ask again. The rules are bisect's: the `to` end's failure is the identity chased; a
// value is good, bad or skipped by the same thresholds; INFRA, BOOT-FAIL, another errno or crash
// at a value is a skip, and a skipped value is stepped around, never guessed.
import type { CellOutcome, ParamSearchSpec } from "../types.ts";
import { formatSearchValue } from "../scenario/param-search.ts";
import { errnoLabel } from "./labels.ts";
import {
  identifyBad,
  identityKey,
  judgeRuns,
  outcomeIdentity,
  type Identity,
  type Verdict,
} from "./outcome-identity.ts";

/** The search as the state machine needs it. */
export type SearchRange = Pick<ParamSearchSpec, "from" | "to" | "granularity" | "repeat">;

/** One run of the workload at one value: the evidence a search keeps. */
export interface ProbeRun {
  value: number;
  outcome: CellOutcome;
  durationMs: number;
  /** The probe's own evidence and files, relative to the run directory. */
  artifacts?: string[];
}

export interface ValueVerdict {
  value: number;
  verdict: Verdict;
  reason: string;
}

export type SearchFinding =
  /** The outcome flips between two neighbouring values (or around values that were skipped). */
  | { kind: "flip"; lastGood: number; firstBad: number; target: Identity; skipped: number[] }
  /** `to` passes: there is no failure to search for. */
  | { kind: "no-failure"; reason: string }
  /** `from` already fails the way `to` does. */
  | { kind: "fails-throughout"; target: Identity }
  /** An end gave nothing to judge, or too many values were skipped. */
  | { kind: "inconclusive"; reason: string; lastGood?: number; firstBad?: number };

export type SearchStep =
  | { kind: "probe"; value: number; verdicts: ValueVerdict[] }
  | { kind: "done"; finding: SearchFinding; verdicts: ValueVerdict[] };

/** More skipped values than this and the search stops: the range says nothing steady. */
export const MAX_SKIPPED_VALUES = 5;

/** The next value to run (again, until it has `repeat` runs), or what the runs found. */
export function nextSearchStep(range: SearchRange, runs: readonly ProbeRun[]): SearchStep {
  const verdicts: ValueVerdict[] = [];
  const runsAt = (v: number) => runs.filter((r) => r.value === v).map((r) => r.outcome);
  const done = (finding: SearchFinding): SearchStep => ({ kind: "done", finding, verdicts });
  const atTo = runsAt(range.to);
  if (atTo.length < range.repeat) return { kind: "probe", value: range.to, verdicts };
  const bad = identifyBad(atTo);
  if ("problem" in bad) {
    const passed = atTo.every((o) => o.kind === "pass");
    return done(passed ? { kind: "no-failure", reason: bad.problem } : { kind: "inconclusive", reason: bad.problem });
  }
  const target = bad.identity;
  const judge = (value: number): Verdict => {
    const j = judgeRuns(runsAt(value), target, range.repeat);
    verdicts.push({ value, verdict: j.verdict, reason: j.reason });
    return j.verdict;
  };
  const toVerdict = judge(range.to);
  if (toVerdict !== "bad") return done({ kind: "inconclusive", reason: `at to: ${verdicts[0]!.reason}` });
  if (runsAt(range.from).length < range.repeat) return { kind: "probe", value: range.from, verdicts };
  const fromVerdict = judge(range.from);
  if (fromVerdict === "bad") return done({ kind: "fails-throughout", target });
  if (fromVerdict === "skip") return done({ kind: "inconclusive", reason: `at from: ${verdicts[1]!.reason}` });
  return narrow(range, target, runsAt, judge, verdicts);
}

/** Binary search between a good `from` and a bad `to`, stepping around skipped values. */
function narrow(
  range: SearchRange,
  target: Identity,
  runsAt: (v: number) => CellOutcome[],
  judge: (v: number) => Verdict,
  verdicts: ValueVerdict[],
): SearchStep {
  let [lastGood, firstBad] = [range.from, range.to];
  const skipped: number[] = [];
  for (;;) {
    const value = middleValue(lastGood, firstBad, range.granularity, skipped);
    const between = skipped.filter((s) => s > lastGood && s < firstBad);
    if (value === undefined) {
      return { kind: "done", finding: { kind: "flip", lastGood, firstBad, target, skipped: between }, verdicts };
    }
    if (skipped.length >= MAX_SKIPPED_VALUES) {
      const reason = `${skipped.length} values skipped`;
      return { kind: "done", finding: { kind: "inconclusive", reason, lastGood, firstBad }, verdicts };
    }
    if (runsAt(value).length < range.repeat) return { kind: "probe", value, verdicts };
    const verdict = judge(value);
    if (verdict === "good") lastGood = value;
    else if (verdict === "bad") firstBad = value;
    else skipped.push(value);
  }
}

/** The value on the grid strictly between lo and hi nearest their middle and not skipped, if any. */
export function middleValue(
  lo: number,
  hi: number,
  granularity: number,
  skipped: readonly number[],
): number | undefined {
  const steps = Math.round((hi - lo) / granularity);
  const mid = Math.floor(steps / 2);
  // Only skipped values push the choice off the middle, so this loop ends within a few turns.
  for (let d = 0; d <= skipped.length && d < steps; d++) {
    for (const k of d === 0 ? [mid] : [mid - d, mid + d]) {
      const v = lo + k * granularity;
      if (k >= 1 && k < steps && !skipped.includes(v)) return v;
    }
  }
  return undefined;
}

/** How many values the range holds, both ends included. */
export const valuesInRange = (r: SearchRange) => Math.round((r.to - r.from) / r.granularity) + 1;

// ---- the cell ------------------------------------------------------------------------------

/** A value as the scenario writes it: "260K" for a size, "12" for a count. */
export const searchValueLabel = formatSearchValue;

/** The chased failure in a few words: "-ENOMEM", "HANG", "CRASH “BUG: ...”". */
function identityLabel(i: Identity): string {
  if (i.kind === "errno") return errnoLabel(i.errno);
  if (i.kind === "crash") return `CRASH "${i.title}"`;
  return i.kind.toUpperCase();
}

/** "(11 probes)", "(1 probe)", "(6 probes x 3 runs)": values probed, and runs per value when repeated. */
function probesLabel(runs: readonly ProbeRun[], repeat: number): string {
  const values = new Set(runs.map((r) => r.value)).size;
  return `(${values} probe${values === 1 ? "" : "s"}${repeat > 1 ? ` x ${repeat} runs` : ""})`;
}

/** What the cell says: "PASS up to 256K, -ENOMEM from 260K (11 probes)". */
export function searchCellLabel(s: ParamSearchSpec, finding: SearchFinding, runs: readonly ProbeRun[]): string {
  const v = (n: number) => searchValueLabel(n, s.unit);
  const probes = probesLabel(runs, s.repeat);
  switch (finding.kind) {
    case "flip": {
      const skipped = finding.skipped.length ? `; ${finding.skipped.map(v).join(", ")} skipped` : "";
      const bad = identityLabel(finding.target);
      return `PASS up to ${v(finding.lastGood)}, ${bad} from ${v(finding.firstBad)}${skipped} ${probes}`;
    }
    case "no-failure":
      return `PASS at ${v(s.to)}: no failure to search for ${probes}`;
    case "fails-throughout":
      return `${identityLabel(finding.target)} already at ${v(s.from)} ${probes}`;
    case "inconclusive":
      return `INFRA: search of ${s.param} inconclusive: ${finding.reason} ${probes}`;
  }
}

/**
 * The cell's outcome: a reproducing run at the first bad value (so expectations such as ENOMEM
 * apply as to the workload alone), PASS when nothing fails, INFRA when the search could not
 * judge; the finding is its label.
 */
export function searchCellOutcome(s: ParamSearchSpec, finding: SearchFinding, runs: readonly ProbeRun[]): CellOutcome {
  const searchLabel = searchCellLabel(s, finding, runs);
  const badAt = (value: number, target: Identity): CellOutcome => {
    const run = runs.find(
      (r) => r.value === value && identityKey(outcomeIdentity(r.outcome) ?? { kind: "fail" }) === identityKey(target),
    );
    const o = run?.outcome ?? { kind: "fail", detail: "no run reproduced" };
    return { ...(o.kind === "errno" ? { ...o, at: searchValueLabel(value, s.unit) } : o), searchLabel };
  };
  switch (finding.kind) {
    case "flip":
      return badAt(finding.firstBad, finding.target);
    case "fails-throughout":
      return badAt(s.from, finding.target);
    case "no-failure":
      return { kind: "pass", detail: finding.reason, searchLabel };
    case "inconclusive":
      return { kind: "infra", reason: `search of ${s.param} inconclusive: ${finding.reason}`, searchLabel };
  }
}

/** results.json's record of the search: the range, every run as evidence, the verdicts and the finding. */
export function searchEvidence(
  s: ParamSearchSpec,
  runs: readonly ProbeRun[],
  step: SearchStep,
): Record<string, unknown> {
  const { param, unit, from, to, granularity, repeat } = s;
  return {
    param,
    unit,
    from,
    to,
    granularity,
    repeat,
    valuesInRange: valuesInRange(s),
    valuesProbed: new Set(runs.map((r) => r.value)).size,
    ...(step.kind === "done" ? { finding: step.finding } : { next: step.value }),
    verdicts: step.verdicts,
    probes: runs.map((r) => ({ ...r, label: searchValueLabel(r.value, unit) })),
  };
}
