// The host side of a cell, read from virtiofsd's debug log (a share with `log: debug`, or
// VMRIG_VIRTIOFSD_LOG=debug): each cell gets the slice of the log written while it ran, and the
// requests virtiofsd refused become notes beside the guest's outcome.
import path from "node:path";
import type { CellOutcome, ShareSpec } from "../types.ts";
import { cellServerEvidence, logMark, type CellServerEvidence } from "../virtiofs/debug-log.ts";

const VERBOSE = new Set(["debug", "trace"]);

export interface ServerMark {
  tag: string;
  file: string;
  offset: number;
}

/** Where each debug-logging share's virtiofsd log ends before the cell runs. */
export async function serverMarks(
  shares: readonly ShareSpec[],
  bootDir: string,
  runLevel?: string,
): Promise<ServerMark[]> {
  const marks: ServerMark[] = [];
  for (const s of shares) {
    if (!VERBOSE.has(s.logLevel ?? runLevel ?? "info")) continue;
    const file = path.join(bootDir, `virtiofsd-${s.tag}.log`);
    marks.push({ tag: s.tag, file, offset: await logMark(file) });
  }
  return marks;
}

export async function serverEvidence(marks: readonly ServerMark[]): Promise<CellServerEvidence> {
  const out: CellServerEvidence = { evidence: {}, notes: [] };
  for (const m of marks) {
    const e = await cellServerEvidence(m.file, m.offset, m.tag);
    Object.assign(out.evidence, e.evidence);
    // With one share the note needs no tag; with several it names the share.
    out.notes.push(...e.notes.map((n) => (marks.length > 1 ? n.replace(/^virtiofsd /, `virtiofsd[${m.tag}] `) : n)));
  }
  return out;
}

/** Pure: the notes appended to the outcome's detail, so every report that shows details shows them. */
export function withNotes(o: CellOutcome, notes: readonly string[]): CellOutcome {
  if (notes.length === 0) return o;
  const add = (d: string | undefined) => [d, ...notes].filter(Boolean).join("; ");
  switch (o.kind) {
    case "pass":
    case "errno":
    case "short":
      return { ...o, detail: add(o.detail) };
    case "fail":
      return { ...o, detail: add(o.detail) };
    default:
      return o;
  }
}

/** Pure: 16384 -> "16K"; anything else undefined. */
export function pageSizeLabel(bytes: unknown): string | undefined {
  if (typeof bytes !== "number" || !Number.isFinite(bytes) || bytes <= 0) return undefined;
  return bytes % 1024 === 0 ? `${bytes / 1024}K` : String(bytes);
}
