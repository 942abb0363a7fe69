// How each outcome reads at a glance, for the terminal table and the HTML report alike.
import type { CellOutcome } from "../types.ts";

export type Tone = "good" | "warn" | "bad" | "infra" | "dim";

export const toneOf: Record<CellOutcome["kind"], Tone> = {
  pass: "good",
  errno: "warn",
  fail: "warn",
  skip: "dim",
  short: "warn",
  hang: "bad",
  crash: "bad",
  "boot-fail": "bad",
  infra: "infra",
  "not-run": "dim",
};
