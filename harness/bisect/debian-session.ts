// `vmrig bisect --debian-kernel GOOD..BAD` / `--debian-qemu GOOD..BAD`: which Debian package
// version made one scenario cell fail? No build: the versions Debian's archive holds between the
// ends (every suite) are the list, and a step replaces the row's kernel (or QEMU) with one of
// them. The verdicts are source bisect's (verdict.ts): check bad (its outcome is the identity to
// chase), check good (must pass), then halve the list; a package that cannot be fetched,
// unpacked or booted is a skip. Every finished step is in state.json before the next starts.
import fs from "node:fs/promises";
import path from "node:path";
import type { KernelEntry, Scenario, WorkloadSpec } from "../types.ts";
import { formatEntry, entriesBetween } from "../debian/changelog.ts";
import { kernelArch } from "../scenario/platform.ts";
import { loadScenario } from "../scenario/load.ts";
import { createProgress, type Progress } from "../run/progress.ts";
import { ExitCode, VmrigError } from "../util/errors.ts";
import { resultsRoot as defaultResultsRoot } from "../util/paths.ts";
import { runCell } from "./cell-runner.ts";
import { changelogCovering } from "./debian-changelog.ts";
import { type DebianRange, kernelRange, qemuRange } from "./debian-candidates.ts";
import { changelogLines, debianHeaderLines, debianResultLines, debianStepLine } from "./debian-format.ts";
import { type PackageFamily, continueCommand, nextInList, sourceRange, upstreamTag } from "./debian-range.ts";
import {
  type DebianAnswer,
  type DebianBisectParams,
  type DebianStateFile,
  type ListedVersion,
  bootsOf,
  debianBisectDirName,
  debianLogFile,
  findVersionStep,
  openDebianState,
  writeDebianState,
} from "./debian-state.ts";
import { firstLine } from "./format.ts";
import { type BisectResult, type RunInfo, type StepPhase, type StepRecord, bisectResult } from "./state.ts";
import { type BadRefIdentity, type Verdict, identifyBad, judgeBadRef, judgeRuns, thresholds } from "./verdict.ts";

export interface DebianBisectOptions {
  family: PackageFamily;
  /** GOOD and BAD as the user wrote them: "6.12", "6.18.15", "1:11.1.3+ds-1". */
  good: string;
  bad: string;
  scenario: string;
  kernel: string;
  workload: string;
  repeat?: number;
  restart?: boolean;
  resultsRoot?: string;
  signal?: AbortSignal;
  out?: (line: string) => void;
  progress?: Progress;
  onStep?: (r: StepRecord) => void;
}

export interface DebianBisectOutcome {
  dir: string;
  state: DebianStateFile;
  exitCode: number;
  /** Steps this invocation ran (not those resumed). */
  ran: StepRecord[];
}

interface Question {
  scenario: Scenario;
  entry: KernelEntry;
  workload: WorkloadSpec;
  repeat: number;
}

/** The scenario, its row and workload; a row of the wrong kind is a usage error naming it. */
async function resolveCell(o: DebianBisectOptions): Promise<Question> {
  const repeat = o.repeat ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 100)
    throw new VmrigError(`--repeat: expected a whole number from 1 to 100, got ${o.repeat}`);
  const scenario = await loadScenario(path.resolve(o.scenario));
  const entry = scenario.kernels.find((k) => k.label === o.kernel);
  if (!entry) {
    const labels = scenario.kernels.map((k) => k.label).join(", ");
    throw new VmrigError(`--kernel ${o.kernel}: ${scenario.file} has no such kernel (kernels: ${labels})`);
  }
  if (o.family === "kernel" && entry.source.kind !== "debian") {
    throw new VmrigError(
      `--kernel ${o.kernel}: a ${entry.source.kind} kernel; --debian-kernel replaces a Debian kernel row ` +
        "(`debian: { version: ..., flavour: ... }`), whose flavour it bisects",
    );
  }
  const workload = scenario.workloads.find((w) => w.id === o.workload);
  if (!workload) {
    const ids = scenario.workloads.map((w) => w.id).join(", ");
    throw new VmrigError(`--workload ${o.workload}: ${scenario.file} has no such workload (workloads: ${ids})`);
  }
  return { scenario, entry, workload, repeat };
}

