// Debian changelogs (debian/changelog, shipped as /usr/share/doc/<pkg>/changelog.Debian.gz):
// entries parsed, and the ones between two package versions picked out. Pure: no I/O.
import { compareDebianVersions } from "./version.ts";

export interface ChangelogEntry {
  source: string;
  version: string;
  /** "unstable", "trixie-backports", "experimental". */
  distributions: string;
  /** The lines between the header and the trailer, as written (indented, blank lines kept). */
  body: string[];
  /** "Ben Hutchings <benh@debian.org>" */
  maintainer: string;
  date: string;
}

const headerPattern = /^(\S+) \(([^)]+)\) ([^;]+);/;
const trailerPattern = /^ -- (.+?) {2}(.+)$/;

/** Every entry of a changelog's text, newest first as written; lines outside entries are ignored. */
export function parseChangelog(text: string): ChangelogEntry[] {
  const entries: ChangelogEntry[] = [];
  let current: ChangelogEntry | undefined;
  for (const line of text.split("\n")) {
    const header = headerPattern.exec(line);
    if (header) {
      current = {
        source: header[1]!,
        version: header[2]!,
        distributions: header[3]!.trim(),
        body: [],
        maintainer: "",
        date: "",
      };
      entries.push(current);
      continue;
    }
    if (!current) continue;
    const trailer = trailerPattern.exec(line);
    if (trailer) {
      current.maintainer = trailer[1]!;
      current.date = trailer[2]!.trim();
      current.body = trimBlankEdges(current.body);
      current = undefined;
      continue;
    }
    current.body.push(line);
  }
  return entries;
}

function trimBlankEdges(lines: string[]): string[] {
  let start = 0;
  let end = lines.length;
  while (start < end && lines[start]!.trim() === "") start++;
  while (end > start && lines[end - 1]!.trim() === "") end--;
  return lines.slice(start, end);
}

/**
 * The version a backport or stable rebuild was made from: "6.16.3-1~bpo13+1" -> "6.16.3-1",
 * "6.12.117-1~deb12u1" -> "6.12.117-1". It sorts below that version but carries its changes.
 */
export function rebuiltFrom(version: string): string {
  return version.replace(/~(bpo|deb)\d+[^-]*$/, "");
}

/**
 * The entries a package at `firstBad` has that one at `lastGood` may lack: versions above
 * lastGood up to firstBad, by Debian version order, a backport counting as the version it was
 * made from (a changelog of another branch holds entries from both sides of a range, so
 * position in the file does not tell).
 */
export function entriesBetween(
  entries: readonly ChangelogEntry[],
  lastGood: string,
  firstBad: string,
): ChangelogEntry[] {
  const [low, high] = [rebuiltFrom(lastGood), rebuiltFrom(firstBad)];
  return entries.filter(
    (e) =>
      compareDebianVersions(e.version, low) > 0 &&
      (compareDebianVersions(e.version, high) <= 0 || compareDebianVersions(e.version, firstBad) === 0),
  );
}

/** The entry as Debian wrote it (header, body, trailer), for a saved changelog excerpt. */
export function formatEntry(e: ChangelogEntry): string {
  return [`${e.source} (${e.version}) ${e.distributions}`, "", ...e.body, "", ` -- ${e.maintainer}  ${e.date}`].join(
    "\n",
  );
}
