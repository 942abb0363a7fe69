// Debian version ordering (dpkg's algorithm) and the version specs a scenario may pin.
// Pure: no I/O.

/** dpkg's character weight: `~` sorts before everything, even the end of the string. */
function weight(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === "~") return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "9";

/** dpkg's verrevcmp: alternating non-digit and digit runs. */
function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const wa = isDigit(a[i]) ? 0 : weight(a[i]);
      const wb = isDigit(b[j]) ? 0 : weight(b[j]);
      if (wa !== wb) return wa - wb;
      i++;
      j++;
    }
    while (a[i] === "0") i++;
    while (b[j] === "0") j++;
    let firstDiff = 0;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (!firstDiff) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (firstDiff) return firstDiff;
  }
  return 0;
}

export interface DebianVersionParts {
  epoch: number;
  upstream: string;
  revision: string;
}

export function splitDebianVersion(version: string): DebianVersionParts {
  let rest = version.trim();
  let epoch = 0;
  const colon = rest.indexOf(":");
  if (colon > 0 && /^\d+$/.test(rest.slice(0, colon))) {
    epoch = Number(rest.slice(0, colon));
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf("-");
  return dash > 0
    ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) }
    : { epoch, upstream: rest, revision: "" };
}

/** Negative, zero or positive like a sort comparator: "6.18.15-1~bpo13+1" < "6.18.15-1". */
export function compareDebianVersions(a: string, b: string): number {
  const pa = splitDebianVersion(a);
  const pb = splitDebianVersion(b);
  if (pa.epoch !== pb.epoch) return pa.epoch - pb.epoch;
  return compareFragment(pa.upstream, pb.upstream) || compareFragment(pa.revision, pb.revision);
}

/** "6.1.192-2" -> "6.1.192"; "1:7.3~rc7-1~exp1" -> "7.3~rc7". */
export function upstreamVersion(version: string): string {
  return splitDebianVersion(version).upstream;
}

/**
 * What a scenario's `version:` means:
 * - series   "6.12": the newest 6.12 or 6.12.x release (release candidates excluded);
 * - upstream "6.18.15" or "7.3~rc7": exactly that upstream version, any Debian revision;
 * - debian   "6.18.15-1~bpo13+1": exactly that Debian package version.
 */
export type VersionSpec =
  { kind: "series"; text: string } | { kind: "upstream"; text: string } | { kind: "debian"; text: string };

export function parseVersionSpec(text: string): VersionSpec | undefined {
  const t = text.trim();
  if (/^\d+\.\d+$/.test(t)) return { kind: "series", text: t };
  if (/^\d+\.\d+(\.\d+)?(~rc\d+)?$/.test(t)) return { kind: "upstream", text: t };
  if (/^(\d+:)?\d+\.\d+[0-9A-Za-z.+~]*-[0-9A-Za-z.+~]+$/.test(t)) return { kind: "debian", text: t };
  return undefined;
}

/** Debian calls the x.y.0 release "x.y": treat "6.12.0" and "6.12" alike. */
function normaliseUpstream(u: string): string {
  return u.replace(/^(\d+\.\d+)\.0(?=$|~)/, "$1");
}

export function versionMatches(spec: VersionSpec, debianVersion: string): boolean {
  const upstream = normaliseUpstream(upstreamVersion(debianVersion));
  switch (spec.kind) {
    case "series":
      return !upstream.includes("~") && (upstream === spec.text || upstream.startsWith(`${spec.text}.`));
    case "upstream":
      return upstream === normaliseUpstream(spec.text);
    case "debian":
      return compareDebianVersions(debianVersion, spec.text) === 0;
  }
}

/**
 * The closest items below and above `target` by upstream version (items at the target itself
 * are skipped: they are what the caller could not use). Ties keep the first item seen.
 */
export function nearestVersions<T>(
  target: string,
  items: readonly T[],
  versionOf: (item: T) => string,
): { below?: T; above?: T } {
  const key = (v: string) => normaliseUpstream(upstreamVersion(v));
  const t = key(target);
  let below: T | undefined;
  let above: T | undefined;
  for (const item of items) {
    const u = key(versionOf(item));
    const c = compareFragment(u, t);
    if (c < 0 && (below === undefined || compareFragment(u, key(versionOf(below))) > 0)) below = item;
    if (c > 0 && (above === undefined || compareFragment(u, key(versionOf(above))) < 0)) above = item;
  }
  return { below, above };
}
