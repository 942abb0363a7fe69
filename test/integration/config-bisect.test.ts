// vmrig bisect --config for real, on the mapped-exec defect: linux-source-7.3 with vmrig's guest fragment (BAD: no
// CONFIG_INIT_ON_ALLOC_DEFAULT_ON, so under TCG exec-stale runs stale code from the share's pages) against the same
// fragment plus that option and four cheap bystanders (GOOD). The scenario turns vmrig's own init_on_alloc=1 off
// (machine.tcgPageZeroing: false) so the config decides. Every config is built in one work slot (incremental make)
// and booted under TCG. Interrupted once after the ends were checked, resumed to the answer, run a third time: no
// step is redone. Before that, two configs that resolve to the same one exit 2 with nothing left behind.
import { execa } from "execa";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConfigBisect } from "../../harness/bisect/config-session.ts";
import { pendingCleanups } from "../../harness/util/cleanup.ts";
import { VmrigError } from "../../harness/util/errors.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { ownGuestProcesses } from "../helpers/processes.ts";
import { say, testProgress } from "../helpers/progress.ts";
import { testScratch } from "../helpers/scratch.ts";

const tmp = testScratch("vmrig-test-config-bisect-");
const fixtures = path.join(repoRoot, "test", "fixtures");
const scenario = path.join(fixtures, "config-bisect", "exec-stale.yaml");
const bad = path.join(repoRoot, "kernels", "guest-x86_64.config");
const cause = "CONFIG_INIT_ON_ALLOC_DEFAULT_ON=y";
// Each recompiles a file or two: the steps' cost stays the cause's.
const bystanders = [
  "CONFIG_BSD_PROCESS_ACCT=y",
  "CONFIG_CROSS_MEMORY_ATTACH=y",
  "CONFIG_IKCONFIG=y",
  "CONFIG_PRINTK_CALLER=y",
];
const cell = { scenario, kernel: "mine", workload: "exec-stale" };

beforeAll(async () => {
  // The scenario's shell workload copies it into the share (files: [exec-stale], beside the scenario).
  const source = path.join(fixtures, "guest-programs", "exec-stale.c");
  const program = path.join(fixtures, "config-bisect", "exec-stale");
  await execa("gcc", ["-O2", "-static", "-Wall", "-Werror", "-o", program, source]);
});

afterAll(() => {
  expect(ownGuestProcesses()).toEqual([]);
  expect(pendingCleanups()).toEqual([]);
});

describe("vmrig bisect --config", () => {
  it("two configs that resolve to the same one: exit 2, no results left", { timeout: 10 * 60_000 }, async () => {
    const same = path.join(tmp, "same.config");
    writeFileSync(same, readFileSync(bad, "utf8") + "# CONFIG_IKCONFIG is not set\n");
    const results = path.join(tmp, "results-same");
    const args = ["--scenario", scenario, "--kernel", cell.kernel, "--workload", cell.workload];
    const cli = path.join(repoRoot, "harness", "cli.ts");
    const r = await execa("node", ["--import", "tsx", cli, "bisect", "--config", same, bad, ...args], {
      reject: false,
      env: { VMRIG_RESULTS: results },
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/resolve to the same configuration in mine's tree .*: nothing to bisect$/);
    const scenarioDir = path.join(results, "bisect", "config-bisect-exec-stale");
    expect(existsSync(scenarioDir) ? readdirSync(scenarioDir) : []).toEqual([]);
  });

  it(
    "names CONFIG_INIT_ON_ALLOC_DEFAULT_ON (good y, bad not set) for code run from a share under TCG",
    async () => {
      const started = Date.now();
      const good = path.join(tmp, "good.config");
      const options = [...bystanders, cause].sort();
      writeFileSync(good, readFileSync(bad, "utf8") + options.join("\n") + "\n");
      const base = { ...cell, good, bad, resultsRoot: path.join(tmp, "r") };
      const lines: string[][] = [[], [], []];
      const stop = new AbortController();
      const interrupted = await runConfigBisect({
        ...base,
        progress: testProgress,
        signal: stop.signal,
        out: (l) => lines[0]!.push(l),
        onStep: (r) => r.phase === "check-good" && stop.abort(),
      }).catch((e: unknown) => e);
      expect(interrupted).toBeInstanceOf(VmrigError);
      expect((interrupted as VmrigError).exitCode).toBe(130);
      const resumed = await runConfigBisect({ ...base, progress: testProgress, out: (l) => lines[1]!.push(l) });
      const again = await runConfigBisect({ ...base, progress: testProgress, out: (l) => lines[2]!.push(l) });
      for (const l of [...lines[0]!, ...lines[1]!]) say(l);

      expect(resumed.state.diff.map((c) => c.option)).toEqual(options.map((l) => l.split("=")[0]));
      const answer = resumed.state.result!.answer!;
      expect(resumed.exitCode).toBe(0);
      expect(answer.option).toEqual({ option: "CONFIG_INIT_ON_ALLOC_DEFAULT_ON", good: "y", bad: "n" });
      expect(answer.together).toEqual([answer.option]);
      expect(resumed.state.identity?.identity).toEqual({ kind: "fail" });
      expect(lines[1]).toContain("the option: CONFIG_INIT_ON_ALLOC_DEFAULT_ON  good y  bad not set");
      expect(resumed.ran.map((r) => r.phase).every((p) => p === "step")).toBe(true);
      expect(again.ran).toEqual([]);
      expect(again.state.result).toEqual(resumed.state.result);
      const builds = resumed.state.steps.filter((s) => s.reusedFrom === undefined).length;
      expect(builds).toBeLessThanOrEqual(2 + Math.ceil(Math.log2(options.length)));
      expect(readFileSync(path.join(resumed.dir, "bisect.log"), "utf8")).toMatch(/^good [0-9a-f]{16} \+\d+ /m);
      const seconds = Math.round((Date.now() - started) / 1000);
      console.log(`config bisect: ${builds} builds for ${options.length} options; ${seconds} s`);
    },
    60 * 60_000,
  );
});
