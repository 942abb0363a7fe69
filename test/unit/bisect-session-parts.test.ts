// The pure parts of a bisect session: the header and report lines, the state resumed for the
// same question, step result names, the answer from where git bisect stopped, and the verdicts
// on the bad ref and on the reverted culprit.
import { describe, expect, it } from "vitest";
import type { CellOutcome } from "../../harness/types.ts";
import { firstLine, headerLine, refName, reportLines } from "../../harness/bisect/format.ts";
import {
  type BisectParams,
  type StepRecord,
  STATE_FORMAT,
  bisectResult,
  resumeState,
  stepRunName,
} from "../../harness/bisect/state.ts";
import { type Identity, confidence, judgeBadRef, judgeRevert } from "../../harness/bisect/verdict.ts";

const pass: CellOutcome = { kind: "pass" };
const eio: CellOutcome = { kind: "errno", errno: "EIO", mountHealthy: true };
const infra: CellOutcome = { kind: "infra", reason: "virtiofsd died" };
const EIO: Identity = { kind: "errno", errno: "EIO" };
const GOOD = "1111111111112222222222223333333333334444";
const BAD = "aaaaaaaaaaaabbbbbbbbbbbbccccccccccccdddd";

const params = (extra: Partial<BisectParams> = {}): BisectParams => ({
  tree: "/src/linux",
  good: GOOD,
  bad: BAD,
  goodRef: "v7.2",
  badRef: "main",
  scenario: "/s/bisect.yaml",
  kernel: "stock",
  workload: "getdents-1M",
  repeat: 1,
  ...extra,
});

const step = (phase: StepRecord["phase"], verdict: StepRecord["verdict"], outcomes: CellOutcome[]): StepRecord => ({
  phase,
  index: 0,
  commit: BAD,
  subject: "s",
  build: { how: "built", ms: 1 },
  runs: outcomes.map((outcome) => ({ outcome, workloadMs: 1 })),
  verdict,
  reason: "r",
  startedAt: "",
  ms: 1,
});

describe("header and report lines", () => {
  it("says the range, the expected steps, the cell and what an earlier run did", () => {
    expect(headerLine(params(), 8, 0)).toBe(
      "bisect 8 commits 111111111111..aaaaaaaaaaaa (v7.2..main) in /src/linux: about 3 steps; " +
        "cell stock x getdents-1M, 1 run per commit",
    );
    expect(headerLine(params({ repeat: 6, goodRef: GOOD }), 1, 1)).toBe(
      "bisect 1 commit 111111111111..aaaaaaaaaaaa (111111111111..main) in /src/linux: about 0 steps; " +
        "cell stock x getdents-1M, 6 runs per commit; resuming (1 step done before)",
    );
    expect(headerLine(params(), 10, 4)).toMatch(/about 4 steps; .*; resuming \(4 steps done before\)$/);
  });

  it("shortens full hashes, not names", () => {
    expect(refName(BAD)).toBe("aaaaaaaaaaaa");
    expect(refName("v7.2")).toBe("v7.2");
    expect(refName("abc123")).toBe("abc123");
  });

  it("takes an error's first non-blank line, cut to 120 columns", () => {
    expect(firstLine("\n  \nfs/fuse/readdir.c:647: error: x\nmore")).toBe("fs/fuse/readdir.c:647: error: x");
    expect(firstLine(undefined)).toBe("unknown error");
    expect(firstLine("x".repeat(130))).toBe(`${"x".repeat(117)}...`);
  });

  it("ends with a blank line, the answer, the log and the results directory", () => {
    const result = { kind: "found" as const, culprit: BAD, subject: "fuse: x", steps: 3, skips: 1, confidence: 0.75 };
    expect(reportLines(result, { reproduced: 1, runs: 1 }, 1, { log: "/r/bisect.log", dir: "/r" })).toEqual([
      "",
      `first bad commit: ${BAD} fuse: x`,
      "  3 bisect steps (1 skipped), 1 run per commit; confidence 75.0% (the bad ref reproduced 1/1; " +
        "--repeat 6 or more tells a flaky bug from a deterministic one)",
      "bisect log: /r/bisect.log (git bisect replay accepts it)",
      "results: /r",
    ]);
  });
});

