// Nightly CI on real guests: a parallel run gives the serial run's table; two runs
// where one kernel changes give the right regression and fix in `vmrig compare` and the nightly
// summary; the HTML reports render in headless chromium with every link resolving, also after
// `vmrig gc` compressed or pruned the older run's logs.
//
// Guest time (2 cores, TCG): ~1 min serial + ~1 min parallel for the stress pair, ~1 min for
// the two history runs. VMRIG_STRESS_REPS=5 repeats the stress pair (not in CI).
import { describe, expect, it } from "vitest";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { runScenarioFile } from "../../harness/run/run-file.ts";
import { runScenarioFiles } from "../../harness/run/schedule/run-many.ts";
import { GuestScheduler, limitsFor } from "../../harness/run/schedule/scheduler.ts";
import { renderTerminalTable } from "../../harness/report/table.ts";
import { silentProgress, discardOutput, type Progress } from "../../harness/run/progress.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { ownGuestProcesses } from "../helpers/descendants.ts";
import { processesMatching } from "../helpers/processes.ts";
import { brokenLinks, dumpDom, hrefs, screenshot } from "../helpers/chromium.ts";
import { testScratch } from "../helpers/scratch.ts";
import { stressReps, testScreenshotsDir } from "../../harness/util/env.ts";
import type { RunResult } from "../../harness/types.ts";

// Removed afterwards; a failed test's guest consoles are kept (the path is printed).
const tmp = testScratch("vmrig-test-nightly-");

const quiet: Progress = silentProgress;
const sink = discardOutput;
/** Screenshots are kept here when set (to look at them), else thrown away with the temp dir. */
const keepShots = testScreenshotsDir();

function scenario(dir: string, name: string, body: string): string {
  mkdirSync(dir, { recursive: true });
  const f = path.join(dir, `${name}.yaml`);
  writeFileSync(f, `name: ${name}\n${body}`);
  return f;
}

const cli = (args: string[], env: Record<string, string> = {}) =>
  execa(path.join(repoRoot, "node_modules", ".bin", "tsx"), [path.join(repoRoot, "harness", "cli.ts"), ...args], {
    reject: false,
    env: { ...env, CI: "1" },
  });

describe("parallel runs", () => {
  const GUESTS = 6;
  const kernels = Array.from(
    { length: GUESTS },
    (_, i) => `  k${i + 1}: { debian: { version: "${i % 2 ? "7.3" : "6.12"}", flavour: cloud-amd64 } }`,
  ).join("\n");
  const file = scenario(
    path.join(tmp, "stress"),
    "stress",
    `machine: { arch: x86_64, memory: 512M, cpus: 1 }
kernels:
${kernels}
shares:
  - { tag: share }
workloads:
  - { id: major, shell: { command: "uname -r | cut -d. -f1", expectExit: 0 } }
  - { id: readdir, readdir: { share: share, entries: 300, bufferSize: 64K } }
  - { id: fails, shell: { command: "false", expectExit: 0 } }
expect: { default: PASS }
`,
  );

  it(`${GUESTS} guests on ${os.availableParallelism()} cores give the serial run's table, with no HANG or INFRA`, async () => {
    const reps = stressReps();
    const resultsRoot = path.join(tmp, "stress-results");
    for (let rep = 0; rep < reps; rep++) {
      const serial = await runScenarioFile(file, { resultsRoot, progress: quiet, out: sink });
      // --jobs N with N guests: every guest at once, the host's cores oversubscribed 3x on 2 cores.
      const scheduler = new GuestScheduler(
        limitsFor(GUESTS, { cores: os.availableParallelism(), availableBytes: 32 * 2 ** 30 }),
      );
      const parallel = await runScenarioFiles([file], {
        jobs: GUESTS,
        scheduler,
        resultsRoot,
        progress: quiet,
        out: sink,
      });
      const p = parallel.files[0]!.outcome!;
      expect(parallel.files[0]!.error).toBeUndefined();
      expect(scheduler.stats.peakGuests).toBe(GUESTS);

      const table = (r: typeof p.result) => renderTerminalTable(r, { color: false });
      expect(table(p.result)).toBe(table(serial.result));
      expect(p.exitCode).toBe(serial.exitCode);
      for (const row of p.result.rows) {
        expect(row.cells.map((c) => c.outcome.kind)).toEqual(["pass", "pass", "fail"]);
        // TCG's 4x times the load: 6 vCPUs on the cores there are.
        expect(row.evidence.timeScale).toBe(4 * Math.max(1, GUESTS / os.availableParallelism()));
      }
      expect(p.result.rows.map((r) => r.label)).toEqual(serial.result.rows.map((r) => r.label));
      // Each guest kept its own artifacts.
      for (const row of p.result.rows)
        expect(readFileSync(path.join(p.runDir, row.artifacts.console!), "utf8")).toContain("Linux version");
      expect(ownGuestProcesses()).toEqual([]);
    }
  }, 1_800_000);
});

