// vmrig bisect on a real kernel tree: Debian's linux-source-7.3 (the build pipeline's unpacked
// copy) plus 8 commits, one breaking the build, one making FUSE readdir fail with -EIO above
// 256 KiB. Every step builds the tree at a commit in the bisect's private clone (incremental
// build directory, ccache) and boots it under QEMU to run a `readdir` cell with a 1M buffer.
// The culprit must be named in ceil(log2(8)) steps plus skips, the broken build skipped, the
// log replayable, the revert verified, and the user's checkout untouched.
import { mkdtempSync, readFileSync, existsSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { runBisect, type BisectOutcome } from "../../harness/bisect/bisect.ts";
import { expectedSteps } from "../../harness/bisect/format.ts";
import { preparePristineSource } from "../../harness/kernels/from-source/source.ts";
import { say, testProgress } from "../helpers/progress.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import {
  BROKEN_SUBJECT,
  CULPRIT_SUBJECT,
  bisectScenarioYaml,
  makeKernelHistory,
  type KernelHistory,
} from "../helpers/kernel-history.ts";
import { ownGuestProcesses } from "../helpers/processes.ts";

const tmp = mkdtempSync(path.join(os.tmpdir(), "vmrig-test-bisect-"));
/** The bisect's work area in the cache (clone + build directory, ~2 GB): this tree is gone after the test. */
let slot: string | undefined;
// Asynchronously: removing ~2 GB in one synchronous call blocks the test worker's event loop long
// enough for vitest's RPC to time out ("Timeout calling onTaskUpdate"), which fails the run.
afterAll(async () => {
  if (slot) await rm(slot, { recursive: true, force: true, maxRetries: 3 });
  await rm(tmp, { recursive: true, force: true, maxRetries: 3 });
});

const progress = testProgress;
const signal = new AbortController().signal;

