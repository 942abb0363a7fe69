// Three runs of one scenario started together, as CI matrices and impatient users do: each gets a
// run directory of its own (created exclusively, even within one second), with its own complete
// results.json and its own guest's console; nothing is shared and nothing is left running.
import { execa } from "execa";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { RunResult } from "../../harness/types.ts";
import { guestProcessesWithEnv } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

const root = path.resolve(import.meta.dirname, "..", "..");
const tmp = testScratch("vmrig-test-concurrent-");

describe("concurrent runs of one scenario", () => {
  it("three runs at once: three run directories, each with its own results and console", async () => {
    const file = path.join(tmp, "same.yaml");
    // Each run's guest answers with a fresh UUID: a results.json holding another run's cell shows.
    writeFileSync(
      file,
      "name: same\nmachine: { memory: 512M, cpus: 1 }\n" +
        "kernels:\n  k: { debian: { version: '6.12', flavour: cloud-amd64 } }\n" +
        "workloads:\n  - { id: token, shell: { command: 'cat /proc/sys/kernel/random/uuid' } }\n",
    );
    const results = path.join(tmp, "results");
    const runs = await Promise.all(
      [1, 2, 3].map(() =>
        execa(process.execPath, [path.join(root, "bin/vmrig.js"), "run", file], {
          reject: false,
          cwd: tmp,
          env: { VMRIG_RESULTS: results },
        }),
      ),
    );
    for (const r of runs) expect(r.exitCode, r.stderr.slice(-2000)).toBe(0);
    const dirs = readdirSync(path.join(results, "same")).filter((d) => /^\d{4}-/.test(d));
    expect(dirs).toHaveLength(3);
    const uuids = dirs.map((d) => {
      const json = JSON.parse(readFileSync(path.join(results, "same", d, "results.json"), "utf8")) as RunResult;
      expect(json.complete).toBe(true);
      expect(json.rows).toHaveLength(1);
      const cell = json.rows[0]!.cells[0]!;
      expect(cell.outcome.kind).toBe("pass");
      const console = readFileSync(path.join(results, "same", d, json.rows[0]!.artifacts.console!), "utf8");
      expect(console).toContain("vmrig-guest: ready");
      return String((cell.evidence as { stdout?: string }).stdout)
        .trim()
        .split("\n")
        .pop();
    });
    // Three guests, three answers: no run's results.json holds another's cell.
    expect(new Set(uuids).size).toBe(3);
    // Each run printed its own directory, and they differ.
    const printed = runs.map((r) => /results\/same\/([^/\s]+)/.exec(r.stdout + r.stderr)?.[1]);
    expect(new Set(printed).size).toBe(3);
    expect(guestProcessesWithEnv("VMRIG_RESULTS", results)).toEqual([]);
  }, 600_000);
});