describe("interrupting a parallel run", () => {
  it("SIGINT stops every guest of every scenario, exits 130, keeps each scenario's results marked incomplete", async () => {
    const dir = path.join(tmp, "sigint");
    const files = ["sig-a", "sig-b"].map((name) =>
      scenario(
        dir,
        name,
        "machine: { memory: 512M, cpus: 1 }\nkernels:\n  k: { debian: { version: '6.12', flavour: cloud-amd64 } }\n" +
          "shares: [{ tag: share }]\nworkloads:\n  - { id: long, shell: { command: 'sleep 600' } }\n",
      ),
    );
    // Guests' scratch directories go under TMPDIR: every process of this run names `scratch`.
    const scratch = path.join(tmp, "sigint-scratch");
    mkdirSync(scratch, { recursive: true });
    const results = path.join(tmp, "sigint-results");
    const child = cli(["run", ...files, "--jobs", "2"], { VMRIG_RESULTS: results, TMPDIR: scratch });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (stderr.includes("[sig-a/k] long") && stderr.includes("[sig-b/k] long")) {
          clearInterval(t);
          resolve();
        }
      }, 200);
      setTimeout(() => reject(new Error(`never reached both workloads: ${stderr}`)), 400_000);
    });
    expect(processesMatching(scratch).filter((p) => /qemu-system/.test(p.cmdline))).toHaveLength(2);
    child.kill("SIGINT");
    const r = await child;
    expect(r.exitCode).toBe(130);
    expect(processesMatching(scratch)).toEqual([]);
    for (const name of ["sig-a", "sig-b"]) {
      const [stamp] = readdirSync(path.join(results, name));
      const resultsFile = path.join(results, name, stamp!, "results.json");
      const json = JSON.parse(readFileSync(resultsFile, "utf8")) as RunResult; // vmrig wrote it
      expect(json.complete).toBe(false);
      expect(json.rows[0]!.cells[0]!.outcome.kind).toBe("not-run");
      expect(existsSync(path.join(results, name, stamp!, "report.html"))).toBe(true);
    }
  }, 600_000);
});

