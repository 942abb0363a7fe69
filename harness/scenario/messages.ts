// Wording of spec problems. Messages talk about YAML (mapping, list) rather than JavaScript,
// and always quote what the user wrote so they can find it.

import type { z } from "zod";
import { show } from "../workloads/fields.ts";

// Field types word their own problems; `show` is theirs, re-exported for the file-level checks.
export { show };

const yamlTypeNames: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  record: "a mapping",
};

/** The closest candidate within a small edit distance, for "did you mean" hints. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = editDistance(word.toLowerCase(), name.toLowerCase());
    if (distance <= Math.max(1, Math.floor(name.length / 3)) && (!best || distance < best.distance)) {
      best = { name, distance };
    }
  }
  return best?.name;
}

export function didYouMean(word: string, candidates: Iterable<string>): string {
  const hit = closest(word, candidates);
  return hit ? ` (did you mean ${hit}?)` : "";
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * Zod's fallback wording, used for issues the schema doesn't word itself (a wrong type, a
 * missing key, a value outside an enum). Passed per parse so it never leaks into other users of zod.
 */
export const specErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type":
      if (issue.input === undefined) return "required key is missing";
      return `expected ${yamlTypeNames[issue.expected] ?? issue.expected}, got ${show(issue.input)}`;
    case "invalid_value": {
      const options = issue.values.map(String);
      const hint = typeof issue.input === "string" ? didYouMean(issue.input, options) : "";
      return `expected ${options.length > 1 ? "one of " : ""}${options.join(", ")}, got ${show(issue.input)}${hint}`;
    }
    case "too_small":
      if (issue.origin === "array") return `needs at least ${issue.minimum} entr${issue.minimum === 1 ? "y" : "ies"}`;
      if (issue.origin === "string")
        return issue.minimum === 1 ? "must not be empty" : `must be at least ${issue.minimum} characters`;
      return `must be ${issue.inclusive ? "at least" : "greater than"} ${issue.minimum}, got ${show(issue.input)}`;
    case "too_big":
      if (issue.origin === "string") return `must be at most ${issue.maximum} characters`;
      return `must be ${issue.inclusive ? "at most" : "less than"} ${issue.maximum}, got ${show(issue.input)}`;
    case "invalid_format":
      return `${show(issue.input)} does not match ${issue.pattern ?? issue.format}`;
    default:
      return undefined;
  }
};
