// The corpus of malformed and hostile scenarios: every one is refused at load with the file, a
// line and the key, and through the CLI with exit 2, nothing written and nothing started.
import { execa } from "execa";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadScenario } from "../../harness/scenario/load.ts";
import { SpecError } from "../../harness/util/errors.ts";
import { hostileCorpus } from "../fixtures/hostile/corpus.ts";
import { freshCachePerTest } from "../helpers/env.ts";
import { ownGuestProcesses } from "../helpers/processes.ts";

describe("hostile scenarios", () => {
  const dir = freshCachePerTest("vmrig-hostile-");

  it("has at least 100 of them", () => {
    expect(hostileCorpus.length).toBeGreaterThanOrEqual(100);
  });

  it.each(hostileCorpus.map((c) => [c.name, c] as const))("refuses %s at load with file:line and key", async (_, c) => {
    const file = path.join(dir(), "hostile.yaml");
    writeFileSync(file, c.text);
    const err = await loadScenario(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, c.text).toBeInstanceOf(SpecError);
    const first = (err as SpecError).issues[0]!;
    expect(first.file).toBe(file);
    expect(first.line, (err as Error).message).toBeGreaterThan(0);
    if (c.key)
      expect(
        (err as SpecError).issues.some((i) => i.key?.startsWith(c.key)),
        (err as Error).message,
      ).toBe(true);
  });

  // A sample through the real CLI, run together in one process each: exit 2, nothing written or started.
  const sample = hostileCorpus.filter((_, i) => i % 12 === 0);
  it(`vmrig run refuses ${sample.length} of them with exit 2, writing and starting nothing`, async () => {
    const files = sample.map((c, i) => {
      const file = path.join(dir(), `cli-${i}.yaml`);
      writeFileSync(file, c.text);
      return file;
    });
    const results = path.join(dir(), "results");
    const runs = await Promise.all(
      files.map((f) =>
        execa("node", ["--import", "tsx", path.resolve("harness/cli.ts"), "run", f], {
          reject: false,
          env: { VMRIG_RESULTS: results },
        }),
      ),
    );
    for (const [i, r] of runs.entries()) {
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^vmrig: ${files[i]}:\\d+:\\d+`));
    }
    expect(existsSync(results)).toBe(false);
    expect(ownGuestProcesses()).toEqual([]);
  }, 120_000);
});
