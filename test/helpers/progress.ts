// Progress for integration tests: silent unless VMRIG_TEST_VERBOSE asks to watch the stages.
import type { Progress } from "../../harness/run/progress.ts";
import { testVerbose } from "../../harness/util/env.ts";

/** Writes a line to stderr when the test run is verbose. */
export const say = (line: string): void => {
  if (testVerbose()) process.stderr.write(`${line}\n`);
};

export const testProgress: Progress = {
  info: say,
  stage: (kind, what) => say(`[${kind}] ${what}`),
  cell: () => undefined,
  done: () => undefined,
};