const listed = (range: DebianRange): ListedVersion[] =>
  range.versions.map((v) => ({ version: v.version, name: v.items[0]!.name, suites: v.suites }));

export class DebianBisectSession {
  private readonly printed: string[] = [];
  private readonly ran: StepRecord[] = [];
  /** The answer's changelog lines and the note on the continuing source range, for the report. */
  private changelogText: string[] = [];
  private continueNote: string | undefined;
  private readonly signal: AbortSignal;
  private readonly progress: Progress;

  private constructor(
    private readonly options: DebianBisectOptions,
    private readonly q: Question,
    private readonly range: DebianRange,
    private readonly dir: string,
    private readonly state: DebianStateFile,
  ) {
    this.signal = options.signal ?? new AbortController().signal;
    this.progress = options.progress ?? createProgress();
  }

  /** The question checked and the list resolved from the archive; an earlier run's state found. */
  static async prepare(o: DebianBisectOptions): Promise<DebianBisectSession> {
    const q = await resolveCell(o);
    const progress = o.progress ?? createProgress();
    const arch = kernelArch(q.scenario, q.entry);
    const archive = { signal: o.signal, log: (l: string) => progress.stage(q.entry.label, l) };
    const ends = { good: o.good, bad: o.bad };
    const range =
      o.family === "kernel"
        ? await kernelRange((q.entry.source as { flavour: string }).flavour, arch, ends, archive)
        : await qemuRange(arch, ends, archive);
    const params: DebianBisectParams = {
      family: o.family,
      what: range.what,
      good: range.good.version,
      bad: range.bad.version,
      goodSpec: o.good,
      badSpec: o.bad,
      scenario: q.scenario.file,
      kernel: q.entry.label,
      workload: q.workload.id,
      repeat: q.repeat,
    };
    const scenarioDir = q.scenario.name.replace(/[^A-Za-z0-9._-]+/g, "_");
    const root = o.resultsRoot ?? defaultResultsRoot();
    const dir = path.join(root, "bisect", scenarioDir, debianBisectDirName(params));
    const fresh = { params, suites: range.suites, versions: listed(range), gaps: range.gaps };
    const state = await openDebianState(dir, fresh, o.restart ?? false);
    return new DebianBisectSession(o, q, range, dir, state);
  }

  async run(): Promise<DebianBisectOutcome> {
    try {
      return await this.runPhases();
    } catch (e) {
      if (this.signal.aborted) throw this.interrupted();
      throw e;
    }
  }

  private async runPhases(): Promise<DebianBisectOutcome> {
    const { params, suites, versions } = this.state;
    for (const l of debianHeaderLines(params, suites, versions, this.state.steps.length)) this.out(l);
    if (this.state.gaps?.length) this.out(`not listed, only partly left in the archive: ${this.state.gaps.join("; ")}`);
    const bad = await this.checkBad();
    await this.checkGood(bad);
    const verdicts = await this.stepUntilStopped(bad);
    const result = await this.answer(verdicts, bad);
    return this.report(result, bad);
  }

  // ---- the ends ----------------------------------------------------------------------------------

  private async checkBad(): Promise<BadRefIdentity> {
    const last = this.state.versions.length - 1;
    const { repeat } = this.q;
    const rec = await this.step("check-bad", 0, last, (runs) => judgeBadRef(runs, repeat));
    const id = identifyBad(rec.runs.map((r) => r.outcome));
    const found = "problem" in id ? undefined : id;
    if (!found || rec.verdict !== "bad") {
      throw new VmrigError(
        `BISECT_CHECK: the bad end ${rec.commit} does not show a failure to chase: ${rec.reason}` +
          (found && found.reproduced < thresholds(repeat).bad ? "; with a flaky bug, raise --repeat" : ""),
      );
    }
    this.state.identity = found;
    await writeDebianState(this.dir, this.state);
    return found;
  }

  private async checkGood(bad: BadRefIdentity): Promise<void> {
    const rec = await this.step("check-good", 0, 0, (runs) => judgeRuns(runs, bad.identity, this.q.repeat));
    if (rec.verdict === "good") return;
    const end = `BISECT_CHECK: the good end ${rec.commit}`;
    throw new VmrigError(
      rec.verdict === "bad"
        ? `${end} fails the same way (${rec.reason}): the regression is older than it`
        : `${end} is not clean: ${rec.reason}`,
    );
  }

