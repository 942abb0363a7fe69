// Bisect verdicts from outcomes: identity, thresholds (syzkaller-like), infra never bad, a
// different crash is a skip; the confidence figure; what git bisect prints; the step lines.
import { describe, expect, it } from "vitest";
import type { CellOutcome } from "../../harness/types.ts";
import {
  classifyRun,
  confidence,
  identifyBad,
  identityKey,
  judgeRuns,
  outcomeIdentity,
  reproductionRate,
  thresholds,
  type Identity,
} from "../../harness/bisect/verdict.ts";
import { parseBisectLog, parseBisectOutput } from "../../harness/bisect/git.ts";
import { cellSummary, expectedSteps, formatConfidence, stepLine } from "../../harness/bisect/format.ts";
import type { StepRecord } from "../../harness/bisect/state.ts";
import { firstBuildError } from "../../harness/bisect/cell-runner.ts";

const pass: CellOutcome = { kind: "pass" };
const eio: CellOutcome = { kind: "errno", errno: "EIO", mountHealthy: true };
const enomem: CellOutcome = { kind: "errno", errno: "ENOMEM", mountHealthy: true };
const infra: CellOutcome = { kind: "infra", reason: "lost the guest during getdents: connection reset" };
const bootFail: CellOutcome = { kind: "boot-fail", reason: "no ready marker within 240 s" };
const hang: CellOutcome = { kind: "hang", what: "getdents did not finish in 120 s", wedged: true };
const crashA: CellOutcome = {
  kind: "crash",
  title: "BUG: kernel NULL pointer dereference",
  excerpt: "",
  signature: "BUG: kernel NULL pointer dereference | fuse_readdir_uncached | iterate_dir",
};
const crashA2: CellOutcome = { ...crashA, excerpt: "other excerpt, same signature" };
const crashB: CellOutcome = {
  kind: "crash",
  title: "BUG: kernel NULL pointer dereference",
  excerpt: "",
  signature: "BUG: kernel NULL pointer dereference | virtio_fs_enqueue_req | fuse_request_send",
};
const EIO: Identity = { kind: "errno", errno: "EIO" };
const n = (o: CellOutcome, k: number) => Array.from({ length: k }, () => o);

describe("identity", () => {
  it("is the errno, HANG, or the crash signature; pass, infra and boot failures have none", () => {
    expect(identityKey(outcomeIdentity(eio)!)).toBe("errno:EIO");
    expect(identityKey(outcomeIdentity(hang)!)).toBe("hang");
    expect(identityKey(outcomeIdentity(crashA)!)).toBe(`crash:${crashA.kind === "crash" && crashA.signature}`);
    expect(identityKey(outcomeIdentity({ kind: "crash", title: "Kernel panic (pvpanic)", excerpt: "" })!)).toBe(
      "crash:Kernel panic (pvpanic)",
    );
    for (const o of [pass, infra, bootFail, { kind: "not-run", reason: "x" } as CellOutcome])
      expect(outcomeIdentity(o)).toBeUndefined();
  });

  it("classifies a run against the chased identity", () => {
    const target = outcomeIdentity(crashA)!;
    expect(classifyRun(crashA2, target)).toBe("reproduced");
    expect(classifyRun(crashB, target)).toBe("different-crash");
    expect(classifyRun(eio, target)).toBe("other-failure");
    expect(classifyRun(infra, target)).toBe("infra");
    expect(classifyRun({ kind: "not-run", reason: "run interrupted" }, target)).toBe("infra");
    expect(classifyRun(bootFail, target)).toBe("boot-fail");
    expect(classifyRun(pass, target)).toBe("clean");
  });

  it("BISECT_CHECK on bad: the most frequent failure, or why there is nothing to chase", () => {
    expect(identifyBad([eio, pass, eio, infra])).toEqual({ identity: EIO, reproduced: 2, runs: 4 });
    expect(identifyBad([pass, pass])).toEqual({ problem: expect.stringContaining("passes on the bad ref (2/2") });
    expect(identifyBad([infra])).toEqual({ problem: expect.stringContaining("INFRA x1") });
    expect(identifyBad([bootFail])).toEqual({ problem: expect.stringContaining("BOOT-FAIL") });
  });
});

