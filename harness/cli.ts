// vmrig's command line. Exit codes: 0 every expectation held, 1 one did not, 2 usage, spec or
// infrastructure error (nothing compared), 130 interrupted by SIGINT or SIGTERM (partial results kept).
import { parseArgs } from "node:util";
import path from "node:path";
import { runScenarioFile, type RunOptions } from "./run/run-file.ts";
import { holdKeptGuests, keepPolicy, normalizeKeepArgs, type GuestKeeper } from "./run/keep-failed.ts";
import { runSetup } from "./commands/setup.ts";
import { runDoctor } from "./commands/doctor.ts";
import { emitJsonSchema } from "./scenario/json-schema.ts";
import { ExitCode, VmrigError } from "./util/errors.ts";
import { killAllChildren } from "./util/children.ts";
import { runCleanups } from "./util/cleanup.ts";
import { repoRoot } from "./util/paths.ts";
import { nightlyCommand, nightlyUsage, runJobs } from "./commands/nightly.ts";
import { bisectCommand, bisectUsage } from "./commands/bisect.ts";
import { qmpCommand, qmpUsage } from "./commands/qmp.ts";
import { helpRequested } from "./cli-help.ts";
import { kernelBuildCommand, kernelGcCommand, kernelListCommand } from "./commands/kernel.ts";

const usage = `usage: vmrig <command> [options]

  run [scenario.yaml ...] [--kernel LABEL]...   run scenarios (default: scenarios/default.yaml)
      [--keep-failed[=30m]] [--keep-failed-on=hang,crash]
                                                keep the first HANG/CRASH guest paused for gdb
  setup [scenario.yaml ...]                     install host packages, virtiofsd, relay, kernels, images
  doctor                                        report QEMU, KVM, virtiofsd and build readiness on this host
  schema                                        print the scenario JSON Schema
  kernel build <scenario.yaml> [LABEL]          build a scenario's \`build\` kernels (cached; incremental)
  kernel list                                   the built kernels in the cache, with size and last use
  kernel gc [--max-age-days N] [--work] [--dry-run]
                                                remove interrupted builds and kernels unused for a while
${qmpUsage}
${nightlyUsage}
${bisectUsage}

vmrig <command> --help says more about each.

exit codes: 0 all expectations held, 1 an expectation failed, 2 usage/spec/infrastructure error,
            130 interrupted by SIGINT or SIGTERM (partial results kept, marked incomplete)`;

const defaultScenario = path.join(repoRoot, "scenarios", "default.yaml");

async function main(argv: string[]): Promise<number> {
  const help = helpRequested(argv);
  if (help) {
    process.stdout.write(help + "\n");
    return ExitCode.ok;
  }
  const [command, ...rest] = argv;
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
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
        },
      });
      const files = positionals.length ? positionals : [defaultScenario];
      const keep = keepPolicy(values["keep-failed"], values["keep-failed-on"]);
      const opts = { kernels: values.kernel, signal: controller.signal, ...(keep ? { keep } : {}) };
      if (values.jobs !== undefined) return runJobs(files, values.jobs, opts);
      return runSerially(files, opts);
    }
    case "setup": {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true });
      return runSetup(
        positionals.length ? positionals.map((f) => path.resolve(f)) : [defaultScenario],
        controller.signal,
      );
    }
    case "bisect":
      return bisectCommand(rest, controller.signal);
    case "kernel":
      return kernelCommand(rest, controller.signal);
    case "doctor":
      return runDoctor(controller.signal);
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
async function runSerially(files: string[], opts: RunOptions & { signal: AbortSignal }): Promise<number> {
  let worst: number = ExitCode.ok;
  const keepers: GuestKeeper[] = [];
  try {
    for (const f of files) {
      const r = await runScenarioFile(path.resolve(f), opts);
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
      throw new VmrigError(`unknown kernel command "${sub ?? ""}" (build, list, gc)\n${usage}`);
  }
}

let interrupted = false;
process.once("SIGINT", () => (interrupted = true));
process.once("SIGTERM", () => (interrupted = true));

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  async (e: unknown) => {
    await killAllChildren();
    await runCleanups();
    if (interrupted) {
      process.stderr.write("vmrig: interrupted before any guest ran; nothing was written\n");
      process.exit(ExitCode.interrupted);
    }
    if (e instanceof VmrigError) {
      process.stderr.write(`vmrig: ${e.message}\n`);
      process.exit(e.exitCode);
    }
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`vmrig: ${(e as Error).message}\n${usage}\n`);
      process.exit(ExitCode.usage);
    }
    process.stderr.write(`vmrig: internal error (a bug; please report it):\n${(e as Error).stack ?? String(e)}\n`);
    process.exit(ExitCode.usage);
  },
);
