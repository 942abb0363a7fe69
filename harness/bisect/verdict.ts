// Bisect verdicts from cell outcomes, never from exit codes. Pure.
//
// The bad ref's outcome defines what the bisect chases (its identity: an errno, HANG, a crash
// signature, or a wrong result). A commit is bad when enough runs reproduce exactly that, good
// when none does and enough ran cleanly, and skipped otherwise: a build or boot failure, an
// infrastructure error, a different crash or errno. An infrastructure error is never bad: a
// lost connection blamed on a commit is the most common way bisects go wrong (syzkaller#1051).
import type { CellOutcome } from "../types.ts";
import {
  describeIdentity,
  identifyBad as identifyBadEnd,
  judgeRuns,
  type BadRefIdentity,
  type Identity,
  type Judgement,
  type Verdict,
} from "../classify/outcome-identity.ts";

export {
  classifyRun,
  describeIdentity,
  identityKey,
  judgeRuns,
  outcomeIdentity,
  thresholds,
  type BadRefIdentity,
  type Identity,
  type Judgement,
  type RunClass,
  type Thresholds,
  type Verdict,
} from "../classify/outcome-identity.ts";

/**
 * BISECT_CHECK on the bad ref as a step verdict: bad when its most frequent failure reproduces
 * often enough, a skip (with why) when it gives nothing to chase.
 */
export function judgeBadRef(outcomes: readonly CellOutcome[], repeat: number): Pick<Judgement, "verdict" | "reason"> {
  const id = identifyBad(outcomes);
  if ("problem" in id) return { verdict: "skip", reason: id.problem };
  return judgeRuns(outcomes, id.identity, repeat);
}

/** BISECT_CHECK on the bad ref: the identity to chase is the most frequent failure among its runs. */
export function identifyBad(outcomes: readonly CellOutcome[]): BadRefIdentity | { problem: string } {
  return identifyBadEnd(outcomes, { at: "on the bad ref", end: "the bad ref", nothing: "nothing to bisect" });
}

/**
 * The reproduction probability estimated from the bad ref: the posterior mean under Jeffreys'
 * prior, (k + 1/2) / (N + 1). One run that reproduced gives 0.75, not 1: from a single run
 * vmrig cannot tell a deterministic bug from a flaky one.
 */
export function reproductionRate(reproduced: number, runs: number): number {
  return (reproduced + 0.5) / (runs + 1);
}

/**
 * How sure the bisect is of its culprit. A bad verdict needs the chased identity itself, so
 * the risk is in the good verdicts: a bad commit whose clean runs all missed the bug (each run
 * misses with probability 1 - p). `goodCleanRuns` holds, per good verdict (including the good
 * ref's check), how many runs passed. A lower bound: it assumes every good commit could have
 * been bad. 0 when skips left more than one candidate.
 */
export function confidence(
  bad: { reproduced: number; runs: number },
  goodCleanRuns: readonly number[],
  ambiguous = false,
): number {
  if (ambiguous) return 0;
  const p = reproductionRate(bad.reproduced, bad.runs);
  return goodCleanRuns.reduce((acc, n) => acc * (1 - Math.pow(1 - p, n)), 1);
}

/** --verify: what the bad ref with the culprit reverted says about the culprit. */
export interface RevertCheck {
  outcome: "passes" | "still-fails" | "inconclusive" | "revert-does-not-apply" | "build-failed";
  detail: string;
}

/**
 * Judges the verify step: `what` names the revert, `step` is the bad ref with it applied, built
 * and run. Only a pass confirms the culprit.
 */
export function judgeRevert(
  what: string,
  step: { build: { how: string }; verdict: Verdict; reason: string },
  workload: string,
  target: Identity,
): RevertCheck {
  if (step.build.how === "failed")
    return { outcome: "build-failed", detail: `${what}: the kernel does not build (${step.reason})` };
  if (step.verdict === "good")
    return { outcome: "passes", detail: `${what}: ${workload} passes (${step.reason}); the culprit is confirmed` };
  if (step.verdict === "bad")
    return {
      outcome: "still-fails",
      detail: `${what}: still ${describeIdentity(target)} (${step.reason}); the revert does not fix it`,
    };
  return { outcome: "inconclusive", detail: `${what}: inconclusive (${step.reason})` };
}
