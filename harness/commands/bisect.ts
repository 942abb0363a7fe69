// `vmrig bisect --tree PATH --good REF --bad REF --scenario FILE --kernel LABEL --workload ID
//  [--repeat N] [--verify] [--restart]`
// `vmrig bisect --debian-kernel GOOD..BAD | --debian-qemu GOOD..BAD --scenario FILE --kernel LABEL
//  --workload ID [--repeat N] [--restart]`
// `vmrig bisect --config GOOD BAD --scenario FILE --kernel LABEL --workload ID [--repeat N] [--restart]`;
// the scenario may be the one positional argument instead (after --config's two files).
import { parseArgs } from "node:util";
import path from "node:path";
import { ExitCode, VmrigError } from "../util/errors.ts";
import { wholeNumber } from "../util/cli-values.ts";
import { runBisect } from "../bisect/bisect.ts";
import { parseVersionRange } from "../bisect/debian-range.ts";
import { runDebianBisect } from "../bisect/debian-session.ts";
import { runConfigBisect } from "../bisect/config-session.ts";

export const bisectUsage =
  "  bisect --tree PATH --good REF --bad REF --scenario FILE --kernel LABEL --workload ID " +
  "[--repeat N] [--verify] [--restart]\n" +
  "                                                find the commit that makes one cell fail (resumes when rerun)\n" +
  "  bisect --debian-kernel GOOD..BAD | --debian-qemu GOOD..BAD --scenario FILE --kernel LABEL --workload ID " +
  "[--repeat N] [--restart]\n" +
  "                                                the same over Debian's kernel or QEMU packages (no build)\n" +
  "  bisect --config GOOD BAD --scenario FILE --kernel LABEL --workload ID [--repeat N] [--restart]\n" +
  "                                                find the config option that makes one cell fail (one tree)";

type Values = Record<string, string | boolean | undefined>;

function usageError(message: string): VmrigError {
  return new VmrigError(`bisect: ${message}\nusage:\n${bisectUsage}`, ExitCode.usage);
}

function requireFlags(values: Values, names: readonly string[]): void {
  const missing = names.filter((k) => !values[k]);
  if (missing.length) throw usageError(`missing ${missing.map((m) => `--${m}`).join(", ")}`);
}

/** An interrupt keeps every finished step: say how to resume (vmrig's generic message would not). */
function resumeHint(e: unknown): { exitCode: number } {
  if (e instanceof VmrigError && e.exitCode === ExitCode.interrupted) {
    process.stderr.write(`vmrig: ${e.message}\n`);
    return { exitCode: ExitCode.interrupted };
  }
  throw e;
}

export async function bisectCommand(args: string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      tree: { type: "string" },
      good: { type: "string" },
      bad: { type: "string" },
      "debian-kernel": { type: "string" },
      "debian-qemu": { type: "string" },
      config: { type: "boolean" },
      scenario: { type: "string" },
      kernel: { type: "string" },
      workload: { type: "string" },
      repeat: { type: "string" },
      verify: { type: "boolean" },
      restart: { type: "boolean" },
    },
  });
  if (values.config) return configBisectCommand(values, positionals, signal);
  // The scenario may also come as the one positional argument, as `vmrig run` takes it.
  if (positionals.length > 1 || (positionals.length === 1 && values.scenario !== undefined))
    throw usageError(
      `one scenario, by --scenario or as an argument; got ${[values.scenario, ...positionals].filter(Boolean).join(", ")}`,
    );
  if (positionals.length === 1) values.scenario = positionals[0];
  const repeat = wholeNumber("repeat", values.repeat, 1, 1);
  if (values["debian-kernel"] !== undefined || values["debian-qemu"] !== undefined)
    return debianBisectCommand(values, repeat, signal);
  requireFlags(values, ["tree", "good", "bad", "scenario", "kernel", "workload"]);
  const r = await runBisect({
    tree: values.tree!,
    good: values.good!,
    bad: values.bad!,
    scenario: path.resolve(values.scenario!),
    kernel: values.kernel!,
    workload: values.workload!,
    repeat,
    verify: values.verify ?? false,
    restart: values.restart ?? false,
    signal,
  }).catch(resumeHint);
  return r.exitCode;
}

async function debianBisectCommand(values: Values, repeat: number, signal: AbortSignal): Promise<number> {
  if (values["debian-kernel"] !== undefined && values["debian-qemu"] !== undefined)
    throw usageError("--debian-kernel and --debian-qemu bisect different packages: give one");
  const clash = ["tree", "good", "bad", "verify"].filter((k) => values[k] !== undefined);
  if (clash.length)
    throw usageError(`${clash.map((k) => `--${k}`).join(", ")} belong to a source bisect, not a Debian one`);
  requireFlags(values, ["scenario", "kernel", "workload"]);
  const family = values["debian-kernel"] !== undefined ? "kernel" : "qemu";
  const ends = parseVersionRange(`--debian-${family}`, String(values[`debian-${family}`]));
  const r = await runDebianBisect({
    family,
    ...ends,
    scenario: path.resolve(String(values.scenario)),
    kernel: String(values.kernel),
    workload: String(values.workload),
    repeat,
    restart: values.restart === true,
    signal,
  }).catch(resumeHint);
  return r.exitCode;
}

/** `--config GOOD BAD`: the two files are the first two positionals; a third may be the scenario. */
async function configBisectCommand(values: Values, positionals: string[], signal: AbortSignal): Promise<number> {
  const clash = ["tree", "good", "bad", "verify", "debian-kernel", "debian-qemu"].filter(
    (k) => values[k] !== undefined,
  );
  if (clash.length) throw usageError(`${clash.map((k) => `--${k}`).join(", ")} cannot be used with --config`);
  const [good, bad, ...rest] = positionals;
  if (good === undefined || bad === undefined) throw usageError("--config takes two files: GOOD BAD");
  if (rest.length > 1 || (rest.length === 1 && values.scenario !== undefined))
    throw usageError(`--config GOOD BAD and one scenario; got also ${rest.join(", ")}`);
  if (rest.length === 1) values.scenario = rest[0];
  requireFlags(values, ["scenario", "kernel", "workload"]);
  const r = await runConfigBisect({
    good,
    bad,
    scenario: path.resolve(String(values.scenario)),
    kernel: String(values.kernel),
    workload: String(values.workload),
    repeat: wholeNumber("repeat", values.repeat as string | undefined, 1, 1),
    restart: values.restart === true,
    signal,
  }).catch(resumeHint);
  return r.exitCode;
}
