// Bisect verdicts from cell outcomes, never from exit codes. Pure.
//
// The bad ref's outcome defines what the bisect chases (its identity: an errno, HANG, a crash
// signature, or a wrong result). A commit is bad when enough runs reproduce exactly that, good
// when none does and enough ran cleanly, and skipped otherwise: a build or boot failure, an
// infrastructure error, a different crash or errno. An infrastructure error is never bad: a
// lost connection blamed on a commit is the most common way bisects go wrong (syzkaller#1051).
import type { CellOutcome } from "../types.ts";

export type Identity =
  | { kind: "errno"; errno: string }
  | { kind: "hang" }
  | { kind: "crash"; signature: string; title: string }
  | { kind: "fail" }
  | { kind: "short" };

export type Verdict = "good" | "bad" | "skip";

/** What a failing outcome is, for matching across commits; undefined for pass and for vmrig's own failures. */
export function outcomeIdentity(o: CellOutcome): Identity | undefined {
  switch (o.kind) {
    case "errno":
      return { kind: "errno", errno: o.errno };
    case "hang":
      return { kind: "hang" };
    case "crash":
      return { kind: "crash", signature: o.signature ?? o.title, title: o.title };
    case "fail":
      return { kind: "fail" };
    case "short":
      return { kind: "short" };
    default:
      return undefined;
  }
}

/** A stable key: "errno:EIO", "hang", "crash:<signature>", "fail", "short". */
export function identityKey(i: Identity): string {
  switch (i.kind) {
    case "errno":
      return `errno:${i.errno}`;
    case "crash":
      return `crash:${i.signature}`;
    default:
      return i.kind;
  }
}

/** For people: "EIO", "HANG", "crash “BUG: kernel NULL pointer dereference”", "FAIL". */
export function describeIdentity(i: Identity): string {
  switch (i.kind) {
    case "errno":
      return i.errno;
    case "crash":
      return `crash "${i.title}"`;
    default:
      return i.kind.toUpperCase();
  }
}

/** What one run of the cell says about the chased identity. */
export type RunClass =
  | "reproduced"
  | "clean"
  /** Failed, but not the chased way (another errno, FAIL instead of HANG). */
  | "other-failure"
  | "different-crash"
  | "boot-fail"
  /** vmrig's side failed (daemon died, lost connection, interrupted): says nothing about the kernel. */
  | "infra";

export function classifyRun(o: CellOutcome, target: Identity): RunClass {
  if (o.kind === "pass") return "clean";
  if (o.kind === "infra" || o.kind === "not-run") return "infra";
  if (o.kind === "boot-fail") return "boot-fail";
  const id = outcomeIdentity(o)!;
  if (identityKey(id) === identityKey(target)) return "reproduced";
  return o.kind === "crash" ? "different-crash" : "other-failure";
}

export interface Thresholds {
  /** At least this many runs must reproduce for "bad". */
  bad: number;
  /** With no reproduction, at least this many runs must pass for "good". */
  clean: number;
}

/**
 * syzkaller's thresholds for `repeat` runs per commit: bad if at least max(2, N/6) reproduce,
 * good if none do and at least half ran cleanly. Below two runs a single reproduction is all
 * there can be, so bad needs min(N, max(2, ceil(N/6))).
 */
export function thresholds(repeat: number): Thresholds {
  const n = Math.max(1, Math.floor(repeat));
  return { bad: Math.min(n, Math.max(2, Math.ceil(n / 6))), clean: Math.ceil(n / 2) };
}

export interface Judgement {
  verdict: Verdict;
  /** Why, in a few words: "EIO reproduced 3/6", "INFRA x2 (lost the guest), 1/6 clean". */
  reason: string;
  runs: number;
  reproduced: number;
  clean: number;
  counts: Partial<Record<RunClass, number>>;
}

/**
 * Judges the runs of one commit (`repeat` planned; fewer when some never happened, e.g. after
 * an interrupt: the missing ones count as not clean).
 */
