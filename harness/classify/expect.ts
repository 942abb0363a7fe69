// Does a cell's outcome meet the scenario's expectation? Words (types.ts ExpectationWord):
// PASS, FAIL, SKIP, SHORT, HANG, CRASH, BOOT-FAIL, INFRA, ERRNO (any errno), ANY, or one errno ("ENOMEM").
// A list means any of them.
import type { CellOutcome, Expectation, ExpectationWord } from "../types.ts";
import { canonicalErrnoName } from "../util/errno.ts";
import { errnoLabel } from "./labels.ts";

const byKind: Partial<Record<CellOutcome["kind"], ExpectationWord>> = {
  pass: "PASS",
  fail: "FAIL",
  skip: "SKIP",
  short: "SHORT",
  hang: "HANG",
  crash: "CRASH",
  "boot-fail": "BOOT-FAIL",
  infra: "INFRA",
};

const sameErrno = (a: string, b: string) => {
  const canon = (e: string) => canonicalErrnoName(e.replace(/^-/, "")) ?? e.replace(/^-/, "");
  return canon(a) === canon(b);
};

function wordMet(o: CellOutcome, w: ExpectationWord): boolean {
  // A cell that did not run met nothing, whatever was expected.
  if (o.kind === "not-run") return false;
  // ANY is "whatever the kernel does": an infrastructure error says nothing about the kernel.
  if (w === "ANY") return o.kind !== "infra";
  if (w === "ERRNO") return o.kind === "errno";
  if (byKind[o.kind] === w) return true;
  return o.kind === "errno" && !(Object.values(byKind) as string[]).includes(w) && sameErrno(o.errno, w);
}

export function expectationMet(o: CellOutcome, expectation: Expectation): boolean {
  return expectation.some((w) => wordMet(o, w));
}

/** ["PASS", "ENOMEM"] -> "PASS or -ENOMEM": what the table prints after "expected". */
export function describeExpectation(expectation: Expectation): string {
  if (expectation.length === 0) return "nothing";
  return expectation
    .map((w) => (w.startsWith("E") && w !== "ERRNO" ? errnoLabel(w) : w === "ERRNO" ? "an errno" : w))
    .join(" or ");
}
