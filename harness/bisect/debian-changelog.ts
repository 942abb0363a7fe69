// The Debian changelog of a package version, from the .debs themselves (the archive serves no
// changelog files): /usr/share/doc/<pkg>/changelog.Debian.gz. A kernel image's doc directory
// is often a link to a linux-base-* package the archive no longer has; then a newer package of
// the same source, whose changelog carries the older entries too, answers instead.
import { gunzipSync } from "node:zlib";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { type ArchiveOptions, type DebPackage, debCachePath, downloadDeb } from "../debian/archive.ts";
import { type ChangelogEntry, parseChangelog, rebuiltFrom } from "../debian/changelog.ts";
import { compareDebianVersions } from "../debian/version.ts";
import { exists } from "../util/atomic-fs.ts";
import type { DebianRange, PackageCandidate } from "./debian-candidates.ts";

export type ChangelogFound = { entries: ChangelogEntry[]; from: DebPackage } | { problem: string };

/** At most this many .debs are fetched looking for a changelog (a linux-base-* is ~1 MB). */
const maxTries = 3;

/** The changelog that covers `firstBad`: its own packages first, then newer ones (cached first). */
export async function changelogCovering(
  range: DebianRange,
  firstBad: PackageCandidate,
  opts: ArchiveOptions,
): Promise<ChangelogFound> {
  const tried: string[] = [];
  for (const deb of await changelogSources(range, firstBad)) {
    if (tried.length >= maxTries) break;
    tried.push(`${deb.name} ${deb.version}`);
    const entries = await changelogIn(deb, opts).catch(() => []);
    const covers = entries.some((e) => e.version === firstBad.version || e.version === rebuiltFrom(firstBad.version));
    if (covers) return { entries, from: deb };
  }
  return {
    problem: tried.length
      ? `no changelog covering ${firstBad.version} in ${tried.join(", ")}`
      : `no package in the archive carries a changelog for ${firstBad.name}`,
  };
}

/** Packages that may hold the changelog, best first. */
async function changelogSources(range: DebianRange, firstBad: PackageCandidate): Promise<DebPackage[]> {
  const own = [...range.docPackages.filter((p) => p.version === firstBad.version), ...firstBad.parts];
  const newer = range.all
    .filter((c) => compareDebianVersions(c.version, firstBad.version) > 0)
    .sort((a, b) => compareDebianVersions(a.version, b.version))
    .flatMap((c) => [...range.docPackages.filter((p) => p.version === c.version), ...c.parts]);
  const withDocs = newer.filter((p) => /^(linux-base-|qemu-system-common$)/.test(p.name));
  const cached = new Set<DebPackage>();
  for (const p of withDocs) if (await exists(debCachePath(p))) cached.add(p);
  const ordered = [...withDocs.filter((p) => cached.has(p)), ...withDocs.filter((p) => !cached.has(p))];
  return [...new Set([...own, ...ordered])];
}

/** Every changelog.Debian.gz under usr/share/doc in `deb`, parsed; [] when it has none. */
export async function changelogIn(deb: DebPackage, opts: ArchiveOptions): Promise<ChangelogEntry[]> {
  const file = await downloadDeb(deb, opts);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "vmrig-changelog-"));
  try {
    const script = 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "./usr/share/doc/*/changelog.Debian.gz"';
    await execa("sh", ["-c", script, "sh", file, dir], { reject: false, cancelSignal: opts.signal });
    const docs = path.join(dir, "usr", "share", "doc");
    const entries: ChangelogEntry[] = [];
    for (const name of await fs.readdir(docs).catch(() => [] as string[])) {
      const gz = await fs.readFile(path.join(docs, name, "changelog.Debian.gz")).catch(() => undefined);
      if (gz) entries.push(...parseChangelog(gunzipSync(gz).toString("utf8")));
    }
    return entries;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