describe("thresholds (syzkaller-like)", () => {
  it("bad needs max(2, N/6) reproductions (all of them below 2 runs); good needs half clean", () => {
    expect(thresholds(1)).toEqual({ bad: 1, clean: 1 });
    expect(thresholds(2)).toEqual({ bad: 2, clean: 1 });
    expect(thresholds(6)).toEqual({ bad: 2, clean: 3 });
    expect(thresholds(12)).toEqual({ bad: 2, clean: 6 });
    expect(thresholds(13)).toEqual({ bad: 3, clean: 7 });
    expect(thresholds(20)).toEqual({ bad: 4, clean: 10 });
  });
});

describe("judgeRuns", () => {
  it("one run: the identity is bad, a pass is good", () => {
    expect(judgeRuns([eio], EIO)).toMatchObject({ verdict: "bad", reason: "EIO reproduced 1/1" });
    expect(judgeRuns([pass], EIO)).toMatchObject({ verdict: "good", reason: "passed 1/1" });
  });

  it("never calls an infrastructure error bad, however many", () => {
    expect(judgeRuns([infra], EIO).verdict).toBe("skip");
    expect(judgeRuns(n(infra, 6), EIO)).toMatchObject({
      verdict: "skip",
      reason: expect.stringContaining("INFRA x6 (lost the guest"),
    });
    // One reproduction among infra errors is below the threshold of 2 for 6 runs.
    expect(judgeRuns([eio, ...n(infra, 5)], EIO, 6)).toMatchObject({
      verdict: "skip",
      reason: expect.stringContaining("below the bad threshold 2"),
    });
  });

  it("a different crash signature, errno, boot failure or failed build is a skip", () => {
    const target = outcomeIdentity(crashA)!;
    expect(judgeRuns([crashB], target)).toMatchObject({
      verdict: "skip",
      reason: expect.stringContaining("different crash x1"),
    });
    expect(judgeRuns([crashA2], target).verdict).toBe("bad");
    expect(judgeRuns([enomem], EIO)).toMatchObject({ verdict: "skip", reason: expect.stringContaining("ENOMEM x1") });
    expect(judgeRuns([bootFail], EIO)).toMatchObject({
      verdict: "skip",
      reason: expect.stringContaining("BOOT-FAIL x1"),
    });
    expect(judgeRuns([], EIO, 1)).toMatchObject({
      verdict: "skip",
      reason: expect.stringContaining("no run finished"),
    });
  });

  it("repeat 6: 2 reproductions are bad, 0 with 3 clean is good, 0 with 2 clean is a skip", () => {
    expect(judgeRuns([eio, eio, pass, pass, pass, pass], EIO, 6)).toMatchObject({ verdict: "bad", reproduced: 2 });
    expect(judgeRuns([pass, pass, pass, infra, infra, crashB], EIO, 6)).toMatchObject({ verdict: "good", clean: 3 });
    expect(judgeRuns([pass, pass, infra, infra, infra, crashB], EIO, 6).verdict).toBe("skip");
    // Runs that never happened (interrupted) are not clean.
    expect(judgeRuns([pass, pass], EIO, 6).verdict).toBe("skip");
  });

  it("HANG is chased as HANG, whatever the stuck step said", () => {
    const target = outcomeIdentity(hang)!;
    expect(judgeRuns([{ kind: "hang", what: "something else", wedged: false }], target).verdict).toBe("bad");
    expect(judgeRuns([eio], target).verdict).toBe("skip");
  });
});

describe("confidence", () => {
  it("uses the reproduction rate seen on the bad ref (Jeffreys posterior mean)", () => {
    expect(reproductionRate(1, 1)).toBe(0.75);
    expect(reproductionRate(6, 6)).toBeCloseTo(6.5 / 7);
    expect(reproductionRate(3, 6)).toBe(0.5);
  });

  it("multiplies, per good verdict, the chance its clean runs would have caught a bad commit", () => {
    expect(confidence({ reproduced: 1, runs: 1 }, [1, 1])).toBeCloseTo(0.75 * 0.75);
    expect(confidence({ reproduced: 3, runs: 6 }, [6, 6, 6])).toBeCloseTo(Math.pow(1 - 1 / 64, 3));
    expect(confidence({ reproduced: 6, runs: 6 }, [6, 6])).toBeGreaterThan(0.999);
    expect(confidence({ reproduced: 1, runs: 1 }, [])).toBe(1);
    expect(confidence({ reproduced: 6, runs: 6 }, [6], true)).toBe(0);
  });

  it("is lower for a flaky bug than a deterministic one, and rises with --repeat", () => {
    const flaky = confidence({ reproduced: 2, runs: 6 }, [6, 6, 6]);
    const steady = confidence({ reproduced: 6, runs: 6 }, [6, 6, 6]);
    expect(flaky).toBeLessThan(steady);
    expect(confidence({ reproduced: 4, runs: 12 }, [12, 12, 12])).toBeGreaterThan(flaky);
  });
});

