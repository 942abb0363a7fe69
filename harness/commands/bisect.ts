// `vmrig bisect --tree PATH --good REF --bad REF --scenario FILE --kernel LABEL --workload ID
//  [--repeat N] [--verify] [--restart]`
import { parseArgs } from "node:util";
import path from "node:path";
import { ExitCode, VmrigError } from "../util/errors.ts";
import { runBisect } from "../bisect/bisect.ts";

export const bisectUsage =
  "  bisect --tree PATH --good REF --bad REF --scenario FILE --kernel LABEL --workload ID " +
  "[--repeat N] [--verify] [--restart]\n" +
  "                                                find the commit that makes one cell fail (resumes when rerun)";

export async function bisectCommand(args: string[], signal: AbortSignal): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      tree: { type: "string" },
      good: { type: "string" },
      bad: { type: "string" },
      scenario: { type: "string" },
      kernel: { type: "string" },
      workload: { type: "string" },
      repeat: { type: "string" },
      verify: { type: "boolean" },
      restart: { type: "boolean" },
    },
  });
  const missing = (["tree", "good", "bad", "scenario", "kernel", "workload"] as const).filter((k) => !values[k]);
  if (missing.length)
    throw new VmrigError(
      `bisect: missing ${missing.map((m) => `--${m}`).join(", ")}\nusage:\n${bisectUsage}`,
      ExitCode.usage,
    );
  const repeat = values.repeat === undefined ? 1 : Number(values.repeat);
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
  }).catch((e: unknown) => {
    // An interrupt keeps every finished step: say how to resume (vmrig's generic message would not).
    if (e instanceof VmrigError && e.exitCode === ExitCode.interrupted) {
      process.stderr.write(`vmrig: ${e.message}\n`);
      return { exitCode: ExitCode.interrupted };
    }
    throw e;
  });
  return r.exitCode;
}
