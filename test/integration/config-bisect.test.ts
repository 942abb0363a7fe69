// vmrig bisect --config for real: linux-source-7.3 with vmrig's guest fragment (BAD: no
// /proc/config.gz) against the same fragment plus five options (GOOD). Every config is built in
// one work slot (incremental make) and booted under QEMU. Interrupted once after the ends were
// checked, resumed to the answer, run a third time: no step is redone. Before that, two configs
// that resolve to the same one exit 2 with nothing left behind (kconfig only, no build).
import { execa } from "execa";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runConfigBisect } from "../../harness/bisect/config-session.ts";
import { pendingCleanups } from "../../harness/util/cleanup.ts";
import { VmrigError } from "../../harness/util/errors.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { ownGuestProcesses } from "../helpers/processes.ts";
import { say, testProgress } from "../helpers/progress.ts";
import { testScratch } from "../helpers/scratch.ts";

const tmp = testScratch("vmrig-test-config-bisect-");
const scenario = path.join(repoRoot, "test", "fixtures", "config-bisect", "procconfig.yaml");
const bad = path.join(repoRoot, "kernels", "guest-x86_64.config");
const extra = [
  "CONFIG_BSD_PROCESS_ACCT=y",
  "CONFIG_CROSS_MEMORY_ATTACH=y",
  "CONFIG_IKCONFIG=y",
  "CONFIG_IKCONFIG_PROC=y",
  "CONFIG_PRINTK_CALLER=y",
];

afterAll(() => {
  expect(ownGuestProcesses()).toEqual([]);
  expect(pendingCleanups()).toEqual([]);
});

describe("vmrig bisect --config", () => {
  it("two configs that resolve to the same one: exit 2, no results left", { timeout: 10 * 60_000 }, async () => {
    const same = path.join(tmp, "same.config");
    writeFileSync(same, readFileSync(bad, "utf8") + "# CONFIG_IKCONFIG is not set\n");
    const results = path.join(tmp, "results-same");
    const cell = ["--scenario", scenario, "--kernel", "mine", "--workload", "procconfig"];
    const cli = path.join(repoRoot, "harness", "cli.ts");
    const r = await execa("node", ["--import", "tsx", cli, "bisect", "--config", same, bad, ...cell], {
      reject: false,
      env: { VMRIG_RESULTS: results },
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/resolve to the same configuration in mine's tree .*: nothing to bisect$/);
    const scenarioDir = path.join(results, "bisect", "config-bisect-procconfig");
    expect(existsSync(scenarioDir) ? readdirSync(scenarioDir) : []).toEqual([]);
  });

  // Not yet run to its end on this project's machine (only its BAD end was checked): skipped until it has.
  it.skip(
    "names CONFIG_IKCONFIG_PROC (good y, bad not set) for `test -e /proc/config.gz`",
    async () => {
      const started = Date.now();
      const good = path.join(tmp, "good.config");
      writeFileSync(good, readFileSync(bad, "utf8") + extra.join("\n") + "\n");
      const base = { good, bad, scenario, kernel: "mine", workload: "procconfig", resultsRoot: path.join(tmp, "r") };
      const lines: string[][] = [[], [], []];
      const stop = new AbortController();
      const interrupted = await runConfigBisect({
        ...base,
        progress: testProgress,
        signal: stop.signal,
        out: (l) => lines[0]!.push(l),
        onStep: (r) => r.phase === "check-good" && stop.abort(),
      }).catch((e: unknown) => e);
      expect((interrupted as VmrigError).exitCode).toBe(130);
      expect(interrupted).toBeInstanceOf(VmrigError);
      const resumed = await runConfigBisect({ ...base, progress: testProgress, out: (l) => lines[1]!.push(l) });
      const again = await runConfigBisect({ ...base, progress: testProgress, out: (l) => lines[2]!.push(l) });
      for (const l of lines[1]!) say(l);

      expect(resumed.state.diff.map((c) => c.option)).toEqual(extra.map((l) => l.split("=")[0]));
      const answer = resumed.state.result!.answer!;
      expect(resumed.exitCode).toBe(0);
      expect(answer.option).toEqual({ option: "CONFIG_IKCONFIG_PROC", good: "y", bad: "n" });
      expect(answer.together).toEqual([answer.option]);
      expect(resumed.state.identity?.identity).toEqual({ kind: "fail" });
      expect(lines[1]).toContain("the option: CONFIG_IKCONFIG_PROC  good y  bad not set");
      expect(resumed.ran.map((r) => r.phase).every((p) => p === "step")).toBe(true);
      expect(again.ran).toEqual([]);
      expect(again.state.result).toEqual(resumed.state.result);
      const builds = resumed.state.steps.filter((s) => s.reusedFrom === undefined).length;
      expect(builds).toBeLessThanOrEqual(2 + Math.ceil(Math.log2(extra.length)));
      expect(readFileSync(path.join(resumed.dir, "bisect.log"), "utf8")).toMatch(/^good [0-9a-f]{16} \+4 /m);
      console.log(`config bisect: ${builds} builds for ${extra.length} options; ${(Date.now() - started) / 1000} s`);
    },
    40 * 60_000,
  );
});
