// vmrig's command line. Exit codes: 0 every expectation held, 1 one did not, 2 usage, spec or
// infrastructure error (nothing compared), 130 interrupted by SIGINT or SIGTERM (partial results kept).
import { parseArgs } from "node:util";
import path from "node:path";
import { runScenarioFile, type RunOptions } from "./run/run-file.ts";
import { holdKeptGuests, keepPolicy, normalizeKeepArgs, type GuestKeeper } from "./run/keep-failed.ts";
import { runSetup } from "./commands/setup.ts";
import { runDoctor } from "./commands/doctor.ts";
import { emitJsonSchema } from "./scenario/json-schema.ts";
import { ExitCode, SpecError, VmrigError } from "./util/errors.ts";
import { loadScenario } from "./scenario/load.ts";
import type { Scenario } from "./types.ts";
import { killAllChildren } from "./util/children.ts";
import { runCleanups } from "./util/cleanup.ts";
import { repoRoot } from "./util/paths.ts";
import { nightlyCommand, nightlyUsage, runJobs } from "./commands/nightly.ts";
import { bisectCommand, bisectUsage } from "./commands/bisect.ts";
import { shellCommand } from "./commands/shell.ts";
import { qmpCommand, qmpUsage } from "./commands/qmp.ts";
import { vfioCommand, vfioUsage } from "./commands/vfio.ts";
import { helpRequested } from "./cli-help.ts";
import { describeShard, mergeCommand, shardPlanFor, shardUsage } from "./commands/shard.ts";
import { exportCommand, exportUsage } from "./commands/export.ts";
import {
  kernelBuildCommand,
  kernelDebugSymbolsCommand,
  kernelGcCommand,
  kernelListCommand,
} from "./commands/kernel.ts";

const usage = `usage: vmrig <command> [options]

  run [scenario.yaml ...] [--kernel LABEL]...   run scenarios (default: scenarios/default.yaml)
      [--keep-failed[=30m]] [--keep-failed-on=hang,crash]
                                                keep the first HANG/CRASH guest paused for gdb
  shell SCENARIO [--kernel LABEL] [-- CMD...]   boot one kernel row's guest and open a shell in it (or run CMD)
  shell --kernel-path IMAGE [-- CMD...]         the same for a kernel image from a build tree
  setup [scenario.yaml ...]                     install host packages, virtiofsd, relay, kernels, images
  doctor                                        report QEMU, KVM, virtiofsd and build readiness on this host
  schema                                        print the scenario JSON Schema
  kernel build <scenario.yaml> [LABEL]          build a scenario's \`build\` kernels (cached; incremental)
  kernel debug-symbols <scenario.yaml> LABEL    fetch that kernel's vmlinux with DWARF (Debian's -dbg), print its path
  kernel list                                   the built kernels in the cache, with size and last use
  kernel gc [--max-age-days N] [--work] [--dry-run]
                                                remove interrupted builds and kernels unused for a while
${shardUsage}
${qmpUsage}
${vfioUsage}
${nightlyUsage}
${bisectUsage}
${exportUsage}

vmrig <command> --help says more about each.

exit codes: 0 all expectations held, 1 an expectation failed, 2 usage/spec/infrastructure error,
            130 interrupted by SIGINT or SIGTERM (partial results kept, marked incomplete)`;

/** Signals this close to the first are the same interruption delivered twice, not a second Ctrl-C. */
const SAME_INTERRUPTION_MS = 1500;

/** Loads every scenario, or throws one SpecError with every file's problems. */
async function loadScenarios(files: string[]): Promise<Scenario[]> {
  const loaded = await Promise.allSettled(files.map((f) => loadScenario(f)));
  const failed = loaded.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
  if (failed.length === 0) return loaded.map((r) => (r as PromiseFulfilledResult<Scenario>).value);
  if (failed.every((e) => e instanceof SpecError)) throw new SpecError(failed.flatMap((e) => e.issues));
  throw failed.find((e) => !(e instanceof SpecError));
}

const defaultScenario = path.join(repoRoot, "scenarios", "default.yaml");

