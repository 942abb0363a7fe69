// A machine-made scenario with thousands of problems: the CLI shows the first ones and counts the
// rest, and the message reaches a pipe whole before vmrig exits 2.
import { execa } from "execa";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { SHOWN_ISSUES } from "../../harness/util/errors.ts";
import { freshCachePerTest } from "../helpers/env.ts";

describe("spec errors on a pipe", () => {
  const dir = freshCachePerTest("vmrig-cli-errors-");

  it("caps 10,000 problems at the first ones plus a count, flushed whole, exit 2", async () => {
    const workloads = Array.from(
      { length: 5000 },
      (_, i) => `  - { id: w${i}, readdir: { entries: 10, bogus${i}: 1 } }`,
    );
    const file = path.join(dir(), "many.yaml");
    writeFileSync(
      file,
      "name: many\nkernels:\n  k: { debian: { version: '6.12', flavour: cloud-amd64 } }\nworkloads:\n" +
        workloads.join("\n") +
        "\n",
    );
    const r = await execa("node", ["--import", "tsx", path.resolve("harness/cli.ts"), "run", file], { reject: false });
    const lines = r.stderr.split("\n");
    expect(r.exitCode).toBe(2);
    expect(lines).toHaveLength(SHOWN_ISSUES + 1);
    expect(lines[0]).toBe(`vmrig: ${file}:5:15 workloads[0].readdir.share: required key is missing`);
    expect(lines.at(-1)).toBe(`... and ${10_000 - SHOWN_ISSUES} more problems (fix the first ones and run again)`);
  });

  it("checks every file of a multi-file run before the first guest boots", async () => {
    const bad = path.join(dir(), "bad.yaml");
    writeFileSync(bad, "name: bad\nkernels: {}\nworkloads: []\nmachine: { cpus: 0 }\n");
    const results = path.join(dir(), "results");
    const r = await execa(
      "node",
      ["--import", "tsx", path.resolve("harness/cli.ts"), "run", path.resolve("scenarios/smoke.yaml"), bad],
      { reject: false, env: { VMRIG_RESULTS: results } },
    );
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${bad}:4:18 machine.cpus: must be greater than 0, got 0`);
    expect(r.stderr).not.toMatch(/smoke\.yaml/);
    expect(r.stdout).toBe("");
    expect(existsSync(results)).toBe(false);
  });
});
