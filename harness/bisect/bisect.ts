// `vmrig bisect`: which commit between a good and a bad ref makes one scenario cell fail?
//
//   check bad (its outcome is the identity to chase) -> check good (must pass) -> git bisect in
//   a private clone: build the commit, run the cell, good/bad/skip from the outcome -> culprit
//   with confidence -> optionally revert it on bad and run again (--verify).
//
// Every finished step is written to state.json and git's bisect log before the next starts;
// running the same command again resumes from them.
import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { loadScenario } from "../scenario/load.ts";
import { checkBuildFiles, sourceName } from "../kernels/from-source/spec.ts";
import { lockDir } from "../kernels/from-source/lock.ts";
import { buildPaths } from "../kernels/from-source/paths.ts";
import { sha256Text } from "../kernels/from-source/cache.ts";
import { createProgress, type Progress } from "../run/progress.ts";
import { exists, writeFileAtomic } from "../util/atomic-fs.ts";
import { ExitCode, VmrigError } from "../util/errors.ts";
import { resultsRoot as defaultResultsRoot } from "../util/paths.ts";
import { createCellRunner, type StepRun, type StepRunner } from "./cell-runner.ts";
import { firstLine, headerLine, reportLines, stepLine } from "./format.ts";
import {
  type BisectState,
  bisectLog,
  bisectMark,
  bisectReplay,
  bisectStart,
  checkoutCommit,
  cleanTree,
  commitSubject,
  countBetween,
  ensureClone,
  isAncestor,
  isWorkTree,
  parseBisectLog,
  resolveCommit,
  revertInTree,
} from "./git.ts";
import {
  type BisectParams,
  type BisectResult,
  type BisectStateFile,
  type StepPhase,
  type StepRecord,
  bisectDirName,
  bisectResult,
  findStep,
  logFile,
  openState,
  stepRunName,
  writeState,
} from "./state.ts";
import {
  type BadRefIdentity,
  type Identity,
  type Judgement,
  type RevertCheck,
  identifyBad,
  judgeBadRef,
  judgeRevert,
  judgeRuns,
  thresholds,
} from "./verdict.ts";

export interface BisectOptions {
  tree: string;
  good: string;
  bad: string;
  scenario: string;
  kernel: string;
  workload: string;
  /** Runs per commit, each a fresh guest (default 1). */
  repeat?: number;
  /** After the culprit is found, build bad with it reverted and run the cell. */
  verify?: boolean;
  /** Forget an earlier, unfinished bisect of the same question instead of resuming it. */
  restart?: boolean;
  resultsRoot?: string;
  signal?: AbortSignal;
  /** Step lines and the result (stdout). */
  out?: (line: string) => void;
  /** Build and boot progress (stderr). */
  progress?: Progress;
  /** Tests: replaces building and running; the git side stays real. */
  runner?: StepRunner;
  /** Called after every newly finished step (tests interrupt here). */
  onStep?: (r: StepRecord) => void;
}

export interface BisectOutcome {
  dir: string;
  logFile: string;
  state: BisectStateFile;
  result?: BisectResult;
  exitCode: number;
  /** Steps this invocation ran (not those resumed from an earlier one). */
  ran: StepRecord[];
  /** The work area in vmrig's cache (the private clone and the build directory), kept for the next bisect of this tree. */
  slot: string;
}

const interrupted = (log: string) =>
  new VmrigError(`bisect interrupted; run the same command again to resume (bisect log: ${log})`, ExitCode.interrupted);

function realpath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