describe("state", () => {
  it("resumes the same question with the refs spelled anew, and starts afresh on another", () => {
    const earlier = { format: STATE_FORMAT, params: params({ badRef: BAD }), steps: [step("check-bad", "bad", [eio])] };
    const resumed = resumeState(earlier, params());
    expect(resumed.params.badRef).toBe("main");
    expect(resumed.steps).toBe(earlier.steps);
    expect(Object.keys(resumed)).toEqual(["format", "params", "steps"]);
    expect(resumeState(earlier, params({ repeat: 2 }))).toEqual({
      format: STATE_FORMAT,
      params: params({ repeat: 2 }),
      steps: [],
    });
    expect(resumeState(undefined, params())).toEqual({ format: STATE_FORMAT, params: params(), steps: [] });
  });

  it("names a step's results by its order, phase and commit", () => {
    expect(stepRunName(1, "check-bad", 0, BAD)).toBe("01-check-bad-aaaaaaaaaaaa");
    expect(stepRunName(4, "step", 2, GOOD)).toBe("04-step2-111111111111");
    expect(stepRunName(12, "verify", 0, BAD)).toBe("12-verify-aaaaaaaaaaaa");
  });
});

describe("the answer", () => {
  const steps = [
    step("check-bad", "bad", [eio, eio, pass]),
    step("check-good", "good", [pass, pass, infra]),
    step("step", "skip", [infra, infra, infra]),
    step("step", "good", [pass, pass, pass]),
    step("step", "bad", [eio, pass, pass]),
    step("verify", "good", [pass, pass, pass]),
  ];
  const bad = { reproduced: 2, runs: 3 };

  it("counts bisect steps and skips; confidence from the good ref and good steps, not verify", () => {
    expect(bisectResult({ kind: "found", culprit: BAD, subject: "fuse: x" }, steps, bad)).toEqual({
      kind: "found",
      culprit: BAD,
      subject: "fuse: x",
      steps: 3,
      skips: 1,
      confidence: confidence(bad, [2, 3]),
    });
  });

  it("has no confidence when skips left several candidates", () => {
    expect(bisectResult({ kind: "ambiguous", candidates: [GOOD, BAD] }, steps, bad)).toEqual({
      kind: "ambiguous",
      candidates: [GOOD, BAD],
      steps: 3,
      skips: 1,
      confidence: 0,
    });
  });
});

describe("verdicts of the session's own steps", () => {
  it("the bad ref: its most frequent failure, reproduced often enough, or a skip saying why", () => {
    expect(judgeBadRef([eio], 1)).toMatchObject({ verdict: "bad", reason: "EIO reproduced 1/1" });
    expect(judgeBadRef([eio, pass, pass, pass, pass, pass], 6)).toMatchObject({ verdict: "skip" });
    expect(judgeBadRef([pass], 1)).toEqual({
      verdict: "skip",
      reason: "the cell passes on the bad ref (1/1 runs): nothing to bisect",
    });
    expect(judgeBadRef([infra], 1)).toEqual({
      verdict: "skip",
      reason: "the bad ref gave no kernel outcome to chase: INFRA x1 (virtiofsd died)",
    });
  });

  it("the revert: only a pass confirms the culprit", () => {
    const what = 'reverting aaaaaaaaaaaa ("fuse: x") on the bad ref bbbbbbbbbbbb';
    const built = { how: "built" };
    expect(judgeRevert(what, { build: built, verdict: "good", reason: "passed 1/1" }, "getdents-1M", EIO)).toEqual({
      outcome: "passes",
      detail: `${what}: getdents-1M passes (passed 1/1); the culprit is confirmed`,
    });
    expect(judgeRevert(what, { build: built, verdict: "bad", reason: "EIO reproduced 1/1" }, "w", EIO)).toEqual({
      outcome: "still-fails",
      detail: `${what}: still EIO (EIO reproduced 1/1); the revert does not fix it`,
    });
    expect(judgeRevert(what, { build: built, verdict: "skip", reason: "INFRA x1" }, "w", EIO)).toEqual({
      outcome: "inconclusive",
      detail: `${what}: inconclusive (INFRA x1)`,
    });
    const failed = { build: { how: "failed" }, verdict: "skip" as const, reason: "build failed: x" };
    expect(judgeRevert(what, failed, "w", EIO)).toEqual({
      outcome: "build-failed",
      detail: `${what}: the kernel does not build (build failed: x)`,
    });
  });
});
