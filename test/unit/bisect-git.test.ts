// The whole bisect loop on a real (tiny) git repository, with building and running replaced by
// a fake that reads the clone's tree: culprit, skips (build failure, infra error, different
// crash), BISECT_CHECK, a log `git bisect replay` accepts, resume without redoing steps, the
// revert-and-verify step, --repeat thresholds, and the user's checkout left alone.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBisect, type BisectOptions } from "../../harness/bisect/bisect.ts";
import type { StepRunner, StepTarget } from "../../harness/bisect/cell-runner.ts";
import { expectedSteps } from "../../harness/bisect/format.ts";
import type { CellOutcome } from "../../harness/types.ts";
import { silentProgress, type Progress } from "../../harness/run/progress.ts";
import { testVerbose } from "../../harness/util/env.ts";

const tmp = mkdtempSync(path.join(os.tmpdir(), "vmrig-test-bisect-"));
const savedCache = process.env.VMRIG_CACHE;
beforeAll(() => {
  process.env.VMRIG_CACHE = path.join(tmp, "cache");
  writeFileSync(path.join(tmp, "guest.config"), "CONFIG_FUSE_FS=y\n");
});
afterAll(() => {
  if (savedCache === undefined) delete process.env.VMRIG_CACHE;
  else process.env.VMRIG_CACHE = savedCache;
  rmSync(tmp, { recursive: true, force: true });
});

const quiet: Progress = silentProgress;
// Fixed names and dates: the same hashes every run, so git bisect takes the same path through skips.
const env = {
  GIT_AUTHOR_NAME: "t",
  GIT_AUTHOR_EMAIL: "t@t",
  GIT_COMMITTER_NAME: "t",
  GIT_COMMITTER_EMAIL: "t@t",
  GIT_AUTHOR_DATE: "2026-01-01T00:00:00Z",
  GIT_COMMITTER_DATE: "2026-01-01T00:00:00Z",
  LC_ALL: "C",
};
const git = async (dir: string, ...args: string[]) =>
  String((await execa("git", ["-C", dir, ...args], { env })).stdout).trim();

interface Commit {
  subject: string;
  files: Record<string, string>;
}

/** A repository: base (bug=0, build=ok) then `commits`; returns every commit's hash, base first. */
async function makeRepo(name: string, commits: Commit[]): Promise<{ dir: string; shas: string[] }> {
  const dir = path.join(tmp, name);
  await execa("git", ["init", "-q", "-b", "main", dir], { env });
  writeFileSync(path.join(dir, "bug"), "0\n");
  writeFileSync(path.join(dir, "build"), "ok\n");
  writeFileSync(path.join(dir, "readdir.c"), "line 1\nline 2\nif (count > LIMIT) return -EIO; /* not yet */\nline 4\n");
  await git(dir, "add", "-A");
  await git(dir, "commit", "-qm", "base");
  const shas = [await git(dir, "rev-parse", "HEAD")];
  for (const c of commits) {
    for (const [f, text] of Object.entries(c.files)) writeFileSync(path.join(dir, f), text);
    await git(dir, "add", "-A");
    await git(dir, "commit", "-qm", c.subject);
    shas.push(await git(dir, "rev-parse", "HEAD"));
  }
  return { dir, shas };
}

function scenarioFor(repo: string): string {
  const f = path.join(tmp, `${path.basename(repo)}.yaml`);
  writeFileSync(
    f,
    `name: tiny-${path.basename(repo)}
kernels:
  stock: { build: { source: { git: ${repo}, ref: main }, config: [guest.config] } }
shares: [{ tag: share }]
workloads:
  - { id: getdents-1M, readdir: { share: share, entries: 100, bufferSize: 1M } }
  - { id: uname, shell: { command: "uname -r", expectExit: 0 } }
`,
  );
  return f;
}

/** The clone's tree for `repo` in the bisect work area. */
function cloneOf(repo: string): string {
  const root = path.join(tmp, "cache", "kernels", "build-work");
  for (const slot of readdirSync(root).filter((n) => n.startsWith("bisect-"))) {
    const alt = path.join(root, slot, "src", ".git", "objects", "info", "alternates");
    if (existsSync(alt) && readFileSync(alt, "utf8").includes(path.join(repo, ".git", "objects")))
      return path.join(root, slot, "src");
  }
  throw new Error(`no clone of ${repo}`);
}

const eio: CellOutcome = { kind: "errno", errno: "EIO", mountHealthy: true };
const pass: CellOutcome = { kind: "pass" };

