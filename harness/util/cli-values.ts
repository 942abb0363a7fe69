// Option values a command cannot work with are usage errors (exit 2) that name the option, never
// a NaN carried on or a missing directory read as an empty one.
import { existsSync, statSync } from "node:fs";
import { VmrigError } from "./errors.ts";

/** `--flag N`: a whole number at least `min`, or `dflt` when the option is absent. */
export function wholeNumber(flag: string, value: string | undefined, dflt: number, min = 0): number {
  if (value === undefined) return dflt;
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value)))
    throw new VmrigError(`--${flag} takes a whole number${min > 0 ? ` of at least ${min}` : ""}, got "${value}"`);
  return Number(value);
}

/** `--flag DIR` naming a directory that must already exist (results to read, not to create). */
export function existingDir(flag: string, dir: string): string {
  if (!existsSync(dir)) throw new VmrigError(`--${flag} ${dir}: no such directory`);
  if (!statSync(dir).isDirectory()) throw new VmrigError(`--${flag} ${dir}: not a directory`);
  return dir;
}