describe("vmrig bisect on linux-source-7.3 with a readdir regression", () => {
  let history: KernelHistory;
  let scenario: string;
  let first: BisectOutcome;
  const lines: string[] = [];
  const started = Date.now();

  const bisectOptions = () => ({
    tree: history.repo,
    good: history.shas[0]!,
    bad: "main",
    scenario,
    kernel: "stock",
    workload: "getdents-1M",
    verify: true,
    resultsRoot: path.join(tmp, "results"),
    progress,
    signal,
  });

  it(
    "names the culprit in about log2(N) steps, skipping the commit that does not build, and verifies the revert",
    async () => {
      const pristine = await preparePristineSource(
        { kind: "debian", package: "linux-source-7.3" },
        { signal, log: say, label: "bisect" },
      );
      history = await makeKernelHistory(pristine.tree, path.join(tmp, "linux"), { log: say });
      const headBefore = history.shas.at(-1)!;
      scenario = path.join(tmp, "bisect.yaml");
      writeFileSync(scenario, bisectScenarioYaml("bisect-fuse-readdir", history.repo, repoRoot));
      first = await runBisect({
        ...bisectOptions(),
        out: (l) => {
          lines.push(l);
          process.stderr.write(`${l}\n`);
        },
      });
      slot = first.slot;
      const { state, result } = first;

      // BISECT_CHECK: the bad ref fails with EIO, the good one passes.
      expect(state.steps[0]).toMatchObject({
        phase: "check-bad",
        verdict: "bad",
        runs: [{ outcome: { kind: "errno", errno: "EIO" } }],
      });
      expect(state.steps[1]).toMatchObject({
        phase: "check-good",
        verdict: "good",
        runs: [{ outcome: { kind: "pass" } }],
      });
      expect(state.identity?.identity).toEqual({ kind: "errno", errno: "EIO" });

      expect(result).toMatchObject({ kind: "found", culprit: history.culprit, subject: CULPRIT_SUBJECT });
      const steps = state.steps.filter((s) => s.phase === "step");
      const skipped = steps.filter((s) => s.verdict === "skip");
      expect(steps.length).toBeLessThanOrEqual(expectedSteps(8) + skipped.length);
      // The commit that breaks the build is git bisect's first midpoint: built, failed, skipped.
      const broken = steps.find((s) => s.commit === history.broken);
      expect(broken).toMatchObject({ subject: BROKEN_SUBJECT, verdict: "skip", build: { how: "failed" }, runs: [] });
      expect(broken!.reason).toMatch(
        /^build failed: fs\/fuse\/readdir\.c:\d+:\d+: error: implicit declaration of function .fuse_readdir_bad_inode./,
      );
      expect(readFileSync(path.join(first.dir, broken!.build.log!), "utf8")).toMatch(/fuse_readdir_bad_inode/);
      // Every other step booted and ran the cell; its results are kept.
      for (const s of state.steps.filter((x) => x.build.how !== "failed")) {
        expect(s.runs).toHaveLength(1);
        expect(existsSync(path.join(first.dir, s.runs[0]!.runDir!, "console.log")), s.subject).toBe(true);
        expect(existsSync(path.join(first.dir, s.runs[0]!.runDir!, "..", "results.json")), s.subject).toBe(true);
      }

      // Revert-and-verify: bad without the culprit passes.
      expect(result!.verify).toMatchObject({ outcome: "passes" });
      const verify = state.steps.find((s) => s.phase === "verify");
      expect(verify).toMatchObject({ commit: history.shas.at(-1), reverted: history.culprit, verdict: "good" });
      expect(first.exitCode).toBe(0);

      // The printed story.
      const text = lines.join("\n");
      expect(text).toMatch(/^bisect 8 commits .* about 3 steps; cell stock x getdents-1M, 1 run per commit$/m);
      expect(text).toContain(`first bad commit: ${history.culprit} ${CULPRIT_SUBJECT}`);
      expect(text).toMatch(
        new RegExp(
          `^  ${steps.length} bisect steps \\(${skipped.length} skipped\\), 1 run per commit; confidence [\\d.]+%`,
          "m",
        ),
      );
      expect(text).toMatch(/^step 1 +[0-9a-f]{12} +build +\S+ FAILED +boot +- +not run +=> skip +\(build failed: /m);

      // The user's checkout: same HEAD, nothing modified, no bisect refs.
      const git = async (...args: string[]) =>
        String((await execa("git", ["-C", history.repo, ...args])).stdout).trim();
      expect(await git("rev-parse", "HEAD")).toBe(headBefore);
      expect(await git("status", "--porcelain", "--untracked-files=no")).toBe("");
      expect(await git("for-each-ref", "refs/bisect")).toBe("");

      // git bisect replay accepts the log and reaches the same culprit (in a sparse clone: cheap checkouts).
      const replay = path.join(tmp, "replay");
      await execa("git", ["clone", "-q", "--shared", "--no-checkout", history.repo, replay]);
      await execa("git", ["-C", replay, "sparse-checkout", "set", "--no-cone", "/MAINTAINERS"]);
      await execa("git", ["-C", replay, "checkout", "-q", "main"]);
      const r = await execa("git", ["-C", replay, "bisect", "replay", first.logFile], { reject: false });
      expect(r.exitCode, String(r.stderr)).toBe(0);
      expect(String(r.stdout)).toContain(`${history.culprit} is the first bad commit`);

      expect(ownGuestProcesses()).toEqual([]);
      process.stderr.write(`bisect integration: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    },
    40 * 60_000,
  );

  it(
    "run again, it resumes from its state and log and redoes no step",
    async () => {
      const again: string[] = [];
      const r = await runBisect({ ...bisectOptions(), out: (l) => again.push(l) });
      expect(r.ran).toEqual([]);
      expect(r.result).toEqual(first.result);
      expect(again[0]).toContain(`resuming (${first.state.steps.length} steps done before)`);
    },
    10 * 60_000,
  );
});