  // ---- the list ----------------------------------------------------------------------------------

  /** Halves the list until the first bad version is found or skips hide it; returns every verdict by index. */
  private async stepUntilStopped(bad: BadRefIdentity): Promise<Map<number, Verdict>> {
    const count = this.state.versions.length;
    const verdicts = new Map<number, Verdict>([
      [0, "good"],
      [count - 1, "bad"],
    ]);
    let index = 0;
    for (let s = nextInList(count, verdicts); s.kind === "next"; s = nextInList(count, verdicts)) {
      const rec = await this.step("step", ++index, s.index, (runs) => judgeRuns(runs, bad.identity, this.q.repeat));
      verdicts.set(s.index, rec.verdict);
    }
    return verdicts;
  }

  private async answer(verdicts: Map<number, Verdict>, bad: BadRefIdentity): Promise<BisectResult> {
    const stop = nextInList(this.state.versions.length, verdicts);
    const versions = this.state.versions;
    if (stop.kind === "found") {
      const firstBad = versions[stop.firstBad]!;
      const end = { kind: "found" as const, culprit: firstBad.version, subject: firstBad.name };
      const result = bisectResult(end, this.state.steps, bad);
      const answer = await this.describeAnswer(versions[stop.lastGood]!, firstBad);
      this.state.result = { ...result, answer };
    } else {
      const candidates = stop.kind === "ambiguous" ? stop.candidates.map((i) => versions[i]!.version) : [];
      this.state.result = bisectResult({ kind: "ambiguous", candidates }, this.state.steps, bad);
    }
    await writeDebianState(this.dir, this.state);
    return this.state.result;
  }

  /** Upstream tags, the changelog entries between the two, the source bisect that continues. */
  private async describeAnswer(lastGood: ListedVersion, firstBad: ListedVersion): Promise<DebianAnswer> {
    const [lastGoodTag, firstBadTag] = [upstreamTag(lastGood.version), upstreamTag(firstBad.version)];
    const answer: DebianAnswer = { lastGood, firstBad, lastGoodTag, firstBadTag, changelog: { entries: 0 } };
    // A version the archive dropped since the list was saved still has newer packages' changelogs.
    const candidate = this.range.all.find((c) => c.version === firstBad.version) ?? {
      name: firstBad.name,
      version: firstBad.version,
      suite: firstBad.suites[0]!,
      parts: [],
    };
    const found = await changelogCovering(this.range, candidate, { signal: this.signal, log: this.slotLog });
    if ("problem" in found) answer.changelog = { entries: 0, problem: found.problem };
    else {
      const entries = entriesBetween(found.entries, lastGood.version, firstBad.version);
      const file = path.join(this.dir, "changelog.txt");
      await fs.writeFile(file, entries.map(formatEntry).join("\n\n") + "\n");
      answer.changelog = { from: `${found.from.name} ${found.from.version}`, entries: entries.length, file };
      this.changelogText = changelogLines(entries);
    }
    if (this.state.params.family === "kernel" && lastGoodTag && firstBadTag) {
      const range = sourceRange(lastGoodTag, firstBadTag);
      const { scenario, kernel, workload, repeat } = this.state.params;
      answer.continueCommand = continueCommand(range, { scenario, kernel, workload, repeat });
      if (range.note) this.continueNote = range.note;
    }
    return answer;
  }

  private async report(result: BisectResult, bad: BadRefIdentity): Promise<DebianBisectOutcome> {
    const answer = this.state.result?.answer;
    const counts = { boots: bootsOf(this.state), versions: this.state.versions.length, repeat: this.q.repeat, bad };
    this.out("");
    for (const l of debianResultLines(result, answer, counts)) this.out(l);
    if (answer) this.reportAnswer(answer);
    this.out(`bisect log: ${debianLogFile(this.dir)}`);
    this.out(`results: ${this.dir}`);
    await fs.writeFile(path.join(this.dir, "summary.txt"), this.printed.join("\n") + "\n");
    const exitCode = result.kind === "found" ? ExitCode.ok : ExitCode.expectationFailed;
    return { dir: this.dir, state: this.state, exitCode, ran: this.ran };
  }

