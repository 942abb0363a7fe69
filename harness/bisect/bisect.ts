// `vmrig bisect`: which commit between a good and a bad ref makes one scenario cell fail?
//
//   check bad (its outcome is the identity to chase) -> check good (must pass) -> git bisect in
//   a private clone: build the commit, run the cell, good/bad/skip from the outcome -> culprit
//   with confidence -> optionally revert it on bad and run again (--verify).
//
// Every finished step is written to state.json and git's bisect log before the next starts;
// running the same command again resumes from them. The phases are BisectSession's (session.ts).
import { BisectSession, type BisectOptions, type BisectOutcome } from "./session.ts";

export type { BisectOptions, BisectOutcome } from "./session.ts";

export async function runBisect(o: BisectOptions): Promise<BisectOutcome> {
  const session = await BisectSession.prepare(o);
  return session.run();
}
