// Pure: the set of Debian packages a program needs to run from a private directory (its
// Pre-Depends and Depends, transitively), as apt would pick them from the suites given, minus
// packages that only matter to an installed system (user accounts, debconf): vmrig never runs
// their maintainer scripts, it only unpacks files.
import type { Stanza } from "./control.ts";

/** Packages whose files a private, unpacked program never uses; their dependencies are not followed. */
export const NOT_NEEDED_UNPACKED: ReadonlySet<string> = new Set([
  "adduser",
  "passwd",
  "debconf",
  "base-passwd",
  "login.defs",
  "debconf-2.0",
]);

/** "a (>= 1), b:any | c, ${x}" -> [["a"], ["b", "c"]]: each group is a list of alternatives. */
export function parseDependsField(field: string | undefined): string[][] {
  if (!field) return [];
  return field
    .split(",")
    .map((group) =>
      group
        .split("|")
        .map((alt) => alt.trim().split(/[\s(:[]/)[0]!)
        .filter(Boolean),
    )
    .filter((alts) => alts.length > 0);
}

/** The dependency groups of a stanza: Pre-Depends then Depends. */
export const dependencyGroups = (s: Stanza): string[][] => [
  ...parseDependsField(s["Pre-Depends"]),
  ...parseDependsField(s["Depends"]),
];

export interface Closure {
  /** Package name -> the stanza chosen for it. */
  chosen: Map<string, Stanza>;
  /** Dependency groups no alternative of which is known (yet): "libfoo1 | libfoo2". */
  unresolved: string[];
}

/**
 * The closure of `roots` over `pool` (name -> candidate stanzas, any suites). A name takes its
 * first candidate: callers order candidates by preference (newer suite first). An alternative
 * group takes the first name already chosen, else the first name in the pool, else a package
 * that Provides it.
 */
export function dependencyClosure(
  roots: readonly string[],
  pool: ReadonlyMap<string, readonly Stanza[]>,
  skip: ReadonlySet<string> = NOT_NEEDED_UNPACKED,
): Closure {
  const providers = new Map<string, string>();
  for (const [name, stanzas] of pool) {
    for (const provided of parseDependsField(stanzas[0]?.["Provides"]).flat())
      if (!providers.has(provided)) providers.set(provided, name);
  }
  const chosen = new Map<string, Stanza>();
  const unresolved: string[] = [];
  const todo = [...roots];
  while (todo.length > 0) {
    const name = todo.shift()!;
    if (chosen.has(name) || skip.has(name)) continue;
    const stanza = pool.get(name)?.[0];
    if (!stanza) {
      unresolved.push(name);
      continue;
    }
    chosen.set(name, stanza);
    for (const alts of dependencyGroups(stanza)) {
      if (alts.some((a) => skip.has(a))) continue;
      const pick =
        alts.find((a) => chosen.has(a)) ??
        alts.find((a) => pool.has(a)) ??
        alts.map((a) => providers.get(a)).find(Boolean);
      if (pick) todo.push(pick);
      else unresolved.push(alts.join(" | "));
    }
  }
  return { chosen, unresolved: [...new Set(unresolved)] };
}
