// Bisecting a kernel configuration: which options, set as GOOD sets them, make BAD's cell pass?
// Pure. The search keeps two sets of the options whose values differ between the resolved ends:
// `applied` (GOOD's values already put into BAD; BAD with them alone still fails) and
// `candidates` (BAD with applied and candidates passes). A probe puts half of the candidates on
// top of applied: good keeps that half, bad applies it and keeps the rest. Applied values only
// grow, so an option that needs another one's value to stick gets it in later probes.
import { createHash } from "node:crypto";
import { type ConfigValues, parseConfig } from "../kernels/from-source/config.ts";
import type { Verdict } from "./verdict.ts";

export { parseConfig, type ConfigValues };

/** One option whose value differs between the ends: "y", "m", "n" (not set or absent), a number, a string. */
export interface OptionChange {
  option: string;
  good: string;
  bad: string;
}

/** A value as the user compares them: absent and `# ... is not set` are both "n". */
const valueOf = (c: ConfigValues, option: string) => c.get(option) ?? "n";

/** The options whose values differ between two resolved configs, by name. */
export function differingOptions(good: ConfigValues, bad: ConfigValues): OptionChange[] {
  const names = new Set([...good.keys(), ...bad.keys()]);
  return [...names]
    .filter((o) => valueOf(good, o) !== valueOf(bad, o))
    .sort()
    .map((option) => ({ option, good: valueOf(good, option), bad: valueOf(bad, option) }));
}

/** `base` with `changes` set to their GOOD values, as .config text (merge_config.sh reads it as a fragment). */
export function withGoodValues(base: ConfigValues, changes: readonly OptionChange[]): string {
  const out = new Map(base);
  for (const c of changes) out.set(c.option, c.good);
  return renderConfig(out);
}

export function renderConfig(values: ConfigValues): string {
  const lines = [...values].map(([k, v]) => (v === "n" ? `# ${k} is not set` : `${k}=${v}`));
  return lines.join("\n") + "\n";
}

/** What identifies a resolved config: its options set to anything but "n", in name order. */
export function configKey(values: ConfigValues): string {
  const set = [...values].filter(([, v]) => v !== "n").sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash("sha256").update(JSON.stringify(set)).digest("hex").slice(0, 16);
}

/** A set of options as a lookup key: sorted, comma-joined. */
export const setKey = (options: readonly string[]) => [...options].sort().join(",");

export interface SplitState {
  applied: string[];
  candidates: string[];
  /** 0: probing the first half; 1: the first half was skipped, probing the second. */
  attempt: 0 | 1;
}

export interface Probe {
  kind: "probe";
  state: SplitState;
  /** The half of the candidates this probe adds to `state.applied`. */
  half: string[];
  /** applied + half, in the order of the differing options. */
  apply: string[];
}

export type SplitEnd =
  | { kind: "found"; option: string; lastBad: string[]; firstGood: string[] }
  | { kind: "ambiguous"; candidates: string[]; applied: string[] };

/** How many probes a search of `n` options needs without skips. */
export function expectedProbes(n: number): number {
  return n <= 1 ? 0 : Math.ceil(Math.log2(n));
}

function probeOf(s: SplitState, order: readonly string[]): Probe {
  const cut = Math.ceil(s.candidates.length / 2);
  const half = s.attempt === 0 ? s.candidates.slice(0, cut) : s.candidates.slice(cut);
  const chosen = new Set([...s.applied, ...half]);
  return { kind: "probe", state: s, half, apply: order.filter((o) => chosen.has(o)) };
}

/** The state after `probe` got `verdict`; undefined when the search ends ambiguous. */
export function afterVerdict(p: Probe, verdict: Verdict): SplitState | undefined {
  const { applied, candidates, attempt } = p.state;
  const rest = candidates.filter((c) => !p.half.includes(c));
  if (verdict === "good") return { applied, candidates: p.half, attempt: 0 };
  if (verdict === "bad") return { applied: [...applied, ...p.half], candidates: rest, attempt: 0 };
  return attempt === 0 ? { applied, candidates, attempt: 1 } : undefined;
}

/**
 * Replays the search over `options` (the differing ones, in order) with the verdicts known so
 * far, keyed by setKey of the applied options: the next probe to run, or where it ends.
 */
export function nextProbe(
  options: readonly string[],
  verdictOf: (key: string) => Verdict | undefined,
): Probe | SplitEnd {
  let s: SplitState = { applied: [], candidates: [...options], attempt: 0 };
  for (;;) {
    if (s.candidates.length === 1) {
      const firstGood = options.filter((o) => s.applied.includes(o) || o === s.candidates[0]);
      return { kind: "found", option: s.candidates[0]!, lastBad: s.applied, firstGood };
    }
    const p = probeOf(s, options);
    const v = verdictOf(setKey(p.apply));
    if (v === undefined) return p;
    const next = afterVerdict(p, v);
    if (!next) return { kind: "ambiguous", candidates: s.candidates, applied: s.applied };
    s = next;
  }
}
