// A scenario's rows on the shared guest scheduler: every kernel row asks for a slot, runs as it
// would serially (same runner, same artifacts under the run directory), and lands in the table
// in the scenario's kernel order whatever order the guests finish in. results.json is rewritten
// after every cell as in a serial run, one write at a time, with the rows still running shown.
import type { KernelRowResult, RunResult, Scenario } from "../../types.ts";
import type { PreparedKernel, RunEnv } from "../run-env.ts";
import { guestDemand, type GuestScheduler } from "./scheduler.ts";

export type RowRunner = (s: Scenario, k: PreparedKernel, env: RunEnv, run: RunResult) => Promise<KernelRowResult>;

/** The scheduler key of a scenario's row: plan() and run() match on it, unplan() on its prefix. */
export const rowKey = (scenarioFile: string, label: string) => `${scenarioFile}\0${label}`;
export const scenarioKeyPrefix = (scenarioFile: string) => `${scenarioFile}\0`;

export async function runRowsScheduled(
  s: Scenario,
  kernels: PreparedKernel[],
  env: RunEnv & { scheduler: GuestScheduler },
  result: RunResult,
  runRow: RowRunner,
): Promise<RunResult> {
  const done: Array<KernelRowResult | undefined> = kernels.map(() => undefined);
  const live: Array<KernelRowResult | undefined> = kernels.map(() => undefined);
  const ordered = (withLive: boolean) =>
    kernels
      .map((_, i) => done[i] ?? (withLive ? live[i] : undefined))
      .filter((r): r is KernelRowResult => r !== undefined);

  // One results.json write at a time: the writer renames a per-process temporary file.
  let writing: Promise<void> = Promise.resolve();
  const update = (): Promise<void> => {
    const p = writing.then(() => env.onUpdate({ ...result, rows: ordered(true) }));
    writing = p.catch(() => undefined);
    return p;
  };

  const settled = await Promise.allSettled(
    kernels.map((k, i) =>
      env.scheduler.run(
        guestDemand(rowKey(s.file, k.entry.label), s.machine.cpus, s.machine.memoryBytes),
        async (lease) => {
          if (env.signal.aborted) return;
          const rowEnv: RunEnv = {
            ...env,
            load: () => lease.load(),
            onUpdate: (r: RunResult) => {
              live[i] = r.rows.at(-1);
              return update();
            },
          };
          // The runner reports a row in progress as the last row of the run it is given.
          const row = await runRow(s, k, rowEnv, { ...result, rows: [] });
          done[i] = row;
          live[i] = undefined;
          result.rows.splice(0, result.rows.length, ...ordered(false));
          await update();
        },
      ),
    ),
  );
  await writing;
  const failed = settled.find((x): x is PromiseRejectedResult => x.status === "rejected");
  if (failed) throw failed.reason;
  return result;
}
