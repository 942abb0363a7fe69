// Outcome identity and the repeat rules that bisect (harness/bisect/verdict.ts) and a parameter search
// share: the failing end's outcome is the identity chased; a run reproduces it, passes, or says
// nothing about it (INFRA, BOOT-FAIL, another crash or errno). Here, in classify/, so a search inside
// a row (run/) judges its probes exactly as bisect judges commits. Pure.
import type { CellOutcome } from "../types.ts";

export type Identity =
  | { kind: "errno"; errno: string }
  | { kind: "hang" }
  | { kind: "crash"; signature: string; title: string }
  | { kind: "fail" }
  | { kind: "short" };

export type Verdict = "good" | "bad" | "skip";

/** What a failing outcome is, across commits or probed values; undefined for pass and for vmrig's own failures. */
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
 * syzkaller's thresholds for `repeat` runs per commit (or value): bad if at least max(2, N/6) reproduce,
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
 * Judges the runs of one commit or value (`repeat` planned; fewer when some never happened, e.g. after
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

const shorten = (s: string) => (s.length > 70 ? `${s.slice(0, 67)}...` : s);

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
      ...[...groups].map(([name, g]) => `${name} x${g.n}${g.example ? ` (${shorten(g.example)})` : ""}`),
    ].join(", ") || "no run finished"
  );
}

export interface BadRefIdentity {
  identity: Identity;
  /** Runs on the bad end (ref or value) that showed it, of `runs`. */
  reproduced: number;
  runs: number;
}

/**
 * The bad end (bisect's bad ref, a search's `to`): the identity to chase is the most frequent
 * failure among its runs. Returns a reason instead when the bad end gives nothing to chase.
 */
export function identifyBad(
  outcomes: readonly CellOutcome[],
  /** How the problem names the bad end: a search's `to`, or bisect's bad ref. */
  words = { at: "at the bad end", end: "the bad end", nothing: "nothing to chase" },
): BadRefIdentity | { problem: string } {
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
      return { problem: `the cell passes ${words.at} (${passes}/${outcomes.length} runs): ${words.nothing}` };
    return { problem: `${words.end} gave no kernel outcome to chase: ${describeOthers(outcomes, { kind: "fail" })}` };
  }
  return { identity: best.id, reproduced: best.n, runs: outcomes.length };
}