  private reportAnswer(answer: DebianAnswer): void {
    const c = answer.changelog;
    if (c.problem) this.out(`Debian changelog: ${c.problem}`);
    else {
      this.out(`Debian changelog entries after the last good up to the first bad: ${c.entries} (from ${c.from})`);
      for (const l of this.changelogText) this.out(l);
      this.out(`  whole entries: ${c.file}`);
    }
    if (answer.continueCommand) {
      this.out(`continue upstream (a \`build:\` row from that tree as --kernel): ${answer.continueCommand}`);
      if (this.continueNote) this.out(`  (${this.continueNote})`);
    } else if (answer.lastGoodTag && answer.firstBadTag) {
      this.out(`upstream range: ${answer.lastGoodTag}..${answer.firstBadTag}`);
    }
  }

  // ---- one step ----------------------------------------------------------------------------------

  private async step(
    phase: StepPhase,
    index: number,
    at: number,
    judge: (runs: RunInfo["outcome"][]) => { verdict: Verdict; reason: string },
  ): Promise<StepRecord> {
    const v = this.state.versions[at]!;
    const done = findVersionStep(this.state, phase, v.version);
    if (done) {
      this.out(debianStepLine(done, this.q.workload.id, { resumed: true }));
      return done;
    }
    if (this.signal.aborted) throw this.interrupted();
    const rec = await this.runStep(phase, index, v, judge);
    this.state.steps.push(rec);
    this.ran.push(rec);
    await writeDebianState(this.dir, this.state);
    this.out(debianStepLine(rec, this.q.workload.id));
    this.options.onStep?.(rec);
    return rec;
  }

  private async runStep(
    phase: StepPhase,
    index: number,
    v: ListedVersion,
    judge: (runs: RunInfo["outcome"][]) => { verdict: Verdict; reason: string },
  ): Promise<StepRecord> {
    const startedAt = new Date();
    const subject = `${v.name} (${v.suites[0]})`;
    const ordinal = String(this.state.steps.length + 1).padStart(2, "0");
    const name = `${ordinal}-${phase === "step" ? `step${index}` : phase}-${v.version}`.replace(
      /[^A-Za-z0-9._-]+/g,
      "_",
    );
    const cell = { ...this.q, dir: this.dir, signal: this.signal, progress: this.progress };
    const base = { phase, index, commit: v.version, subject, startedAt: startedAt.toISOString() };
    try {
      const runs = await runCell(cell, name, (row) => this.rowFor(row, v));
      const j = judge(runs.map((r) => r.outcome));
      const build = { how: "cached" as const, ms: 0 };
      return { ...base, build, runs, verdict: j.verdict, reason: j.reason, ms: Date.now() - startedAt.getTime() };
    } catch (e) {
      // A package that cannot be fetched or unpacked says nothing about the bug: a skip, with why.
      if (this.signal.aborted || !(e instanceof VmrigError)) throw e;
      const build = { how: "failed" as const, ms: Date.now() - startedAt.getTime(), error: e.message };
      const reason = `could not provide ${v.name} ${v.version}: ${firstLine(e.message)}`;
      return { ...base, build, runs: [], verdict: "skip", reason, ms: build.ms };
    }
  }

  /** The row with its kernel (or its QEMU) replaced by the package at `v`, from its first suite. */
  private rowFor(row: KernelEntry, v: ListedVersion): KernelEntry {
    const suite = v.suites[0]!;
    if (this.state.params.family === "qemu") return { ...row, qemu: { kind: "debian", version: v.version, suite } };
    const flavour = this.state.params.what;
    return { ...row, source: { kind: "debian", version: v.version, flavour, suite } };
  }

  private out(line: string): void {
    this.printed.push(line);
    (this.options.out ?? ((l: string) => process.stdout.write(l + "\n")))(line);
  }

  private readonly slotLog = (line: string): void => this.progress.stage(this.q.entry.label, line);

  private interrupted(): VmrigError {
    return new VmrigError(
      `bisect interrupted; run the same command again to resume (state: ${path.join(this.dir, "state.json")})`,
      ExitCode.interrupted,
    );
  }
}

export async function runDebianBisect(o: DebianBisectOptions): Promise<DebianBisectOutcome> {
  return (await DebianBisectSession.prepare(o)).run();
}
