// One `vmrig bisect`, phase by phase. prepare: the question checked, the results directory and
// whatever an earlier run of the same question left there. Then, holding the work slot (a
// private clone of the tree and its build directory): check the ends (bad must fail, good must
// pass), step through git bisect in the clone, verify the culprit by reverting it (--verify),
// report. A step is recorded (state.json, then git's log) before the next one starts.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { BuildSpec } from "../types.ts";
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
  ensureClone,
  parseBisectLog,
  revertInTree,
} from "./git.ts";
import { type BisectQuestion, type BisectQuestionArgs, resolveQuestion } from "./question.ts";
import {
  type BisectResult,
  type BisectStateFile,
  type RunInfo,
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

export interface BisectOptions extends BisectQuestionArgs {
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
  /**
   * The work area in vmrig's cache (the private clone and the build directory), kept for the
   * next bisect of this tree.
   */
  slot: string;
}

/** A step's verdict from its runs (a failed build is judged before: always a skip). */
type StepJudge = (r: StepRun) => Pick<Judgement, "verdict" | "reason">;

/** For verify: the revert already in the tree, and a `prepare` that leaves the tree as it is. */
interface StepExtra {
  reverted?: string;
  prepare?: () => Promise<void>;
}

/** Where git bisect stopped: a culprit, or the candidates skips left. */
type BisectStop = Exclude<BisectState, { kind: "next" }>;

const outcomesOf = (r: { runs: RunInfo[] }) => r.runs.map((x) => x.outcome);

/**
 * The work slot for bisects of `tree` with this build (arch, base config, fragments): one per
 * combination, kept between bisects so the next build is incremental.
 */
async function workSlot(tree: string, spec: BuildSpec): Promise<string> {
  const fragmentTexts = await Promise.all(spec.fragments.map((f) => fs.readFile(f, "utf8")));
  const slotId = createHash("sha256")
    .update(JSON.stringify({ tree, arch: spec.arch, base: spec.base, fragments: fragmentTexts.map(sha256Text) }))
    .digest("hex")
    .slice(0, 24);
  // Beside the build pipeline's own work slots, so `vmrig kernel gc` (age, --work) and `kernel list` cover it.
  return path.join(buildPaths.work(), `bisect-${slotId}`);
}

/** What prepare resolves before the session exists. */
interface Prepared {
  question: BisectQuestion;
  dir: string;
  state: BisectStateFile;
  slot: string;
  signal: AbortSignal;
  progress: Progress;
}

export class BisectSession {
  private readonly options: BisectOptions;
  private readonly question: BisectQuestion;
  /** The bisect's results directory: state.json, bisect.log, summary.txt, steps/. */
  private readonly dir: string;
  private readonly logPath: string;
  private readonly state: BisectStateFile;
  private readonly slot: string;
  /** The private clone in the slot, where git bisect runs. */
  private readonly src: string;
  private readonly signal: AbortSignal;
  private readonly progress: Progress;
  private readonly runner: StepRunner;
  /** Every line printed, for summary.txt. */
  private readonly printed: string[] = [];
  /** Steps this invocation ran. */
  private readonly ran: StepRecord[] = [];

  private constructor(options: BisectOptions, p: Prepared) {
    this.options = options;
    this.question = p.question;
    this.dir = p.dir;
    this.logPath = logFile(p.dir);
    this.state = p.state;
    this.slot = p.slot;
    this.src = path.join(p.slot, "src");
    this.signal = p.signal;
    this.progress = p.progress;
    this.runner = options.runner ?? this.cellRunner();
  }

  /** Phase 1: the question resolved, the state to resume from, the work slot chosen. Nothing locked yet. */
  static async prepare(options: BisectOptions): Promise<BisectSession> {
    const signal = options.signal ?? new AbortController().signal;
    const progress = options.progress ?? createProgress();
    const question = await resolveQuestion(options);
    const { params, scenario, spec } = question;
    const scenarioDir = scenario.name.replace(/[^A-Za-z0-9._-]+/g, "_");
    const dir = path.join(options.resultsRoot ?? defaultResultsRoot(), "bisect", scenarioDir, bisectDirName(params));
    const state = await openState(dir, params, options.restart ?? false);
    const slot = await workSlot(params.tree, spec);
    return new BisectSession(options, { question, dir, state, slot, signal, progress });
  }

  /** The other phases (check the ends, step, verify, report), holding the work slot's lock. */
  async run(): Promise<BisectOutcome> {
    const unlock = await lockDir(this.slot, { signal: this.signal, log: this.slotLog });
    try {
      return await this.runInSlot();
    } catch (e) {
      // Whatever failed while being interrupted (a cancelled git or make) is the interrupt's doing.
      if (this.signal.aborted) throw this.interrupted();
      throw e;
    } finally {
      await unlock();
    }
  }

  private async runInSlot(): Promise<BisectOutcome> {
    await fs.writeFile(path.join(this.slot, "last-used"), new Date().toISOString() + "\n");
    await ensureClone(this.question.params.tree, this.src, this.signal, this.slotLog);
    this.out(headerLine(this.question.params, this.question.commits, this.state.steps.length));
    const bad = await this.checkEnds();
    const stop = await this.stepUntilStopped(await this.resumeGitBisect(), bad.identity);
    const result = await this.answer(stop, bad);
    return this.report(result, bad);
  }

  // ---- BISECT_CHECK: bad must show something to chase, good must pass --------------------------

  private async checkEnds(): Promise<BadRefIdentity> {
    const bad = await this.checkBad();
    this.state.identity = bad;
    await writeState(this.dir, this.state);
    await this.checkGood(bad.identity);
    return bad;
  }

  /** The bad ref's failure is the identity the bisect chases. */
  private async checkBad(): Promise<BadRefIdentity> {
    const { bad, badRef, repeat } = this.question.params;
    const rec = await this.step("check-bad", 0, bad, (r) => judgeBadRef(outcomesOf(r), repeat));
    if (rec.build.how === "failed") {
      const log = rec.build.log ? `\n  log: ${path.join(this.dir, rec.build.log)}` : "";
      throw new VmrigError(`BISECT_CHECK: the bad ref ${badRef} does not build: ${rec.build.error}${log}`);
    }
    const id = identifyBad(outcomesOf(rec));
    const found = "problem" in id ? undefined : id;
    if (!found || rec.verdict !== "bad") {
      throw new VmrigError(
        `BISECT_CHECK: the bad ref ${badRef} (${bad.slice(0, 12)}) does not show a failure to chase: ${rec.reason}` +
          (found && found.reproduced < thresholds(repeat).bad ? `; with a flaky bug, raise --repeat` : ""),
      );
    }
    return found;
  }

  private async checkGood(identity: Identity): Promise<void> {
    const { good, goodRef } = this.question.params;
    const rec = await this.step("check-good", 0, good, this.judgeAgainst(identity));
    if (rec.verdict === "good") return;
    const ref = `BISECT_CHECK: the good ref ${goodRef} (${good.slice(0, 12)})`;
    throw new VmrigError(
      rec.verdict === "bad"
        ? `${ref} fails the same way (${rec.reason}): the regression is older than it`
        : `${ref} is not clean: ${rec.reason}`,
    );
  }

  // ---- git bisect in the clone -------------------------------------------------------------------

  /**
   * Starts git bisect in the clone, or brings it back to where an earlier run stopped: its log
   * replayed, and the recorded steps the log does not have (interrupted before it was saved)
   * marked again.
   */
  private async resumeGitBisect(): Promise<BisectState> {
    const { good, bad, workload } = this.question.params;
    const before = this.bisectSteps();
    let bs: BisectState;
    if (await exists(this.logPath)) {
      bs = await bisectReplay(this.src, this.logPath, this.signal);
      const logged = new Set(parseBisectLog(await fs.readFile(this.logPath, "utf8")).map((x) => x.commit));
      for (const r of before) if (!logged.has(r.commit)) bs = await this.mark(r);
    } else {
      bs = await bisectStart(this.src, bad, good, this.signal);
      for (const r of before) bs = await this.mark(r);
    }
    await this.saveLog();
    for (const r of before) this.out(stepLine(r, workload, { resumed: true }));
    return bs;
  }

  private async stepUntilStopped(bs: BisectState, identity: Identity): Promise<BisectStop> {
    let index = this.bisectSteps().length;
    while (bs.kind === "next") {
      const rec = await this.step("step", ++index, bs.commit, this.judgeAgainst(identity));
      bs = await this.mark(rec);
      await this.saveLog();
    }
    return bs;
  }

  private mark(r: StepRecord): Promise<BisectState> {
    return bisectMark(this.src, r.verdict, r.commit, this.signal);
  }

  private async saveLog(): Promise<void> {
    const text = await bisectLog(this.src);
    await writeFileAtomic(this.logPath, text.endsWith("\n") ? text : `${text}\n`);
  }

  private bisectSteps(): StepRecord[] {
    return this.state.steps.filter((s) => s.phase === "step");
  }

  // ---- the answer --------------------------------------------------------------------------------

  private async answer(stop: BisectStop, bad: BadRefIdentity): Promise<BisectResult> {
    const end =
      stop.kind === "found" ? { ...stop, subject: await commitSubject(this.question.params.tree, stop.culprit) } : stop;
    const result = bisectResult(end, this.state.steps, bad);
    if (this.options.verify && result.kind === "found")
      result.verify = await this.verify(result.culprit!, result.subject ?? "", bad.identity);
    this.state.result = result;
    await writeState(this.dir, this.state);
    return result;
  }

  /** --verify: the bad ref with the culprit reverted, built and run; the clone is cleaned afterwards. */
  private async verify(culprit: string, subject: string, identity: Identity): Promise<RevertCheck> {
    const { bad, workload } = this.question.params;
    const what = `reverting ${culprit.slice(0, 12)} ("${subject}") on the bad ref ${bad.slice(0, 12)}`;
    if (!findStep(this.state, "verify", bad, culprit)) {
      await checkoutCommit(this.src, bad, this.signal);
      const rv = await revertInTree(this.src, culprit, this.signal);
      if (!rv.ok) {
        const detail = `${what} does not apply: ${rv.why}`;
        this.out(`verify      ${detail}`);
        return { outcome: "revert-does-not-apply", detail };
      }
    }
    const rec = await this.step("verify", 0, bad, this.judgeAgainst(identity), {
      reverted: culprit,
      prepare: async () => undefined,
    });
    await cleanTree(this.src, this.signal);
    return judgeRevert(what, rec, workload, identity);
  }

  private async report(result: BisectResult, bad: BadRefIdentity): Promise<BisectOutcome> {
    const { repeat } = this.question.params;
    for (const l of reportLines(result, bad, repeat, { log: this.logPath, dir: this.dir })) this.out(l);
    await fs.writeFile(path.join(this.dir, "summary.txt"), this.printed.join("\n") + "\n");
    const exitCode =
      result.kind === "found" && (!result.verify || result.verify.outcome === "passes")
        ? ExitCode.ok
        : ExitCode.expectationFailed;
    const { dir, logPath, state, ran, slot } = this;
    return { dir, logFile: logPath, state, result, exitCode, ran, slot };
  }

  // ---- one step ----------------------------------------------------------------------------------

  /** The recorded step when an earlier run finished it; else built, run, judged and recorded before the next. */
  private async step(
    phase: StepPhase,
    index: number,
    commit: string,
    judge: StepJudge,
    extra: StepExtra = {},
  ): Promise<StepRecord> {
    const done = findStep(this.state, phase, commit, extra.reverted);
    if (done) {
      this.out(stepLine(done, this.question.params.workload, { resumed: true }));
      return done;
    }
    if (this.signal.aborted) throw this.interrupted();
    const rec = await this.runStep(phase, index, commit, judge, extra);
    this.state.steps.push(rec);
    this.ran.push(rec);
    await writeState(this.dir, this.state);
    this.out(stepLine(rec, this.question.params.workload));
    this.options.onStep?.(rec);
    return rec;
  }

  private async runStep(
    phase: StepPhase,
    index: number,
    commit: string,
    judge: StepJudge,
    extra: StepExtra,
  ): Promise<StepRecord> {
    const subject = await commitSubject(this.question.params.tree, commit);
    const reverted = extra.reverted ? { reverted: extra.reverted } : {};
    const startedAt = new Date();
    const run = await this.runner.run({
      phase,
      index,
      commit,
      subject,
      ...reverted,
      name: stepRunName(this.state.steps.length + 1, phase, index, commit),
      prepare: extra.prepare ?? (() => this.checkout(commit)),
    });
    if (this.signal.aborted) throw this.interrupted();
    const j =
      run.build.how === "failed"
        ? { verdict: "skip" as const, reason: `build failed: ${firstLine(run.build.error)}` }
        : judge(run);
    return {
      phase,
      index,
      commit,
      subject,
      ...reverted,
      build: run.build,
      runs: run.runs,
      verdict: j.verdict,
      reason: j.reason,
      startedAt: startedAt.toISOString(),
      ms: Date.now() - startedAt.getTime(),
    };
  }

  private async checkout(commit: string): Promise<void> {
    this.slotLog(`checking out ${commit.slice(0, 12)} in ${this.src}`);
    await checkoutCommit(this.src, commit, this.signal);
  }

  private judgeAgainst(identity: Identity): StepJudge {
    return (r) => judgeRuns(outcomesOf(r), identity, this.question.params.repeat);
  }

  private cellRunner(): StepRunner {
    const { scenario, entry, spec, workload, params } = this.question;
    return createCellRunner({
      scenario,
      entry,
      spec,
      workload,
      repeat: params.repeat,
      slot: this.slot,
      treeName: path.basename(params.tree),
      dir: this.dir,
      signal: this.signal,
      progress: this.progress,
    });
  }

  private out(line: string): void {
    this.printed.push(line);
    (this.options.out ?? ((l: string) => process.stdout.write(l + "\n")))(line);
  }

  private readonly slotLog = (line: string): void => this.progress.stage(this.question.entry.label, line);

  private interrupted(): VmrigError {
    return new VmrigError(
      `bisect interrupted; run the same command again to resume (bisect log: ${this.logPath})`,
      ExitCode.interrupted,
    );
  }
}
