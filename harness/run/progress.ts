// Progress: one live line per kernel on a TTY; plain lines in CI and pipes.
import type { CellOutcome, KernelRowResult } from "../types.ts";
import { cellLabel } from "../classify/labels.ts";
import { plainProgress } from "../util/env.ts";

export interface Progress {
  info(line: string): void;
  stage(kernel: string, what: string): void;
  cell(kernel: string, workload: string, outcome: CellOutcome): void;
  done(kernel: string, row: KernelRowResult): void;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  const tty = Boolean(stream.isTTY) && !plainProgress();
  const started = new Map<string, number>();
  // A row's clock restarts at its first boot: every row is prepared before the first one boots.
  const booted = new Set<string>();
  let live = false;
  const elapsed = (k: string) => `${((Date.now() - (started.get(k) ?? Date.now())) / 1000).toFixed(0)}s`;
  const clear = () => {
    if (live) stream.write("\r\x1b[2K");
    live = false;
  };
  return {
    info(line) {
      clear();
      stream.write(line + "\n");
    },
    stage(kernel, what) {
      if (!booted.has(kernel) && what.startsWith("booting")) {
        booted.add(kernel);
        started.set(kernel, Date.now());
      } else if (!started.has(kernel)) started.set(kernel, Date.now());
      if (tty) {
        clear();
        stream.write(`[${kernel}] ${what} … ${elapsed(kernel)}`);
        live = true;
      } else stream.write(`[${kernel}] ${what}\n`);
    },
    cell(kernel, workload, outcome) {
      clear();
      stream.write(`[${kernel}] ${workload}: ${cellLabel(outcome)}\n`);
    },
    done(kernel) {
      clear();
      stream.write(`[${kernel}] done in ${elapsed(kernel)}\n`);
    },
  };
}

/** For programs and tests that run scenarios without a terminal: no progress lines. */
export const silentProgress: Progress = {
  info: () => undefined,
  stage: () => undefined,
  cell: () => undefined,
  done: () => undefined,
};

/** A stream that drops what is written (the table, when a caller reads results.json instead). */
export const discardOutput = { write: () => true } as unknown as NodeJS.WritableStream;