export function judgeRuns(
  outcomes: readonly CellOutcome[],
  target: Identity,
  repeat: number = outcomes.length,
): Judgement {
  const t = thresholds(repeat);
  const counts: Partial<Record<RunClass, number>> = {};
  for (const o of outcomes) {
    const c = classifyRun(o, target);
    counts[c] = (counts[c] ?? 0) + 1;
  }
  const reproduced = counts.reproduced ?? 0;
  const clean = counts.clean ?? 0;
  const base = { runs: repeat, reproduced, clean, counts };
  const what = describeIdentity(target);
  if (reproduced >= t.bad) return { ...base, verdict: "bad", reason: `${what} reproduced ${reproduced}/${repeat}` };
  if (reproduced === 0 && clean >= t.clean)
    return {
      ...base,
      verdict: "good",
      reason:
        clean === repeat
          ? `passed ${clean}/${repeat}`
          : `passed ${clean}/${repeat}, ${describeOthers(outcomes, target)}`,
    };
  if (reproduced > 0) {
    return {
      ...base,
      verdict: "skip",
      reason: `${what} reproduced ${reproduced}/${repeat}, below the bad threshold ${t.bad}; ${clean} clean`,
    };
  }
  return {
    ...base,
    verdict: "skip",
    reason: `${describeOthers(outcomes, target)}; ${clean}/${repeat} clean, good needs ${t.clean}`,
  };
}

/** "INFRA x2 (lost the guest during getdents), different crash x1 (BUG: ...)" */
function describeOthers(outcomes: readonly CellOutcome[], target: Identity): string {
  const groups = new Map<string, { n: number; example: string }>();
  for (const o of outcomes) {
    const c = classifyRun(o, target);
    if (c === "clean" || c === "reproduced") continue;
    const name =
      c === "infra"
        ? "INFRA"
        : c === "boot-fail"
          ? "BOOT-FAIL"
          : c === "different-crash"
            ? "different crash"
            : o.kind === "errno"
              ? o.errno
              : o.kind.toUpperCase();
    const example =
      o.kind === "infra" || o.kind === "not-run"
        ? o.reason
        : o.kind === "boot-fail"
          ? o.reason
          : o.kind === "crash"
            ? o.title
            : o.kind === "errno"
              ? ""
              : o.kind === "fail"
                ? o.detail
                : "";
    const g = groups.get(name) ?? { n: 0, example };
    g.n++;
    groups.set(name, g);
  }
  const missing = outcomes.length === 0 ? ["no run finished"] : [];
  return (
    [
      ...missing,
      ...[...groups].map(
        ([name, g]) =>
          `${name} x${g.n}${g.example ? ` (${g.example.length > 70 ? `${g.example.slice(0, 67)}...` : g.example})` : ""}`,
      ),
    ].join(", ") || "no run finished"
  );
}

/**
 * BISECT_CHECK on the bad ref as a step verdict: bad when its most frequent failure reproduces
 * often enough, a skip (with why) when it gives nothing to chase.
 */
export function judgeBadRef(outcomes: readonly CellOutcome[], repeat: number): Pick<Judgement, "verdict" | "reason"> {
  const id = identifyBad(outcomes);
  if ("problem" in id) return { verdict: "skip", reason: id.problem };
  return judgeRuns(outcomes, id.identity, repeat);
}

export interface BadRefIdentity {
  identity: Identity;
  /** Runs on the bad ref that showed it, of `runs`. */
  reproduced: number;
  runs: number;
}

/**
 * BISECT_CHECK on the bad ref: the identity to chase is the most frequent failure among its
 * runs. Returns a reason instead when the bad ref gives nothing to chase.
 */
export function identifyBad(outcomes: readonly CellOutcome[]): BadRefIdentity | { problem: string } {
  const seen = new Map<string, { id: Identity; n: number }>();
  for (const o of outcomes) {
    const id = outcomeIdentity(o);
    if (!id) continue;
    const k = identityKey(id);
    const e = seen.get(k) ?? { id, n: 0 };
    e.n++;
    seen.set(k, e);
  }
  const best = [...seen.values()].sort((a, b) => b.n - a.n)[0];
  if (!best) {
    const passes = outcomes.filter((o) => o.kind === "pass").length;
    if (passes === outcomes.length && passes > 0)
      return { problem: `the cell passes on the bad ref (${passes}/${outcomes.length} runs): nothing to bisect` };
    return { problem: `the bad ref gave no kernel outcome to chase: ${describeOthers(outcomes, { kind: "fail" })}` };
  }
  return { identity: best.id, reproduced: best.n, runs: outcomes.length };
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
