// The field types a scenario file is written in (sizes, times, share names, strict mappings),
// with their messages. Workload kinds build their schemas from these, and so does the rest of
// the scenario schema; they live here because scenario/ may import workloads/, not the reverse.
import { z } from "zod";
import os from "node:os";
import { parseSize, formatSize } from "../util/size.ts";
import { hostLimits } from "../util/host-limits.ts";

/** How a value the user wrote reads back in a message: `"1Q"`, `12`, `a list`. */
export function show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null (an empty value)";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "a list";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return "a mapping"; // all that parsed YAML has left
}

/** A YAML mapping, as parsed: an object that is not a list. */
export const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A strict object whose unknown-key message lists the keys it does know. */
export function strict<Shape extends z.ZodRawShape>(shape: Shape) {
  const known = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) => (issue.code === "unrecognized_keys" ? `unknown key (known: ${known})` : undefined),
  });
}

/** What parseSize accepts: "1M", "64K", "512", "1MiB", "4KB". */
export const SIZE_PATTERN = /^\s*\d+\s*[KMGTkmgt]?(?:[iI]?[bB])?\s*$/;

/** A byte count: "1M", "64K", "512" or a plain number. Yields bytes. */
export function size() {
  const expected = (input: unknown) => `expected a size like 1M, got ${show(input)}`;
  const positive = (input: unknown) => `must be a positive size, got ${show(input)}`;
  return z
    .union(
      [
        z.string().regex(SIZE_PATTERN, { error: (issue) => expected(issue.input) }),
        z
          .number()
          .int({ error: (issue) => expected(issue.input) })
          .positive({ error: (issue) => positive(issue.input) }),
      ],
      { error: (issue) => expected(issue.input) },
    )
    .transform((written, ctx) => {
      const bytes = parseSize(written);
      if (bytes === undefined) ctx.issues.push({ code: "custom", input: written, message: expected(written) });
      else if (bytes === 0) ctx.issues.push({ code: "custom", input: written, message: positive(written) });
      else if (!Number.isSafeInteger(bytes)) {
        ctx.issues.push({ code: "custom", input: written, message: `${show(written)} is too large` });
      } else return bytes;
      return z.NEVER;
    })
    .meta({ description: 'Bytes: a number, or "512", "64K", "1M", "1G" (binary units).' });
}

/** Files a workload may create on the host share: each is an inode and a directory entry. */
export const MAX_HOST_ENTRIES = 10_000_000;

export const entryCount = () =>
  z
    .number()
    .int()
    .nonnegative()
    .max(MAX_HOST_ENTRIES, { error: (i) => `at most ${MAX_HOST_ENTRIES} files on the host, got ${show(i.input)}` });

/** Bytes a workload writes into a share on the host: no more than the temp filesystem has free. */
export const hostFileSize = () =>
  size().refine((bytes) => bytes <= hostLimits().freeTempBytes, {
    error: (i) =>
      `${formatSize(Number(i.input))} does not fit: ${formatSize(hostLimits().freeTempBytes)} free in ${os.tmpdir()}`,
  });

const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/;

/** "2s", "500ms", "1.5", 3 -> milliseconds; undefined when it is not a duration. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isFinite(v) && v >= 0 ? Math.round(v * 1000) : undefined;
  if (typeof v !== "string") return undefined;
  const m = DURATION.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Math.round(n * (m[2] === "ms" ? 1 : m[2] === "m" ? 60_000 : 1000));
}

/** A time the user writes as "2s", "500ms" or seconds, parsed to milliseconds. */
export const durationSchema = () =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      const message = `expected a time like 2s, 500ms or 1.5 (seconds), got ${show(v)}`;
      ctx.issues.push({ code: "custom", input: v, message });
      return z.NEVER;
    }
    return ms;
  });

/**
 * The tag of a declared share. A workload kind that names its share in a `share` key gets the
 * "unknown share" check and the share mounted at the workload's guestDir.
 */
export const shareName = () => z.string().min(1).meta({ description: "The tag of a declared share." });