describe("git bisect output and log", () => {
  it("reads the next step, the culprit, or the skipped candidates", () => {
    expect(
      parseBisectOutput(
        "Bisecting: 3 revisions left to test after this (roughly 2 steps)\n[a45370c0129b7dc853c8a7f6381657e947fafe77] c4\n",
      ),
    ).toEqual({ left: "2 steps" });
    const sha = "eaf73bb167653af9cc755c223e179ccc303ffe71";
    expect(parseBisectOutput(`${sha} is the first bad commit\ncommit ${sha}\nAuthor: t\n`)).toEqual({ found: sha });
    const other = "a45370c0129b7dc853c8a7f6381657e947fafe77";
    expect(
      parseBisectOutput(
        `There are only 'skip'ped commits left to test.\nThe first bad commit could be any of:\n${other}\n${sha}\nWe cannot bisect more!\n`,
      ),
    ).toEqual({ candidates: [other, sha] });
  });

  it("lists the marks of a log", () => {
    const log = `# bad: [8fe0bd8cc7c6aef603a8d98afedc0b24dc129896] c8
# good: [8128edc125dae8b4f8870d663abe15dbce43d14d] c0
git bisect start '8fe0bd8cc7c6aef603a8d98afedc0b24dc129896' '8128edc125dae8b4f8870d663abe15dbce43d14d'
# skip: [a45370c0129b7dc853c8a7f6381657e947fafe77] c4
git bisect skip a45370c0129b7dc853c8a7f6381657e947fafe77
# good: [cbbd84a6061fcbf07c4646506d7e9d633ee0b704] c2
git bisect good cbbd84a6061fcbf07c4646506d7e9d633ee0b704
`;
    expect(parseBisectLog(log)).toEqual([
      { verdict: "skip", commit: "a45370c0129b7dc853c8a7f6381657e947fafe77" },
      { verdict: "good", commit: "cbbd84a6061fcbf07c4646506d7e9d633ee0b704" },
    ]);
  });
});

describe("printing", () => {
  it("summarises a step on one line", () => {
    const rec: StepRecord = {
      phase: "step",
      index: 2,
      commit: "5d3e1c2a9f01aa5d3e1c2a9f01aa5d3e1c2a9f01",
      subject: "fuse: fail readdir above 256K",
      build: { how: "built", ms: 41_000, makeMs: 39_000, compiled: 3 },
      runs: [{ outcome: eio, bootMs: 6900, workloadMs: 300 }],
      verdict: "bad",
      reason: "EIO reproduced 1/1",
      startedAt: "",
      ms: 50_000,
    };
    expect(stepLine(rec, "getdents-1M")).toMatch(
      /^step 2 +5d3e1c2a9f01 +build +41s built +boot +6\.9s +getdents-1M -EIO +=> bad +\(EIO reproduced 1\/1\) +fuse: fail readdir above 256K$/,
    );
    expect(cellSummary([eio, eio, pass])).toBe("-EIO x2, PASS x1");
    expect(expectedSteps(8)).toBe(3);
    expect(expectedSteps(10)).toBe(4);
    expect(formatConfidence(0.5625)).toBe("56.3%");
    expect(formatConfidence(0.99999)).toBe(">99.9%");
  });
});

describe("a failed build's first error", () => {
  it("names the file, line and message, without the work tree's path", () => {
    const src = "/root/.cache/vmrig/kernels/bisect-work/445a/src";
    const log = `### make -C ${src} O=/x bzImage
  CC      fs/fuse/readdir.o
${src}/fs/fuse/readdir.c: In function 'fuse_readdir':
${src}/fs/fuse/readdir.c:647:13: error: implicit declaration of function 'fuse_readdir_bad_inode' [-Werror=implicit-function-declaration]
  647 |         if (fuse_readdir_bad_inode(inode))
cc1: some warnings being treated as errors
make[4]: *** [/x/scripts/Makefile.build:287: fs/fuse/readdir.o] Error 1
`;
    expect(firstBuildError(log, src)).toBe(
      "fs/fuse/readdir.c:647:13: error: implicit declaration of function 'fuse_readdir_bad_inode'",
    );
    expect(firstBuildError("make[1]: *** No rule to make target 'x'.  Stop.\n", src)).toBe(
      "make[1]: *** No rule to make target 'x'.  Stop.",
    );
    expect(firstBuildError("all fine\n", src)).toBeUndefined();
  });
});
