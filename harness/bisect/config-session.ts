// `vmrig bisect --config GOOD BAD`: which configuration option makes one scenario cell fail?
// One source tree (the row's `build:`), two configs: each is merged over the row's base and
// olddefconfig'd in that tree, and the options whose resolved values differ are halved
// (config-split.ts). A step builds BAD with GOOD's values for some of them, resolved again by
// olddefconfig; a step whose resolved config is one already tested reuses that verdict without
// building. Verdicts are the source bisect's (verdict.ts); every step is in state.json first.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { BuildSpec, KernelEntry, Scenario, WorkloadSpec } from "../types.ts";
import { artifactOf } from "../kernels/from-source/builder.ts";
import { type ConfigSlot, buildWithConfig, configSlot } from "../kernels/from-source/config-build.ts";
import { resolveConfigFile } from "../kernels/from-source/resolve-config.ts";
import { checkBuildFiles } from "../kernels/from-source/spec.ts";
import { loadScenario } from "../scenario/load.ts";
import { createProgress, type Progress } from "../run/progress.ts";
import { exists, writeFileAtomic } from "../util/atomic-fs.ts";
import { ExitCode, HostError, VmrigError } from "../util/errors.ts";
import { resultsRoot as defaultResultsRoot } from "../util/paths.ts";
import { runCell } from "./cell-runner.ts";
import { configHeaderLines, configResultLines, configStepLine } from "./config-format.ts";
import {
  type OptionChange,
  configKey,
  differingOptions,
  nextProbe,
  parseConfig,
  setKey,
  withGoodValues,
} from "./config-split.ts";
import {
  type ConfigAnswer,
  type ConfigBisectParams,
  type ConfigStateFile,
  type ConfigStepRecord,
  CONFIG_STATE_FORMAT,
  configBisectDirName,
  configLogFile,
  endFile,
  findConfigStep,
  openConfigState,
  sameResolvedConfig,
  savedEnds,
  verdictsByApplied,
  writeConfigState,
} from "./config-state.ts";
import { firstLine, stepLabel } from "./format.ts";
import { type BisectResult, type RunInfo, type StepPhase, bisectResult } from "./state.ts";
import { type BadRefIdentity, type Verdict, identifyBad, judgeBadRef, judgeRuns, thresholds } from "./verdict.ts";

export interface ConfigBisectOptions {
  /** The GOOD and BAD config files (full .config files or fragments). */
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
  onStep?: (r: ConfigStepRecord) => void;
}

export interface ConfigBisectOutcome {
  dir: string;
  state: ConfigStateFile;
  exitCode: number;
  /** Steps this invocation ran or reused (not those resumed). */
  ran: ConfigStepRecord[];
}

interface Question {
  scenario: Scenario;
  entry: KernelEntry;
  spec: BuildSpec;
  workload: WorkloadSpec;
  repeat: number;
  params: ConfigBisectParams;
}

type Judge = (runs: RunInfo["outcome"][]) => { verdict: Verdict; reason: string };

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

async function readConfigArg(which: "GOOD" | "BAD", file: string): Promise<{ file: string; sha: string }> {
  const abs = path.resolve(file);
  const text = await fs.readFile(abs, "utf8").catch((e: NodeJS.ErrnoException) => {
    const why = e.code === "ENOENT" ? "does not exist" : e.code === "EISDIR" ? "is a directory" : e.message;
    throw new VmrigError(`--config ${which} ${file}: ${why}`);
  });
  if (parseConfig(text).size === 0) throw new VmrigError(`--config ${which} ${file}: no CONFIG_ option in it`);
  return { file: abs, sha: sha256(text) };
}

/** The row (it must be `build:`), its workload and both files, checked before anything is written. */
async function resolveQuestion(o: ConfigBisectOptions): Promise<Question> {
  const repeat = o.repeat ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 100)
    throw new VmrigError(`--repeat: expected a whole number from 1 to 100, got ${o.repeat}`);
  const [good, bad] = [await readConfigArg("GOOD", o.good), await readConfigArg("BAD", o.bad)];
  const scenario = await loadScenario(path.resolve(o.scenario));
  const entry = scenario.kernels.find((k) => k.label === o.kernel);
  if (!entry) {
    const labels = scenario.kernels.map((k) => k.label).join(", ");
    throw new VmrigError(`--kernel ${o.kernel}: ${scenario.file} has no such kernel (kernels: ${labels})`);
  }
  if (entry.source.kind !== "build")
    throw new VmrigError(
      `--kernel ${o.kernel}: a ${entry.source.kind} kernel; --config builds the row's tree with each config, ` +
        "so the row must be `build: { source: ..., config: [...] }` (its config is replaced)",
    );
  // The row's own fragments are replaced by GOOD and BAD: only its patches must exist.
  const spec: BuildSpec = { ...entry.source.spec, fragments: [] };
  await checkBuildFiles(spec);
  const workload = scenario.workloads.find((w) => w.id === o.workload);
  if (!workload) {
    const ids = scenario.workloads.map((w) => w.id).join(", ");
    throw new VmrigError(`--workload ${o.workload}: ${scenario.file} has no such workload (workloads: ${ids})`);
  }
  const params: ConfigBisectParams = {
    good: good.file,
    bad: bad.file,
    goodSha256: good.sha,
    badSha256: bad.sha,
    scenario: scenario.file,
    kernel: entry.label,
    workload: workload.id,
    repeat,
  };
  return { scenario, entry, spec, workload, repeat, params };
}

