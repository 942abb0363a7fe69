// Debian control-file syntax (Packages, InRelease) and the package records built from it.
// Pure: no I/O.

/** One paragraph of a control file: field name -> value (continuation lines joined by "\n"). */
export type Stanza = Record<string, string>;

/** A binary package as one suite of the archive lists it. */
export interface DebPackage {
  name: string;
  version: string;
  architecture: string;
  /** The suite whose index listed it ("trixie-backports"). */
  suite: string;
  /** Archive root `filename` is relative to ("http://deb.debian.org/debian"). */
  archiveUrl: string;
  /** Path of the .deb below archiveUrl ("pool/main/l/linux/...deb"). */
  filename: string;
  size: number;
  sha256: string;
  /** Raw Depends field ("" when none). */
  depends: string;
  fields: Stanza;
}

/**
 * Accumulates stanzas from lines, keeping only packages `keep` accepts. The decision is made on
 * the stanza's first line (Packages files start every stanza with "Package:"), so unwanted
 * stanzas of a 65 MB index are skipped without being parsed.
 */
export class StanzaCollector {
  readonly stanzas: Stanza[] = [];
  private lines: string[] = [];
  private skipping = false;

  constructor(private readonly keep: (packageName: string) => boolean = () => true) {}

  push(line: string): void {
    if (line.trim() === "") {
      this.flush();
      return;
    }
    if (this.skipping) return;
    if (this.lines.length === 0) {
      const m = /^Package:\s*(\S+)/.exec(line);
      if (m && !this.keep(m[1]!)) {
        this.skipping = true;
        return;
      }
    }
    this.lines.push(line);
  }

  finish(): Stanza[] {
    this.flush();
    return this.stanzas;
  }

  private flush(): void {
    if (this.lines.length > 0) this.stanzas.push(parseStanza(this.lines));
    this.lines = [];
    this.skipping = false;
  }
}

/** Parses one paragraph's lines. Continuation lines (leading blank) are appended to the field. */
export function parseStanza(lines: readonly string[]): Stanza {
  const stanza: Stanza = {};
  let current: string | undefined;
  for (const raw of lines) {
    const line = raw.replace(/\r$/, "");
    if (/^[ \t]/.test(line)) {
      if (current !== undefined) stanza[current] = `${stanza[current]}\n${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    current = line.slice(0, colon);
    stanza[current] = line.slice(colon + 1).trim();
  }
  return stanza;
}

export function parseControl(text: string, keep?: (packageName: string) => boolean): Stanza[] {
  const c = new StanzaCollector(keep);
  for (const line of text.split("\n")) c.push(line);
  return c.finish();
}

export interface ReleaseFile {
  fields: Stanza;
  /** Index file path ("main/binary-amd64/Packages.xz") -> its checksum and size. */
  sha256: Map<string, { sha256: string; size: number }>;
}

/** Parses the verified (signature-stripped) text of an InRelease file. */
export function parseRelease(text: string): ReleaseFile {
  const fields = parseControl(text)[0] ?? {};
  const sha256 = new Map<string, { sha256: string; size: number }>();
  for (const line of (fields["SHA256"] ?? "").split("\n")) {
    const m = /^([0-9a-f]{64})\s+(\d+)\s+(\S+)$/.exec(line.trim());
    if (m) sha256.set(m[3]!, { sha256: m[1]!, size: Number(m[2]) });
  }
  return { fields, sha256 };
}

export interface Relation {
  name: string;
  op?: "<<" | "<=" | "=" | ">=" | ">>";
  version?: string;
}

/** "a (>= 1), b | c:any" -> [[a>=1], [b, c]]: outer list AND, inner list OR. */
export function parseDepends(field: string | undefined): Relation[][] {
  if (!field?.trim()) return [];
  return field.split(",").map((group) =>
    group
      .split("|")
      .map((alt) => {
        const m = /^\s*([^\s(:]+)(?::\S+)?\s*(?:\(\s*(<<|<=|=|>=|>>)\s*([^\s)]+)\s*\))?/.exec(alt);
        if (!m) return undefined;
        const r: Relation = { name: m[1]! };
        if (m[2]) r.op = m[2] as Relation["op"];
        if (m[3]) r.version = m[3];
        return r;
      })
      .filter((r): r is Relation => r !== undefined),
  );
}

/** Builds a package record; undefined when the stanza lacks what a download needs. */
export function toDebPackage(stanza: Stanza, suite: string, archiveUrl: string): DebPackage | undefined {
  const { Package: name, Version: version, Filename: filename, SHA256: sha256, Size: size } = stanza;
  if (!name || !version || !filename || !sha256 || !size) return undefined;
  return {
    name,
    version,
    architecture: stanza["Architecture"] ?? "",
    suite,
    archiveUrl,
    filename,
    size: Number(size),
    sha256,
    depends: stanza["Depends"] ?? "",
    fields: stanza,
  };
}