async function main(argv: string[]): Promise<number> {
  const help = helpRequested(argv);
  if (help) {
    process.stdout.write(help + "\n");
    return ExitCode.ok;
  }
  const [command, ...rest] = argv;
  const controller = new AbortController();
  let firstSignalAt: number | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    const now = Date.now();
    // One kill of the process group reaches vmrig twice through npm, which forwards it: one interruption.
    if (firstSignalAt !== undefined && now - firstSignalAt < SAME_INTERRUPTION_MS) return;
    const interrupts = firstSignalAt === undefined ? 1 : 2;
    firstSignalAt ??= now;
    process.stderr.write(`\nvmrig: ${sig}: stopping guests and daemons, keeping the results so far\n`);
    controller.abort(new Error(sig));
    void killAllChildren();
    // A second signal exits at once, but not before host changes (VFIO bindings) are undone: QEMU first, then them.
    if (interrupts > 1)
      void killAllChildren(500)
        .then(() => runCleanups())
        .finally(() => process.exit(ExitCode.interrupted));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  switch (command) {
    case "run": {
      const { values, positionals } = parseArgs({
        args: normalizeKeepArgs(rest),
        allowPositionals: true,
        options: {
          kernel: { type: "string", multiple: true },
          jobs: { type: "string", short: "j" },
          "keep-failed": { type: "string" },
          "keep-failed-on": { type: "string" },
          shard: { type: "string" },
          "shard-by": { type: "string" },
          "shard-history": { type: "string" },
        },
      });
      let files = positionals.length ? positionals : [defaultScenario];
      // Every file is checked before the first guest boots: a typo in the last must not cost the others' run.
      let scenarios = await loadScenarios(files.map((f) => path.resolve(f)));
      const keep = keepPolicy(values["keep-failed"], values["keep-failed-on"]);
      const shard = await shardPlanFor(scenarios, values);
      const opts = { kernels: values.kernel, signal: controller.signal, ...(keep ? { keep } : {}), shard };
      if (shard) {
        process.stderr.write(`vmrig: ${describeShard(shard)}\n`);
        const ran = scenarios.map((s) => shard.rowsOf(s.name).length > 0);
        files = files.filter((_, i) => ran[i]);
        scenarios = scenarios.filter((_, i) => ran[i]);
        if (!files.length) return ExitCode.ok;
      }
      if (values.jobs !== undefined) return runJobs(files, values.jobs, opts);
      return runSerially(files, scenarios, opts);
    }
    case "setup": {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true });
      return runSetup(
        positionals.length ? positionals.map((f) => path.resolve(f)) : [defaultScenario],
        controller.signal,
      );
    }
    case "shell":
      return shellCommand(rest, controller.signal);
    case "bisect":
      return bisectCommand(rest, controller.signal);
    case "kernel":
      return kernelCommand(rest, controller.signal);
    case "doctor":
      return runDoctor(controller.signal);
    case "merge":
      return mergeCommand(rest);
    case "vfio":
      return vfioCommand(rest, (t) => process.stdout.write(t));
    case "export":
      return exportCommand(rest, (t) => process.stdout.write(t));
    case "qmp":
      return qmpCommand(rest, (t) => process.stdout.write(t));
    case "schema":
      process.stdout.write(JSON.stringify(emitJsonSchema(), null, 2) + "\n");
      return ExitCode.ok;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(usage + "\n");
      return command === undefined ? ExitCode.usage : ExitCode.ok;
    default:
      return nightlyCommand(command, rest) ?? Promise.reject(new VmrigError(`unknown command "${command}"\n${usage}`));
  }
}

/** Scenario files one after another; kept guests (`--keep-failed`) are held once all have run. */
async function runSerially(
  files: string[],
  scenarios: Scenario[],
  opts: RunOptions & { signal: AbortSignal },
): Promise<number> {
  let worst: number = ExitCode.ok;
  const keepers: GuestKeeper[] = [];
  try {
    for (const [i, f] of files.entries()) {
      const r = await runScenarioFile(path.resolve(f), { ...opts, scenario: scenarios[i] });
      if (r.keeper) keepers.push(r.keeper);
      worst = Math.max(worst, r.exitCode);
      if (opts.signal.aborted) break;
    }
  } catch (e) {
    // A later file's error ends the command now: the guests kept so far are not held for it.
    await Promise.all(keepers.map((k) => k.releaseAll()));
    throw e;
  }
  await holdKeptGuests(keepers, opts.signal, (t) => process.stdout.write(t));
  return worst;
}

async function kernelCommand(args: string[], signal: AbortSignal): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "build": {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true });
      if (positionals.length < 1 || positionals.length > 2)
        throw new VmrigError(`kernel build needs a scenario file and optionally a kernel label\n${usage}`);
      return kernelBuildCommand(path.resolve(positionals[0]!), positionals[1], { signal });
    }
    case "debug-symbols": {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true });
      if (positionals.length !== 2)
        throw new VmrigError(`kernel debug-symbols needs a scenario file and a kernel label\n${usage}`);
      return kernelDebugSymbolsCommand(path.resolve(positionals[0]!), positionals[1]!, { signal });
    }
    case "list":
      parseArgs({ args: rest, allowPositionals: false });
      return kernelListCommand();
    case "gc": {
      const { values } = parseArgs({
        args: rest,
        options: { "max-age-days": { type: "string" }, work: { type: "boolean" }, "dry-run": { type: "boolean" } },
      });
      const days = values["max-age-days"] === undefined ? undefined : Number(values["max-age-days"]);
      if (days !== undefined && !(Number.isFinite(days) && days >= 0))
        throw new VmrigError(`--max-age-days: expected a number of days, got "${values["max-age-days"]}"`);
      return kernelGcCommand({ maxAgeDays: days, work: values.work, dryRun: values["dry-run"] });
    }
    default:
      throw new VmrigError(`unknown kernel command "${sub ?? ""}" (build, debug-symbols, list, gc)\n${usage}`);
  }
}

let interrupted = false;
process.once("SIGINT", () => (interrupted = true));
process.once("SIGTERM", () => (interrupted = true));

/** Exits once `text` is written: on a pipe, exiting right after write(2) would cut the message short. */
const exitAfter = (text: string, code: number) => process.stderr.write(text, () => process.exit(code));

main(process.argv.slice(2)).then(
  (code) => process.stdout.write("", () => process.exit(code)),
  async (e: unknown) => {
    await killAllChildren();
    await runCleanups();
    if (interrupted)
      return exitAfter("vmrig: interrupted before any guest ran; nothing was written\n", ExitCode.interrupted);
    if (e instanceof VmrigError) return exitAfter(`vmrig: ${e.message}\n`, e.exitCode);
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"))
      return exitAfter(`vmrig: ${(e as Error).message}\n${usage}\n`, ExitCode.usage);
    exitAfter(`vmrig: internal error (a bug; please report it):\n${(e as Error).stack ?? String(e)}\n`, ExitCode.usage);
  },
);