export class ConfigBisectSession {
  private readonly printed: string[] = [];
  private readonly ran: ConfigStepRecord[] = [];
  private readonly signal: AbortSignal;
  private readonly progress: Progress;

  private constructor(
    private readonly options: ConfigBisectOptions,
    private readonly q: Question,
    private readonly slot: ConfigSlot,
    /** The ends as resolved when the question was checked. */
    private readonly ends: { good: string; bad: string },
    private readonly dir: string,
    private readonly state: ConfigStateFile,
  ) {
    this.signal = options.signal ?? new AbortController().signal;
    this.progress = options.progress ?? createProgress();
  }

  /** The question checked, both ends resolved in the row's tree, an earlier run's state found. */
  static async prepare(o: ConfigBisectOptions): Promise<ConfigBisectSession> {
    const q = await resolveQuestion(o);
    const progress = o.progress ?? createProgress();
    const scenarioDir = q.scenario.name.replace(/[^A-Za-z0-9._-]+/g, "_");
    const dir = path.join(o.resultsRoot ?? defaultResultsRoot(), "bisect", scenarioDir, configBisectDirName(q.params));
    if (o.restart) await fs.rm(dir, { recursive: true, force: true });
    const existed = await exists(dir);
    const ctx = { signal: o.signal ?? new AbortController().signal, log: (l: string) => progress.stage(o.kernel, l) };
    try {
      const slot = await configSlot(q.spec, ctx);
      const tree = slot.tree;
      const out = path.join(dir, "kconfig");
      const ends = (await savedEnds(dir, q.params, slot.identity)) ?? {
        good: await resolveConfigFile(q.spec, tree, q.params.good, out, ctx),
        bad: await resolveConfigFile(q.spec, tree, q.params.bad, out, ctx),
      };
      const diff = differingOptions(parseConfig(ends.good), parseConfig(ends.bad));
      if (diff.length === 0)
        throw new VmrigError(
          `--config: ${o.good} and ${o.bad} resolve to the same configuration in ${o.kernel}'s tree ` +
            `(${q.spec.base} + the file + olddefconfig): nothing to bisect`,
        );
      const fresh = { format: CONFIG_STATE_FORMAT, params: q.params, tree: slot.identity, diff, steps: [] };
      const state = await openConfigState(dir, fresh);
      await fs.mkdir(path.join(dir, "configs"), { recursive: true });
      for (const end of ["good", "bad"] as const) await writeFileAtomic(path.join(dir, endFile(end)), ends[end]);
      return new ConfigBisectSession(o, q, slot, ends, dir, state);
    } catch (e) {
      // A question that fails before it starts leaves nothing behind.
      if (!existed) await fs.rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  async run(): Promise<ConfigBisectOutcome> {
    try {
      return await this.runPhases();
    } catch (e) {
      if (this.signal.aborted) throw this.interrupted();
      throw e;
    }
  }

  private async runPhases(): Promise<ConfigBisectOutcome> {
    const { params, diff } = this.state;
    for (const l of configHeaderLines(params, diff, this.state.steps.length)) this.out(l);
    const bad = await this.checkBad();
    await this.checkGood(bad);
    await this.probeUntilStopped(bad);
    const result = await this.answer(bad);
    return this.report(result, bad);
  }

  private get optionNames(): string[] {
    return this.state.diff.map((c) => c.option);
  }

  // ---- the ends ----------------------------------------------------------------------------------

  private async checkBad(): Promise<BadRefIdentity> {
    const { repeat } = this.q;
    const rec = await this.step("check-bad", 0, [], (runs) => judgeBadRef(runs, repeat));
    const id = identifyBad(rec.runs.map((r) => r.outcome));
    const found = "problem" in id ? undefined : id;
    if (!found || rec.verdict !== "bad") {
      throw new VmrigError(
        `BISECT_CHECK: BAD (${this.q.params.bad}) does not show a failure to chase: ${rec.reason}` +
          (found && found.reproduced < thresholds(repeat).bad ? "; with a flaky bug, raise --repeat" : ""),
      );
    }
    this.state.identity = found;
    await writeConfigState(this.dir, this.state);
    return found;
  }

  private async checkGood(bad: BadRefIdentity): Promise<void> {
    const judge: Judge = (runs) => judgeRuns(runs, bad.identity, this.q.repeat);
    const rec = await this.step("check-good", 0, this.optionNames, judge);
    if (rec.verdict === "good") return;
    const end = `BISECT_CHECK: GOOD (${this.q.params.good})`;
    throw new VmrigError(
      rec.verdict === "bad"
        ? `${end} fails the same way (${rec.reason}): the configuration is not what makes the difference`
        : `${end} is not clean: ${rec.reason}`,
    );
  }

  // ---- the probes --------------------------------------------------------------------------------

  private async probeUntilStopped(bad: BadRefIdentity): Promise<void> {
    const judge: Judge = (runs) => judgeRuns(runs, bad.identity, this.q.repeat);
    let index = this.state.steps.filter((r) => r.phase === "step").length;
    for (;;) {
      const verdicts = verdictsByApplied(this.state.steps);
      const p = nextProbe(this.optionNames, (k) => verdicts.get(k));
      if (p.kind !== "probe") return;
      await this.step("step", ++index, p.apply, judge);
    }
  }

  private async answer(bad: BadRefIdentity): Promise<BisectResult> {
    const verdicts = verdictsByApplied(this.state.steps);
    const end = nextProbe(this.optionNames, (k) => verdicts.get(k));
    const built = this.state.steps.filter((r) => r.reusedFrom === undefined);
    if (end.kind === "found") {
      const option = this.state.diff.find((c) => c.option === end.option)!;
      const answer = await this.describeAnswer(option, end.lastBad, end.firstGood);
      const subject = `good ${option.good}, bad ${option.bad}`;
      this.state.result = { ...bisectResult({ kind: "found", culprit: end.option, subject }, built, bad), answer };
    } else if (end.kind === "ambiguous") {
      const result = bisectResult({ kind: "ambiguous", candidates: end.candidates }, built, bad);
      this.state.result = { ...result, applied: end.applied };
    }
    await writeConfigState(this.dir, this.state);
    return this.state.result!;
  }

  /** The resolved configs of the last bad and first good probe, and every option they differ in. */
  private async describeAnswer(option: OptionChange, lastBad: string[], firstGood: string[]): Promise<ConfigAnswer> {
    const configOf = (applied: string[]) => {
      const key = setKey(applied);
      return this.state.steps.find((r) => setKey(r.applied) === key)!.config;
    };
    const [badFile, goodFile] = [configOf(lastBad), configOf(firstGood)];
    const read = async (f: string) => parseConfig(await fs.readFile(path.join(this.dir, f), "utf8"));
    const together = differingOptions(await read(goodFile), await read(badFile));
    return { option, together, lastBad: path.join(this.dir, badFile), firstGood: path.join(this.dir, goodFile) };
  }

  private async report(result: BisectResult, bad: BadRefIdentity): Promise<ConfigBisectOutcome> {
    const counts = { options: this.state.diff.length, repeat: this.q.repeat, bad };
    this.out("");
    for (const l of configResultLines(result, this.state.result?.answer, counts)) this.out(l);
    this.out(`bisect log: ${configLogFile(this.dir)}`);
    this.out(`results: ${this.dir}`);
    await fs.writeFile(path.join(this.dir, "summary.txt"), this.printed.join("\n") + "\n");
    const exitCode = result.kind === "found" ? ExitCode.ok : ExitCode.expectationFailed;
    return { dir: this.dir, state: this.state, exitCode, ran: this.ran };
  }

  // ---- one step ----------------------------------------------------------------------------------

  /** BAD with GOOD's values of `applied`, resolved, then reused, or built and run. */
  private async step(phase: StepPhase, index: number, applied: string[], judge: Judge): Promise<ConfigStepRecord> {
    const done = findConfigStep(this.state, phase, applied);
    if (done) {
      this.out(configStepLine(done, this.q.workload.id, { resumed: true }));
      return done;
    }
    if (this.signal.aborted) throw this.interrupted();
    const { key, file } = await this.resolveProbe(phase, applied);
    const same = sameResolvedConfig(this.state, key);
    const rec = same ? this.reuse(same, phase, index, applied) : await this.runStep(phase, index, applied, file, judge);
    this.state.steps.push(rec);
    this.ran.push(rec);
    await writeConfigState(this.dir, this.state);
    this.out(configStepLine(rec, this.q.workload.id));
    this.options.onStep?.(rec);
    return rec;
  }

  /** The step's config: the ends as given, a probe as BAD's resolved values with GOOD's for `applied`. */
  private async resolveProbe(phase: StepPhase, applied: string[]): Promise<{ key: string; file: string }> {
    await fs.mkdir(path.join(this.dir, "configs"), { recursive: true });
    const end = phase === "check-bad" ? this.ends.bad : this.ends.good;
    const text = phase === "step" ? await this.resolveApplied(applied) : end;
    const key = configKey(parseConfig(text));
    const file = path.join("configs", `${key}.config`);
    await writeFileAtomic(path.join(this.dir, file), text);
    return { key, file };
  }

  /** BAD's resolved values with GOOD's for `applied`, merged over the base and olddefconfig'd. */
  private async resolveApplied(applied: string[]): Promise<string> {
    const chosen = new Set(applied);
    const text = withGoodValues(
      parseConfig(this.ends.bad),
      this.state.diff.filter((c) => chosen.has(c.option)),
    );
    const input = path.join(this.dir, "configs", `probe-${sha256(setKey(applied)).slice(0, 16)}.fragment`);
    await writeFileAtomic(input, text);
    const ctx = { signal: this.signal, log: this.slotLog };
    return resolveConfigFile(this.q.spec, this.slot.tree, input, path.join(this.dir, "kconfig"), ctx);
  }

  private reuse(same: ConfigStepRecord, phase: StepPhase, index: number, applied: string[]): ConfigStepRecord {
    const ordinal = this.state.steps.indexOf(same);
    return {
      ...this.base(phase, index, applied, same.config, same.configKey),
      build: { how: "cached", ms: 0 },
      runs: [],
      verdict: same.verdict,
      reason: `olddefconfig made it the config of ${stepLabel(same)}: ${same.reason}`,
      reusedFrom: ordinal,
      ms: 0,
    };
  }

  private base(phase: StepPhase, index: number, applied: string[], config: string, key: string) {
    const n = applied.length;
    const subject = n === 0 ? "BAD" : n === this.state.diff.length ? "GOOD" : `BAD + GOOD's values of ${n} options`;
    return { phase, index, commit: key, subject, applied, configKey: key, config, startedAt: new Date().toISOString() };
  }

  private async runStep(
    phase: StepPhase,
    index: number,
    applied: string[],
    file: string,
    judge: Judge,
  ): Promise<ConfigStepRecord> {
    const started = Date.now();
    const key = path.basename(file, ".config");
    const ordinal = String(this.state.steps.length + 1).padStart(2, "0");
    const name = `${ordinal}-${phase === "step" ? `step${index}` : phase}-${key}`;
    const base = this.base(phase, index, applied, file, key);
    const spec = this.q.spec;
    const log = (l: string) => this.progress.stage(this.q.entry.label, `${key}: ${l}`);
    let outcome;
    try {
      outcome = await buildWithConfig(spec, this.slot, path.join(this.dir, file), {
        arch: spec.arch,
        signal: this.signal,
        log,
      });
    } catch (e) {
      // A config that does not build says nothing about the bug: a skip, with why.
      if (this.signal.aborted || e instanceof HostError || !(e instanceof VmrigError)) throw e;
      const build = { how: "failed" as const, ms: Date.now() - started, error: e.message };
      return {
        ...base,
        build,
        runs: [],
        verdict: "skip",
        reason: `build failed: ${firstLine(e.message)}`,
        ms: build.ms,
      };
    }
    const build = { how: outcome.how, ms: Date.now() - started, key: outcome.manifest.key };
    const artifact = artifactOf(spec, outcome.manifest);
    const source = { kind: "path" as const, kernel: artifact.image, config: artifact.config };
    const cell = { ...this.q, dir: this.dir, signal: this.signal, progress: this.progress };
    const runs = await runCell(cell, name, (row) => ({ ...row, source }));
    const j = judge(runs.map((r) => r.outcome));
    return { ...base, build, runs, verdict: j.verdict, reason: j.reason, ms: Date.now() - started };
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

export async function runConfigBisect(o: ConfigBisectOptions): Promise<ConfigBisectOutcome> {
  return (await ConfigBisectSession.prepare(o)).run();
}
