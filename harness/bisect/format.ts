// What `vmrig bisect` prints: one line per step, then the culprit. Pure.
import type { CellOutcome } from "../types.ts";
import { errnoLabel } from "../classify/labels.ts";
import type { BisectParams, BisectResult, StepRecord } from "./state.ts";

export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)}s`;
  if (s < 60) return `${Math.round(s)}s`;
  const r = Math.round(s);
  return `${Math.floor(r / 60)}m${String(r % 60).padStart(2, "0")}s`;
}

/** "-EIO", "PASS", "HANG", "CRASH", "INFRA", "BOOT-FAIL": one word per outcome. */
export function shortOutcome(o: CellOutcome): string {
  switch (o.kind) {
    case "pass":
      return "PASS";
    case "errno":
      return errnoLabel(o.errno) + (o.at ? `@${o.at}` : "");
    case "not-run":
      return "NOT-RUN";
    default:
      return o.kind.toUpperCase();
  }
}

/** "-EIO" for one run; "-EIO x4, PASS x2" for several. */
export function cellSummary(outcomes: readonly CellOutcome[]): string {
  if (outcomes.length === 0) return "-";
  const counts = new Map<string, number>();
  for (const o of outcomes) counts.set(shortOutcome(o), (counts.get(shortOutcome(o)) ?? 0) + 1);
  if (outcomes.length === 1) return shortOutcome(outcomes[0]!);
  return [...counts].map(([k, n]) => `${k} x${n}`).join(", ");
}

/** Ceil(log2(n)) for n candidate first-bad commits: what a bisect without skips needs. */
export function expectedSteps(commits: number): number {
  return commits <= 1 ? 0 : Math.ceil(Math.log2(commits));
}

/** A ref as the user wrote it, a full hash shortened. */
export const refName = (ref: string) => (/^[0-9a-f]{40,64}$/.test(ref) ? ref.slice(0, 12) : ref);

/** The first non-blank line of an error text, cut to fit on a step line. */
export function firstLine(s: string | undefined): string {
  const line = (s ?? "").split("\n").find((l) => l.trim()) ?? "unknown error";
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * `bisect 8 commits 1a2b3c4d5e6f..7a8b9c0d1e2f (v7.2..main) in /src/linux: about 3 steps; cell stock x getdents-1M,
 * 1 run per commit`, then `; resuming (4 steps done before)` when an earlier run finished some.
 */
export function headerLine(p: BisectParams, commits: number, stepsBefore: number): string {
  const range = `${p.good.slice(0, 12)}..${p.bad.slice(0, 12)} (${refName(p.goodRef)}..${refName(p.badRef)})`;
  const cell = `cell ${p.kernel} x ${p.workload}, ${plural(p.repeat, "run")} per commit`;
  const resuming = stepsBefore > 0 ? `; resuming (${plural(stepsBefore, "step")} done before)` : "";
  const about = `about ${expectedSteps(commits)} steps`;
  return `bisect ${plural(commits, "commit")} ${range} in ${p.tree}: ${about}; ${cell}${resuming}`;
}

export function stepLabel(r: Pick<StepRecord, "phase" | "index">): string {
  switch (r.phase) {
    case "check-bad":
      return "check bad";
    case "check-good":
      return "check good";
    case "verify":
      return "verify";
    case "step":
      return `step ${r.index}`;
  }
}

function buildColumn(r: StepRecord): string {
  const how = r.build.how === "cached-after-config" ? "cached" : r.build.how === "failed" ? "FAILED" : r.build.how;
  return `${formatSeconds(r.build.ms).padStart(6)} ${how}`;
}

/**
 * `step 2      5d3e1c2a9f01  build    41s built   boot  6.9s  getdents-1M -EIO  => bad   (-EIO reproduced 1/1)  fuse: ...`
 */
export function stepLine(r: StepRecord, workload: string, opts: { resumed?: boolean } = {}): string {
  const boots = r.runs.map((x) => x.bootMs).filter((x): x is number => x !== undefined);
  const boot = boots.length ? formatSeconds(boots.reduce((a, b) => a + b, 0) / boots.length) : "-";
  const cell = r.build.how === "failed" ? "not run" : `${workload} ${cellSummary(r.runs.map((x) => x.outcome))}`;
  const what =
    r.phase === "verify" && r.reverted
      ? `${r.commit.slice(0, 12)} - ${r.reverted.slice(0, 12)}`
      : r.commit.slice(0, 12);
  return [
    stepLabel(r).padEnd(10),
    what.padEnd(12),
    `build ${buildColumn(r).padEnd(13)}`,
    `boot ${boot.padStart(5)}`,
    cell.padEnd(24),
    `=> ${r.verdict.padEnd(4)}`,
    `(${r.reason})`,
    r.phase === "verify" ? "" : r.subject,
    opts.resumed ? "[done before]" : "",
  ]
    .filter((x) => x !== "")
    .join("  ");
}

export function formatConfidence(c: number): string {
  if (c >= 0.9995) return ">99.9%";
  return `${(c * 100).toFixed(1)}%`;
}

export function resultLines(r: BisectResult, bad: { reproduced: number; runs: number }, repeat: number): string[] {
  const lines: string[] = [];
  const rate = `the bad ref reproduced ${bad.reproduced}/${bad.runs}`;
  const hint = bad.runs < 4 ? `; --repeat 6 or more tells a flaky bug from a deterministic one` : "";
  if (r.kind === "found") {
    lines.push(`first bad commit: ${r.culprit} ${r.subject ?? ""}`.trimEnd());
    lines.push(
      `  ${r.steps} bisect step${r.steps === 1 ? "" : "s"}${r.skips ? ` (${r.skips} skipped)` : ""}, ${repeat} run${repeat === 1 ? "" : "s"} per commit; ` +
        `confidence ${formatConfidence(r.confidence)} (${rate}${hint})`,
    );
  } else {
    lines.push(`skipped commits hide the first bad commit; it is one of:`);
    for (const c of r.candidates ?? []) lines.push(`  ${c}`);
    lines.push(`  ${r.steps} bisect steps (${r.skips} skipped)`);
  }
  if (r.verify) lines.push(`verify: ${r.verify.detail}`);
  return lines;
}

/** Everything printed after the steps: a blank line, the answer, where the log and the results are. */
export function reportLines(
  r: BisectResult,
  bad: { reproduced: number; runs: number },
  repeat: number,
  where: { log: string; dir: string },
): string[] {
  return [
    "",
    ...resultLines(r, bad, repeat),
    `bisect log: ${where.log} (git bisect replay accepts it)`,
    `results: ${where.dir}`,
  ];
}