/**
 * Builds "fail" when the tree's build file says broken; runs: EIO when bug=1. `bySubject`
 * overrides a commit's outcome (an infra error, another crash). `flaky(run)` says whether a bad
 * commit reproduces on that run.
 */
function fakeRunner(
  repo: string,
  repeat: number,
  opts: { bySubject?: Record<string, CellOutcome>; flaky?: (run: number) => boolean } = {},
) {
  const targets: StepTarget[] = [];
  const runner: StepRunner = {
    async run(t) {
      targets.push(t);
      await t.prepare();
      const src = cloneOf(repo);
      if (!t.reverted) expect(await git(src, "rev-parse", "HEAD")).toBe(t.commit);
      const read = (f: string) => readFileSync(path.join(src, f), "utf8").trim();
      if (read("build") !== "ok")
        return { build: { how: "failed", ms: 5, error: 'Kernel "stock": building bzImage failed (exit 2)' }, runs: [] };
      const runs = Array.from({ length: repeat }, (_, i) => {
        const override = opts.bySubject?.[t.subject];
        const outcome = override ?? (read("bug") === "1" && (opts.flaky?.(i) ?? true) ? eio : pass);
        return { outcome, bootMs: 1000, workloadMs: 100 };
      });
      return { build: { how: "built" as const, ms: 10, compiled: 1 }, runs };
    },
  };
  return { runner, targets };
}

const noise = (i: number): Commit => ({ subject: `noise ${i}`, files: { [`noise${i}`]: `${i}\n` } });
/** base, then 10 commits: the build breaks at 5 and is fixed at 6; 7 is the culprit. */
const history: Commit[] = [
  noise(1),
  noise(2),
  noise(3),
  noise(4),
  { subject: "fuse: rework (breaks the build)", files: { build: "broken\n" } },
  { subject: "fuse: fix the build", files: { build: "ok\n" } },
  {
    subject: "fuse: readdir fails with EIO above 256K",
    files: { bug: "1\n", "readdir.c": "line 1\nline 2\nif (count > LIMIT) return -EIO;\nline 4\n" },
  },
  noise(8),
  noise(9),
  noise(10),
];

function options(repo: string, shas: string[], extra: Partial<BisectOptions> = {}): BisectOptions {
  return {
    tree: repo,
    good: shas[0]!,
    bad: "main",
    scenario: scenarioFor(repo),
    kernel: "stock",
    workload: "getdents-1M",
    resultsRoot: path.join(tmp, "results"),
    progress: quiet,
    out: () => undefined,
    ...extra,
  };
}

