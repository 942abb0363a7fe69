// Every environment variable vmrig reads is declared in harness/util/env.ts, and the README's
// "Environment" table is exactly that declaration.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  ENVIRONMENT,
  debianMirror,
  offline,
  resultsOverride,
  vmrigCacheOverride,
  xdgCacheHome,
} from "../../harness/util/env.ts";
import { cacheDir, repoRoot, resultsRoot } from "../../harness/util/paths.ts";
import { withEnv } from "../helpers/env.ts";

const table = (): string =>
  [
    "| variable | read by | default | why |",
    "|---|---|---|---|",
    ...ENVIRONMENT.map((v) => `| \`${v.name}\` | ${v.reader} | ${v.default} | ${v.why} |`),
  ].join("\n");

describe("environment", () => {
  it("the README's Environment section holds the table of every variable", () => {
    const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
    const section = readme.split(/^## Environment\n/m)[1]?.split(/^## /m)[0] ?? "";
    expect(section).toContain(table());
  });

  it("harness/ reads variables only through env.ts, and every VMRIG_ variable anywhere is declared", () => {
    const declared = new Set(ENVIRONMENT.map((v) => v.name));
    const files = (dir: string): string[] =>
      readdirSync(path.join(repoRoot, dir), { recursive: true, encoding: "utf8" })
        .filter((f) => f.endsWith(".ts"))
        .map((f) => path.join(dir, f));
    const undeclared: string[] = [];
    const readsOutside: string[] = [];
    for (const file of ["harness", "bench", "test"].flatMap(files)) {
      const text = readFileSync(path.join(repoRoot, file), "utf8");
      for (const m of text.matchAll(/process\.env\.(VMRIG_\w+)/g))
        if (!declared.has(m[1]!)) undeclared.push(`${file}: ${m[1]}`);
      // A build passes the whole environment on to make (cleanBuildEnv filters it): not a read.
      if (file.startsWith("harness/") && file !== "harness/util/env.ts") {
        for (const m of text.matchAll(/process\.env\b(?!\))/g)) readsOutside.push(`${file} at ${m.index}`);
      }
    }
    expect(undeclared).toEqual([]);
    expect(readsOutside).toEqual([]);
    const env = readFileSync(path.join(repoRoot, "harness/util/env.ts"), "utf8");
    for (const name of declared) expect(env).toMatch(new RegExp(`(process\\.env\\.|read\\(")${name}\\b`));
  });

  it("keeps the defaults and treats an empty cache variable as unset", async () => {
    await withEnv({ VMRIG_CACHE: "", XDG_CACHE_HOME: "/var/cache/ci" }, async () => {
      expect(vmrigCacheOverride()).toBeUndefined();
      expect(xdgCacheHome()).toBe("/var/cache/ci");
      expect(cacheDir()).toBe("/var/cache/ci/vmrig");
    });
    await withEnv(
      { VMRIG_CACHE: "relative/cache", VMRIG_OFFLINE: "1", VMRIG_RESULTS: "/srv/vmrig/results" },
      async () => {
        expect(cacheDir()).toBe(path.resolve("relative/cache"));
        expect(offline()).toBe(true);
        expect(resultsOverride()).toBe("/srv/vmrig/results");
        expect(resultsRoot()).toBe("/srv/vmrig/results");
      },
    );
    const saved = process.env.VMRIG_RESULTS;
    delete process.env.VMRIG_RESULTS;
    try {
      expect(resultsRoot()).toBe(path.join(repoRoot, "results"));
    } finally {
      if (saved !== undefined) process.env.VMRIG_RESULTS = saved;
    }
    await withEnv({ VMRIG_OFFLINE: "yes" }, async () => expect(offline()).toBe(false));
    expect(debianMirror()).toBe(process.env.VMRIG_DEBIAN_MIRROR ?? "http://deb.debian.org/debian");
  });
});