describe("history, compare, summary, HTML, retention", () => {
  const dir = path.join(tmp, "history");
  const resultsRoot = path.join(tmp, "history-results");
  const body = (moving: string) => `machine: { arch: x86_64, memory: 512M, cpus: 1 }
kernels:
  moving: { debian: { version: "${moving}", flavour: cloud-amd64 } }
  steady: { debian: { version: "6.12", flavour: cloud-amd64 } }
shares:
  - { tag: share }
workloads:
  - { id: is-6, shell: { command: "uname -r | grep -q '^6[.]'", expectExit: 0 } }
  - { id: is-7, shell: { command: "uname -r | grep -q '^7[.]'", expectExit: 0 } }
  - { id: never, shell: { command: "false", expectExit: 0 } }
expect: { default: PASS }
`;
  const runDirs: string[] = [];

  it("a kernel change between two runs shows as the regression and the fix it caused", async () => {
    for (const moving of ["6.12", "7.3"]) {
      const file = scenario(path.join(dir, moving), "kernel-swap", body(moving));
      const r = await runScenarioFiles([file], { jobs: "auto", resultsRoot, progress: quiet, out: sink });
      expect(r.files[0]!.error).toBeUndefined();
      runDirs.push(r.files[0]!.outcome!.runDir);
    }
    const [a, b] = runDirs as [string, string];

    const text = await cli(["compare", a, b]);
    expect(text.exitCode, text.stderr).toBe(1); // a regression
    expect(text.stdout).toMatch(/1 regression, 1 fix, 0 flaky, 3 still failing, 0 without verdict, 1 passing/);
    expect(text.stdout).toMatch(
      /Regressions \(new failures\):\n {2}moving \/ is-6: PASS -> FAIL: exit 1, expected 0 ✗\n {6}kernel: Debian 6\.12\.\S+ .* -> Debian 7\.3\.\S+/,
    );
    expect(text.stdout).toMatch(
      /Fixes \(new passes\):\n {2}moving \/ is-7: FAIL: exit 1, expected 0 -> PASS\n {6}kernel: Debian 6\.12/,
    );

    const json = JSON.parse((await cli(["compare", a, b, "--json"])).stdout) as {
      cells: Array<{ kernel: string; workload: string; cls: string; changes: Array<{ what: string }> }>;
    };
    const cls = Object.fromEntries(json.cells.map((c) => [`${c.kernel}/${c.workload}`, c.cls]));
    expect(cls).toEqual({
      "moving/is-6": "regression",
      "moving/is-7": "fix",
      "moving/never": "still-failing",
      "steady/is-6": "pass",
      "steady/is-7": "still-failing",
      "steady/never": "still-failing",
    });
    // The steady row's kernel did not change, so it names no kernel change.
    for (const c of json.cells.filter((x) => x.kernel === "steady"))
      expect(c.changes.map((x) => x.what)).not.toContain("kernel");
    for (const c of json.cells.filter((x) => x.kernel === "moving"))
      expect(c.changes.map((x) => x.what)).toContain("kernel");

    // One argument: the run against the run before it. Reversed: the fix is now the regression.
    expect((await cli(["compare", b])).stdout).toContain("1 regression, 1 fix");
    expect((await cli(["compare", b, a])).stdout).toMatch(/Regressions \(new failures\):\n {2}moving \/ is-7/);

    const summary = await cli(["summary", "--results", resultsRoot]);
    expect(summary.exitCode).toBe(1);
    expect(summary.stdout).toContain("kernel-swap: kernel-swap/");
    expect(readFileSync(path.join(resultsRoot, "summary.md"), "utf8")).toContain("### Regressions (new failures)");
    expect(ownGuestProcesses()).toEqual([]);
  }, 900_000);

  it("the run report and the index render in headless chromium with every link resolving", async () => {
    const [a, b] = runDirs as [string, string];
    const report = path.join(b, "report.html");
    const index = path.join(resultsRoot, "index.html");
    const doms = new Map<string, string>();
    const domOf = (f: string) => doms.get(f);
    for (const f of [path.join(a, "report.html"), report, index]) doms.set(f, await dumpDom(f));

    for (const [f, dom] of doms) expect(brokenLinks(f, dom, domOf), f).toEqual([]);
    const dom = doms.get(report)!;
    // Every cell links its console, dmesg, virtiofsd log and QEMU command line, which exist.
    const links = hrefs(dom);
    for (const label of ["moving", "steady"]) {
      for (const f of ["console.log", "dmesg.txt", "virtiofsd-share.log", "qemu-cmdline.txt"])
        expect(links).toContain(`${label}/${f}`);
    }
    expect(dom).toContain(">REGRESSION<");
    expect(dom).toContain(">FIX<");
    expect((dom.match(/<svg class="trend"/g) ?? []).length).toBe(6);
    // The index links the newest run's regression straight to its cell.
    expect(hrefs(doms.get(index)!)).toContain(`kernel-swap/${path.basename(b)}/report.html#c-moving--is-6`);

    const shot = path.join(tmp, "report.png");
    await screenshot(report, shot);
    await screenshot(index, path.join(tmp, "index.png"));
    expect(statSync(shot).size).toBeGreaterThan(20_000);
    if (keepShots) {
      mkdirSync(keepShots, { recursive: true });
      copyFileSync(shot, path.join(keepShots, "nightly-report.png"));
      copyFileSync(path.join(tmp, "index.png"), path.join(keepShots, "nightly-index.png"));
    }
  }, 600_000);

  it("gc gzips a pinned baseline's logs but keeps it, prunes it once unpinned, and links still resolve", async () => {
    const [a] = runDirs as [string, string];
    expect((await cli(["baseline", a])).exitCode).toBe(0);
    const gc1 = await cli(["gc", "--results", resultsRoot, "--keep", "1", "--compress-after", "1"]);
    expect(gc1.exitCode, gc1.stderr).toBe(0);
    expect(gc1.stdout).toMatch(/compress kernel-swap\/\S+: #2 newest, pinned/);
    expect(existsSync(path.join(a, "moving", "console.log.gz"))).toBe(true);
    expect(existsSync(path.join(a, "moving", "console.log"))).toBe(false);
    const reportA = path.join(a, "report.html");
    let dom = await dumpDom(reportA);
    expect(brokenLinks(reportA, dom)).toEqual([]);
    expect(hrefs(dom)).toContain("moving/console.log.gz");

    expect((await cli(["baseline", "--results", resultsRoot, "--clear", "kernel-swap"])).exitCode).toBe(0);
    const gc2 = await cli(["gc", "--results", resultsRoot, "--keep", "1"]);
    expect(gc2.stdout).toMatch(/prune kernel-swap\/\S+: #2 newest, beyond --keep 1/);
    expect(readdirSync(a).sort()).toEqual(["junit.xml", "report.html", "results.json", "results.md", "scenario.yaml"]);
    dom = await dumpDom(reportA);
    expect(brokenLinks(reportA, dom)).toEqual([]);
    // History survives pruning: the comparison still works.
    expect((await cli(["compare", a, runDirs[1]!])).stdout).toContain("1 regression, 1 fix");
  }, 300_000);
});