export async function runBisect(o: BisectOptions): Promise<BisectOutcome> {
  const signal = o.signal ?? new AbortController().signal;
  const printed: string[] = [];
  const out = (line: string) => {
    printed.push(line);
    (o.out ?? ((l: string) => process.stdout.write(l + "\n")))(line);
  };
  const progress = o.progress ?? createProgress();
  const repeat = o.repeat ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 100)
    throw new VmrigError(`--repeat: expected a whole number from 1 to 100, got ${o.repeat}`);

  // ---- the question: tree, refs, scenario cell -------------------------------------------------
  const tree = realpath(path.resolve(o.tree));
  if (!(await isWorkTree(tree))) throw new VmrigError(`--tree ${o.tree}: not a git repository`);
  const scenario = await loadScenario(path.resolve(o.scenario));
  const entry = scenario.kernels.find((k) => k.label === o.kernel);
  if (!entry)
    throw new VmrigError(
      `--kernel ${o.kernel}: ${scenario.file} has no such kernel (kernels: ${scenario.kernels.map((k) => k.label).join(", ")})`,
    );
  if (entry.source.kind !== "build") {
    throw new VmrigError(
      `--kernel ${o.kernel}: a ${entry.source.kind} kernel; bisect builds the tree at every step, so the kernel must be ` +
        `\`build: { source: { git: ${tree}, ref: <any> }, config: [...] }\``,
    );
  }
  const spec = entry.source.spec;
  if (spec.source.kind !== "git" || realpath(spec.source.repo) !== tree) {
    throw new VmrigError(
      `--kernel ${o.kernel}: builds from ${sourceName(spec.source)}, not from --tree ${tree}: its build.source must be { git: ${tree}, ref: ... }`,
    );
  }
  await checkBuildFiles(spec);
  const workload = scenario.workloads.find((w) => w.id === o.workload);
  if (!workload)
    throw new VmrigError(
      `--workload ${o.workload}: ${scenario.file} has no such workload (workloads: ${scenario.workloads.map((w) => w.id).join(", ")})`,
    );
  const good = await resolveCommit(tree, o.good, "--good");
  const bad = await resolveCommit(tree, o.bad, "--bad");
  if (good === bad) throw new VmrigError(`--good and --bad are the same commit (${good.slice(0, 12)})`);
  if (!(await isAncestor(tree, good, bad)))
    throw new VmrigError(
      `--good ${o.good} is not an ancestor of --bad ${o.bad}: bisect looks for the first bad commit after good`,
    );
  const commits = await countBetween(tree, good, bad);

  const params: BisectParams = {
    tree,
    good,
    bad,
    goodRef: o.good,
    badRef: o.bad,
    scenario: scenario.file,
    kernel: entry.label,
    workload: workload.id,
    repeat,
  };
  const resultsRoot = o.resultsRoot ?? defaultResultsRoot();
  const dir = path.join(resultsRoot, "bisect", scenario.name.replace(/[^A-Za-z0-9._-]+/g, "_"), bisectDirName(params));
  const logPath = logFile(dir);
  const state: BisectStateFile = await openState(dir, params, o.restart ?? false);

  // ---- the work slot: a private clone of the tree and the build directory ---------------------
  const fragmentTexts = await Promise.all(spec.fragments.map((f) => fs.readFile(f, "utf8")));
  const slotId = createHash("sha256")
    .update(JSON.stringify({ tree, arch: spec.arch, base: spec.base, fragments: fragmentTexts.map(sha256Text) }))
    .digest("hex")
    .slice(0, 24);
  // Beside the build pipeline's own work slots, so `vmrig kernel gc` (age, --work) and `kernel list` cover it.
  const slot = path.join(buildPaths.work(), `bisect-${slotId}`);
  const src = path.join(slot, "src");
  const slog = (l: string) => progress.stage(entry.label, l);
  const unlock = await lockDir(slot, { signal, log: slog });
  const ran: StepRecord[] = [];
  const bisectInSlot = async (): Promise<BisectOutcome> => {
    await fs.writeFile(path.join(slot, "last-used"), new Date().toISOString() + "\n");
    await ensureClone(tree, src, signal, slog);
    const runner =
      o.runner ??
      createCellRunner({
        scenario,
        entry,
        spec,
        workload,
        repeat,
        slot,
        treeName: path.basename(tree),
        dir,
        signal,
        progress,
      });

    out(headerLine(params, commits, state.steps.length));

    const judgeWith = (identity: Identity) => (r: StepRun) =>
      judgeRuns(
        r.runs.map((x) => x.outcome),
        identity,
        repeat,
      );
    const step = async (
      phase: StepPhase,
      index: number,
      commit: string,
      judge: (r: StepRun) => Pick<Judgement, "verdict" | "reason">,
      extra: { reverted?: string; prepare?: () => Promise<void> } = {},
    ): Promise<StepRecord> => {
      const done = findStep(state, phase, commit, extra.reverted);
      if (done) {
        out(stepLine(done, workload.id, { resumed: true }));
        return done;
      }
      if (signal.aborted) throw interrupted(logPath);
      const subject = await commitSubject(tree, commit);
      const startedAt = new Date();
      const name = stepRunName(state.steps.length + 1, phase, index, commit);
      const run = await runner.run({
        phase,
        index,
        commit,
        subject,
        ...(extra.reverted ? { reverted: extra.reverted } : {}),
        name,
        prepare:
          extra.prepare ??
          (async () => {
            slog(`checking out ${commit.slice(0, 12)} in ${src}`);
            await checkoutCommit(src, commit, signal);
          }),
      });
      if (signal.aborted) throw interrupted(logPath);
      const j =
        run.build.how === "failed"
          ? { verdict: "skip" as const, reason: `build failed: ${firstLine(run.build.error)}` }
          : judge(run);
      const rec: StepRecord = {
        phase,
        index,
        commit,
        subject,
        ...(extra.reverted ? { reverted: extra.reverted } : {}),
        build: run.build,
        runs: run.runs,
        verdict: j.verdict,
        reason: j.reason,
        startedAt: startedAt.toISOString(),
        ms: Date.now() - startedAt.getTime(),
      };
      state.steps.push(rec);
      ran.push(rec);
      await writeState(dir, state);
      out(stepLine(rec, workload.id));
      o.onStep?.(rec);
      return rec;
    };

    // ---- BISECT_CHECK: bad must show something to chase, good must pass ------------------------
    let found: BadRefIdentity | undefined;
    const badRec = await step("check-bad", 0, bad, (r) =>
      judgeBadRef(
        r.runs.map((x) => x.outcome),
        repeat,
      ),
    );
    const id = identifyBad(badRec.runs.map((x) => x.outcome));
    if (!("problem" in id)) found = id;
    if (badRec.build.how === "failed")
      throw new VmrigError(
        `BISECT_CHECK: the bad ref ${o.bad} does not build: ${badRec.build.error}${badRec.build.log ? `\n  log: ${path.join(dir, badRec.build.log)}` : ""}`,
      );
    if (!found || badRec.verdict !== "bad") {
      throw new VmrigError(
        `BISECT_CHECK: the bad ref ${o.bad} (${bad.slice(0, 12)}) does not show a failure to chase: ${badRec.reason}` +
          (found && found.reproduced < thresholds(repeat).bad ? `; with a flaky bug, raise --repeat` : ""),
      );
    }
    const identity = found.identity;
    state.identity = found;
    await writeState(dir, state);
    const goodRec = await step("check-good", 0, good, judgeWith(identity));
    if (goodRec.verdict !== "good") {
      throw new VmrigError(
        goodRec.verdict === "bad"
          ? `BISECT_CHECK: the good ref ${o.good} (${good.slice(0, 12)}) fails the same way (${goodRec.reason}): the regression is older than it`
          : `BISECT_CHECK: the good ref ${o.good} (${good.slice(0, 12)}) is not clean: ${goodRec.reason}`,
      );
    }

    // ---- git bisect in the clone ---------------------------------------------------------------
    const saveLog = async () => {
      const text = await bisectLog(src);
      await writeFileAtomic(logPath, text.endsWith("\n") ? text : `${text}\n`);
    };
    const before = state.steps.filter((s) => s.phase === "step");
    let bs: BisectState;
    if (await exists(logPath)) {
      bs = await bisectReplay(src, logPath, signal);
      const logged = new Set(parseBisectLog(await fs.readFile(logPath, "utf8")).map((x) => x.commit));
      for (const r of before) if (!logged.has(r.commit)) bs = await bisectMark(src, r.verdict, r.commit, signal);
    } else {
      bs = await bisectStart(src, bad, good, signal);
      for (const r of before) bs = await bisectMark(src, r.verdict, r.commit, signal);
    }
    await saveLog();
    for (const r of before) out(stepLine(r, workload.id, { resumed: true }));

    let index = before.length;
    while (bs.kind === "next") {
      const rec = await step("step", ++index, bs.commit, judgeWith(identity));
      bs = await bisectMark(src, rec.verdict, rec.commit, signal);
      await saveLog();
    }

    // ---- the answer ----------------------------------------------------------------------------
    const result: BisectResult = bisectResult(
      bs.kind === "found" ? { ...bs, subject: await commitSubject(tree, bs.culprit) } : bs,
      state.steps,
      found,
    );

    if (o.verify && result.kind === "found") result.verify = await verify(result.culprit!, result.subject ?? "");
    state.result = result;
    await writeState(dir, state);

    for (const l of reportLines(result, found, repeat, { log: logPath, dir })) out(l);
    await fs.writeFile(path.join(dir, "summary.txt"), printed.join("\n") + "\n");
    const exitCode =
      result.kind === "found" && (!result.verify || result.verify.outcome === "passes")
        ? ExitCode.ok
        : ExitCode.expectationFailed;
    return { dir, logFile: logPath, state, result, exitCode, ran, slot };

    async function verify(culprit: string, subject: string): Promise<RevertCheck> {
      const what = `reverting ${culprit.slice(0, 12)} ("${subject}") on the bad ref ${bad.slice(0, 12)}`;
      if (!findStep(state, "verify", bad, culprit)) {
        await checkoutCommit(src, bad, signal);
        const rv = await revertInTree(src, culprit, signal);
        if (!rv.ok) {
          const detail = `${what} does not apply: ${rv.why}`;
          out(`verify      ${detail}`);
          return { outcome: "revert-does-not-apply", detail };
        }
      }
      const rec = await step("verify", 0, bad, judgeWith(identity), {
        reverted: culprit,
        prepare: async () => undefined,
      });
      await cleanTree(src, signal);
      return judgeRevert(what, rec, o.workload, identity);
    }
  };

  try {
    return await bisectInSlot();
  } catch (e) {
    // Whatever failed while being interrupted (a cancelled git or make) is the interrupt's doing.
    if (signal.aborted) throw interrupted(logPath);
    throw e;
  } finally {
    await unlock();
  }
}