describe("vmrig bisect on a tiny repository (fake build and run)", () => {
  it("names the culprit in about log2(N) steps plus skips, skipping a broken build, an infra error and a different crash", async () => {
    const { dir, shas } = await makeRepo("main-repo", history);
    const headBefore = await git(dir, "rev-parse", "HEAD");
    const statusBefore = await git(dir, "status", "--porcelain");
    const other: CellOutcome = {
      kind: "crash",
      title: "BUG: unable to handle page fault",
      excerpt: "",
      signature: "BUG: unable to handle page fault | other_function",
    };
    const infra: CellOutcome = { kind: "infra", reason: "lost the guest during getdents-1M: connection reset" };
    const fake = fakeRunner(dir, 1, { bySubject: { "noise 3": infra, "noise 4": other } });
    const lines: string[] = [];
    const r = await runBisect(options(dir, shas, { runner: fake.runner, out: (l) => lines.push(l) }));
    if (testVerbose()) process.stderr.write(lines.join("\n") + "\n");

    expect(r.result).toMatchObject({
      kind: "found",
      culprit: shas[7],
      subject: "fuse: readdir fails with EIO above 256K",
    });
    const steps = r.state.steps.filter((s) => s.phase === "step");
    const skips = steps.filter((s) => s.verdict === "skip");
    expect(r.result!.steps).toBe(steps.length);
    expect(steps.length).toBeLessThanOrEqual(expectedSteps(10) + skips.length);
    // Every visited commit that could not answer was skipped, never called bad or good.
    for (const s of steps) {
      if (["fuse: rework (breaks the build)", "noise 3", "noise 4"].includes(s.subject))
        expect(s.verdict, s.subject).toBe("skip");
    }
    // git bisect visits the broken build first (the midpoint); on these hashes, the infra error and the other crash too.
    expect(steps[0]).toMatchObject({
      subject: "fuse: rework (breaks the build)",
      verdict: "skip",
      reason: expect.stringMatching(/^build failed: /),
    });
    expect(steps.find((s) => s.subject === "noise 3")).toMatchObject({
      verdict: "skip",
      reason: expect.stringMatching(/^INFRA x1 \(lost the guest/),
    });
    expect(steps.find((s) => s.subject === "noise 4")).toMatchObject({
      verdict: "skip",
      reason: expect.stringMatching(/^different crash x1 \(BUG: unable to handle page fault\)/),
    });
    expect(r.state.steps.slice(0, 2).map((s) => [s.phase, s.verdict])).toEqual([
      ["check-bad", "bad"],
      ["check-good", "good"],
    ]);
    expect(r.state.identity).toEqual({ identity: { kind: "errno", errno: "EIO" }, reproduced: 1, runs: 1 });
    expect(r.exitCode).toBe(0);

    // The printed story: header, one line per step, the culprit with steps and confidence.
    expect(lines[0]).toMatch(/^bisect 10 commits .*about 4 steps; cell stock x getdents-1M, 1 run per commit$/);
    expect(lines.filter((l) => /^(check bad|check good|step \d+) /.test(l))).toHaveLength(r.state.steps.length);
    expect(lines.join("\n")).toContain(`first bad commit: ${shas[7]} fuse: readdir fails with EIO above 256K`);
    expect(lines.join("\n")).toMatch(/confidence \d+\.\d%/);

    // The log replays in the user's own repository (in a throwaway worktree here).
    const log = readFileSync(r.logFile, "utf8");
    expect(log).toMatch(new RegExp(`^git bisect start '${shas[10]}' '${shas[0]}'$`, "m"));
    const wt = path.join(tmp, "replay-wt");
    await git(dir, "worktree", "add", "-q", "--detach", wt, "main");
    const replay = await execa("git", ["-C", wt, "bisect", "replay", r.logFile], { env, reject: false });
    expect(replay.exitCode, String(replay.stderr)).toBe(0);
    expect(String(replay.stdout)).toContain(`${shas[7]} is the first bad commit`);
    await git(wt, "bisect", "reset");
    await git(dir, "worktree", "remove", "--force", wt);

    // The user's checkout and refs were never touched (the bisect ran in a private clone).
    expect(await git(dir, "rev-parse", "HEAD")).toBe(headBefore);
    expect(await git(dir, "status", "--porcelain")).toBe(statusBefore);
    expect(await git(dir, "for-each-ref", "refs/bisect")).toBe("");
  });

  it("BISECT_CHECK: refuses a bad ref that passes and a good ref that fails the same way", async () => {
    const { dir, shas } = await makeRepo("check-repo", history);
    await expect(runBisect(options(dir, shas, { runner: fakeRunner(dir, 1).runner, bad: shas[4]! }))).rejects.toThrow(
      /BISECT_CHECK: the bad ref .* does not show a failure to chase: the cell passes on the bad ref/,
    );
    await expect(runBisect(options(dir, shas, { runner: fakeRunner(dir, 1).runner, good: shas[8]! }))).rejects.toThrow(
      /BISECT_CHECK: the good ref .* fails the same way \(EIO reproduced 1\/1\): the regression is older than it/,
    );
    const infraOnBad = fakeRunner(dir, 1, { bySubject: { "noise 10": { kind: "infra", reason: "virtiofsd died" } } });
    await expect(runBisect(options(dir, shas, { runner: infraOnBad.runner }))).rejects.toThrow(
      /gave no kernel outcome to chase: INFRA x1 \(virtiofsd died\)/,
    );
  });

  it("resumes an interrupted bisect from its log without redoing finished steps", async () => {
    const { dir, shas } = await makeRepo("resume-repo", history);
    const controller = new AbortController();
    const first = fakeRunner(dir, 1);
    let done = 0;
    const interrupted = runBisect(
      options(dir, shas, {
        runner: first.runner,
        signal: controller.signal,
        onStep: (s) => {
          if (s.phase === "step" && ++done === 2) controller.abort(new Error("SIGINT"));
        },
      }),
    );
    await expect(interrupted).rejects.toMatchObject({
      exitCode: 130,
      message: expect.stringContaining("run the same command again to resume"),
    });
    expect(first.targets.map((t) => t.phase)).toEqual(["check-bad", "check-good", "step", "step"]);

    const second = fakeRunner(dir, 1);
    const lines: string[] = [];
    const r = await runBisect(options(dir, shas, { runner: second.runner, out: (l) => lines.push(l) }));
    expect(r.result).toMatchObject({ kind: "found", culprit: shas[7] });
    const again = new Set(first.targets.map((t) => t.commit));
    expect(second.targets.filter((t) => again.has(t.commit))).toEqual([]);
    expect(r.ran.every((s) => s.phase === "step")).toBe(true);
    expect(lines[0]).toContain("resuming (4 steps done before)");
    expect(lines.filter((l) => l.endsWith("[done before]"))).toHaveLength(4);

    // A finished bisect run again (bad spelled as a hash this time) redoes nothing and says the same.
    const third = fakeRunner(dir, 1);
    const r3 = await runBisect(options(dir, shas, { runner: third.runner, bad: shas[10]! }));
    expect(third.targets).toEqual([]);
    expect(r3.result).toEqual(r.result);
  });

  it("--verify: bad with the culprit reverted passes; a revert that does not apply is reported", async () => {
    const { dir, shas } = await makeRepo("verify-repo", history);
    const fake = fakeRunner(dir, 1);
    const r = await runBisect(options(dir, shas, { runner: fake.runner, verify: true }));
    expect(r.result!.verify).toMatchObject({
      outcome: "passes",
      detail: expect.stringContaining(`reverting ${shas[7]!.slice(0, 12)}`),
    });
    expect(fake.targets.at(-1)).toMatchObject({ phase: "verify", commit: shas[10], reverted: shas[7] });
    expect(r.exitCode).toBe(0);

    // A later commit rewrites the culprit's line: its revert conflicts on bad.
    const conflicting = [
      ...history,
      {
        subject: "fuse: tune the limit",
        files: { "readdir.c": "line 1\nline 2\nif (count > LIMIT * 2) return -EIO;\nline 4\n" },
      },
    ];
    const c = await makeRepo("verify-conflict-repo", conflicting);
    const r2 = await runBisect(options(c.dir, c.shas, { runner: fakeRunner(c.dir, 1).runner, verify: true }));
    expect(r2.result).toMatchObject({ kind: "found", culprit: c.shas[7] });
    expect(r2.result!.verify).toMatchObject({
      outcome: "revert-does-not-apply",
      detail: expect.stringMatching(/does not apply: .*conflict/i),
    });
    expect(r2.exitCode).toBe(1);
    // The clone is clean again afterwards.
    expect(await git(cloneOf(c.dir), "status", "--porcelain")).toBe("");
  });

  it("--repeat 6 with a bug that reproduces half the time: bad needs 2 of 6, confidence reflects the rate", async () => {
    const { dir, shas } = await makeRepo("flaky-repo", history);
    const fake = fakeRunner(dir, 6, { flaky: (run) => run % 2 === 0 });
    const r = await runBisect(options(dir, shas, { runner: fake.runner, repeat: 6 }));
    expect(r.result).toMatchObject({ kind: "found", culprit: shas[7] });
    expect(r.state.identity).toMatchObject({ reproduced: 3, runs: 6 });
    const goods = r.state.steps.filter((s) => s.verdict === "good" && s.phase !== "verify").length;
    expect(r.result!.confidence).toBeCloseTo(Math.pow(1 - Math.pow(0.5, 6), goods));
    for (const s of r.state.steps.filter((x) => x.verdict === "bad")) expect(s.reason).toBe("EIO reproduced 3/6");
  });

  it("rejects a kernel that is not built from the tree, and refs that are not in order", async () => {
    const { dir, shas } = await makeRepo("args-repo", history);
    const other = await makeRepo("args-other", [noise(1)]);
    await expect(
      runBisect(options(dir, shas, { tree: other.dir, good: other.shas[0]!, runner: fakeRunner(dir, 1).runner })),
    ).rejects.toThrow(/builds from args-repo@main, not from --tree/);
    await expect(
      runBisect(options(dir, shas, { good: "main", bad: shas[0]!, runner: fakeRunner(dir, 1).runner })),
    ).rejects.toThrow(/is not an ancestor of --bad/);
    await expect(
      runBisect(options(dir, shas, { workload: "nope", runner: fakeRunner(dir, 1).runner })),
    ).rejects.toThrow(/no such workload \(workloads: getdents-1M, uname\)/);
  });

  it("bisects a row of a mixed-arch scenario with that row's architecture, not the machine's", async () => {
    const { dir, shas } = await makeRepo("arm-repo", history);
    const x86 = readFileSync(scenarioFor(dir), "utf8");
    const mixed = path.join(tmp, "mixed-arch.yaml");
    writeFileSync(
      mixed,
      x86.replace(
        "kernels:\n  stock: { build: { source:",
        "machine: { arch: x86_64 }\nkernels:\n  stock: { arch: aarch64, pageSize: 64K, build: { arch: arm64, source:",
      ),
    );
    const r = await runBisect(options(dir, shas, { scenario: mixed, runner: fakeRunner(dir, 1).runner }));
    expect(r.result).toMatchObject({ kind: "found", culprit: shas[7] });
  });
});
