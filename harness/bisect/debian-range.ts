// The pure side of a bisect over Debian packages: GOOD..BAD parsed, the versions between the
// ends across suites in Debian version order, the next version to try, and what an answer
// maps to upstream (tags, the source bisect that continues inside the range). No I/O.
import { compareDebianVersions, upstreamVersion } from "../debian/version.ts";
import { ExitCode, VmrigError } from "../util/errors.ts";
import type { Verdict } from "./verdict.ts";

export type PackageFamily = "kernel" | "qemu";

/** `--debian-kernel 6.12..6.18.15` -> { good: "6.12", bad: "6.18.15" }; usage errors exit 2. */
export function parseVersionRange(flag: string, text: string): { good: string; bad: string } {
  const ends = text.trim().split("..");
  const isVersion = (v: string | undefined) => v !== undefined && /^[^.\s]+(\.[^.\s]+)*$/.test(v);
  if (ends.length !== 2 || !isVersion(ends[0]) || !isVersion(ends[1])) {
    throw new VmrigError(
      `${flag} ${text}: expected GOOD..BAD (Debian or upstream versions, e.g. 6.12..6.18.15 or 10.0.13..11.1)`,
      ExitCode.usage,
    );
  }
  return { good: ends[0]!, bad: ends[1]! };
}

/** One Debian version in the range, with every package and suite that carries it. */
export interface RangeVersion<T> {
  version: string;
  /** The packages at this version, first suite searched first. */
  items: T[];
  suites: string[];
}

/**
 * Every version from `good` to `bad` inclusive (both exact Debian versions) among `items`, in
 * Debian version order; one entry per version however many suites carry it.
 */
export function versionsBetween<T>(
  items: readonly T[],
  of: (item: T) => { version: string; suite: string },
  good: string,
  bad: string,
): Array<RangeVersion<T>> {
  const byVersion = new Map<string, RangeVersion<T>>();
  for (const item of items) {
    const { version, suite } = of(item);
    if (compareDebianVersions(version, good) < 0 || compareDebianVersions(version, bad) > 0) continue;
    const key = [...byVersion.keys()].find((k) => compareDebianVersions(k, version) === 0) ?? version;
    const entry = byVersion.get(key) ?? { version: key, items: [], suites: [] };
    entry.items.push(item);
    if (!entry.suites.includes(suite)) entry.suites.push(suite);
    byVersion.set(key, entry);
  }
  return [...byVersion.values()].sort((a, b) => compareDebianVersions(a.version, b.version));
}

/** Where a bisect over a list stands: the next index to try, or where it stopped. */
export type ListBisectState =
  | { kind: "next"; index: number }
  | { kind: "found"; lastGood: number; firstBad: number }
  /** Skips hide the first bad one: it is one of `candidates` (indexes), lastGood the last good before them. */
  | { kind: "ambiguous"; lastGood: number; candidates: number[] };

/**
 * git bisect over a list ordered good (index 0) to bad (the last): the last good before the
 * first bad bounds the search; the next try is the untried, unskipped index nearest the middle
 * (git bisect skip's way around an untestable commit).
 */
export function nextInList(count: number, verdicts: ReadonlyMap<number, Verdict>): ListBisectState {
  const badIdx = [...verdicts].filter(([, v]) => v === "bad").map(([i]) => i);
  const hi = Math.min(count - 1, ...badIdx);
  const goodIdx = [...verdicts].filter(([i, v]) => v === "good" && i < hi).map(([i]) => i);
  const lo = Math.max(0, ...goodIdx);
  const open: number[] = [];
  for (let i = lo + 1; i < hi; i++) if (!verdicts.has(i)) open.push(i);
  if (open.length) {
    const middle = (lo + hi) / 2;
    const index = open.sort((a, b) => Math.abs(a - middle) - Math.abs(b - middle) || a - b)[0]!;
    return { kind: "next", index };
  }
  if (hi === lo + 1) return { kind: "found", lastGood: lo, firstBad: hi };
  const candidates: number[] = [];
  for (let i = lo + 1; i <= hi; i++) candidates.push(i);
  return { kind: "ambiguous", lastGood: lo, candidates };
}

/** The steps a list of `count` versions (ends included, both checked) needs at most without skips. */
export function listSteps(count: number): number {
  return count <= 2 ? 0 : Math.ceil(Math.log2(count - 1));
}

/**
 * The upstream git tag a Debian version was built from: "6.16.3-1~bpo13+1" -> "v6.16.3",
 * "7.3~rc7-1~exp1" -> "v7.3-rc7", "1:11.1.3+ds-1" -> "v11.1.3" (the +ds/+dfsg repack suffix is
 * Debian's); undefined when the upstream part is not a plain release.
 */
export function upstreamTag(version: string): string | undefined {
  const upstream = upstreamVersion(version).replace(/\+(ds|dfsg)\d*$/, "");
  const m = /^(\d+\.\d+(?:\.\d+)?)(?:~(rc\d+))?$/.exec(upstream);
  if (!m) return undefined;
  return `v${m[1]}${m[2] ? `-${m[2]}` : ""}`;
}

/** "v6.12.118" -> "v6.12"; a mainline tag (a release or a release candidate) stays as it is. */
function mainlineOf(tag: string): string {
  return /^(v\d+\.\d+)\.\d+$/.exec(tag)?.[1] ?? tag;
}

/** "v6.12.118", "v6.12", "v6.12-rc7" -> "6.12". */
const seriesOf = (tag: string): string => /^v(\d+\.\d+)/.exec(tag)?.[1] ?? tag;

/**
 * The git range a source bisect continues in. A stable tag of another series is not an ancestor
 * of the bad one (each stable branch forks from its mainline release), so the good end becomes
 * that release, which is.
 */
export function sourceRange(goodTag: string, badTag: string): { good: string; bad: string; note?: string } {
  if (seriesOf(goodTag) === seriesOf(badTag) || mainlineOf(goodTag) === goodTag) {
    return { good: goodTag, bad: badTag };
  }
  const good = mainlineOf(goodTag);
  return {
    good,
    bad: badTag,
    note: `${goodTag} is on the ${good.slice(1)} stable branch, which forks from ${good}: git bisect needs an ancestor`,
  };
}

export interface ContinueQuestion {
  scenario: string;
  kernel: string;
  workload: string;
  repeat: number;
}

/** The `vmrig bisect --tree ...` command that continues inside lastGood..firstBad upstream. */
export function continueCommand(range: { good: string; bad: string }, q: ContinueQuestion): string {
  return [
    "vmrig bisect --tree PATH/TO/linux-stable",
    `--good ${range.good} --bad ${range.bad}`,
    `--scenario ${q.scenario} --kernel ${q.kernel} --workload ${q.workload}`,
    ...(q.repeat > 1 ? [`--repeat ${q.repeat}`] : []),
  ].join(" ");
}
