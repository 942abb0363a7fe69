import { afterAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import os from "node:os";
import path from "node:path";
import { compressRun, planRetention, pruneRun, type RunFacts } from "../../harness/history/retention.ts";
import { isPinned, readBaselines, writeBaselines } from "../../harness/history/baselines.ts";
import { writeRunReport } from "../../harness/report/html/write.ts";
import { loadRun } from "../../harness/history/history.ts";
import { fakeRun, FAIL, night, PASS } from "../helpers/runs.ts";

const facts = (scenario: string, n: number, o: Partial<RunFacts> = {}): RunFacts => ({
  id: `${scenario}/${night(n)}`,
  scenario,
  startedAt: night(n),
  pinned: false,
  inProgress: false,
  state: "kept",
  ...o,
});
const actionOf = (plan: ReturnType<typeof planRetention>, id: string) => plan.find((p) => p.id === id)?.action;

describe("planRetention", () => {
  it("keeps the newest plain, gzips up to --keep, prunes older, per scenario", () => {
    const runs = [1, 2, 3, 4, 5, 6].map((n) => facts("a", n)).concat([1, 2].map((n) => facts("b", n)));
    const plan = planRetention(runs, { keep: 3, compressAfter: 1, maxRuns: Infinity });
    expect([6, 5, 4, 3, 2, 1].map((n) => actionOf(plan, `a/${night(n)}`))).toEqual([
      "keep",
      "compress",
      "compress",
      "prune",
      "prune",
      "prune",
    ]);
    expect([2, 1].map((n) => actionOf(plan, `b/${night(n)}`))).toEqual(["keep", "compress"]);
  });

  it("never prunes or deletes a pinned run, and leaves a run being written alone", () => {
    const runs = [facts("a", 1, { pinned: true }), facts("a", 2), facts("a", 3), facts("a", 4, { inProgress: true })];
    const plan = planRetention(runs, { keep: 1, compressAfter: 0, maxRuns: 1 });
    expect(actionOf(plan, `a/${night(4)}`)).toBe("keep");
    expect(actionOf(plan, `a/${night(3)}`)).toBe("compress");
    expect(actionOf(plan, `a/${night(2)}`)).toBe("delete");
    expect(actionOf(plan, `a/${night(1)}`)).toBe("compress");
    expect(plan.find((p) => p.id === `a/${night(1)}`)!.why).toMatch(/pinned/);
  });

  it("does not redo work: compressed runs are not compressed again, pruned not pruned again", () => {
    const plan = planRetention(
      [facts("a", 3), facts("a", 2, { state: "compressed" }), facts("a", 1, { state: "pruned" })],
      { keep: 2, compressAfter: 1, maxRuns: Infinity },
    );
    expect(plan.map((p) => p.action)).toEqual(["keep", "keep", "keep"]);
  });
});

const tmp = mkdtempSync(path.join(os.tmpdir(), "vmrig-retention-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function materialise(root: string, n: number, cells: Parameters<typeof fakeRun>[0]["kernels"][number]["cells"]) {
  const dir = path.join(root, "nightly", night(n));
  const rec = fakeRun({ stamp: night(n), dir, kernels: [{ label: "k", identity: "id", cells }] });
  mkdirSync(path.join(dir, "k"), { recursive: true });
  writeFileSync(path.join(dir, "results.json"), JSON.stringify(rec.result));
  writeFileSync(path.join(dir, "k", "console.log"), "[    0.000000] Linux version 6.12\n".repeat(500));
  writeFileSync(path.join(dir, "k", "dmesg.txt"), "dmesg line\n".repeat(1000));
  writeFileSync(path.join(dir, "k", "virtiofsd-share.log"), "virtiofsd\n".repeat(1000));
  writeFileSync(path.join(dir, "k", "qemu-cmdline.txt"), "qemu-system-x86_64 -m 1G\n");
  return dir;
}

describe("compress and prune on disk", () => {
  it("gzips logs so the report links the .gz, and a pruned run keeps its results and report", async () => {
    const root = path.join(tmp, "r1");
    const d1 = materialise(root, 1, { w: PASS });
    const d2 = materialise(root, 2, { w: FAIL });
    const c = await compressRun(d1);
    expect(c.files).toBe(3); // the tiny QEMU command line stays plain
    expect(c.after).toBeLessThan(c.before / 5);
    expect(existsSync(path.join(d1, "k", "console.log"))).toBe(false);
    expect(gunzipSync(readFileSync(path.join(d1, "k", "console.log.gz"))).toString()).toContain("Linux version 6.12");
    expect(existsSync(path.join(d1, "k", "qemu-cmdline.txt"))).toBe(true);
    const html = readFileSync(await writeRunReport(await loadRun(d1), root), "utf8");
    expect(html).toContain('href="k/console.log.gz"');
    expect(html).toContain('href="k/qemu-cmdline.txt"');
    expect(html).not.toContain('href="k/console.log"');

    await pruneRun(d2);
    expect(existsSync(path.join(d2, "k"))).toBe(false);
    expect(existsSync(path.join(d2, "results.json"))).toBe(true);
    const pruned = readFileSync(await writeRunReport(await loadRun(d2), root), "utf8");
    expect(pruned).toContain('class="gone"');
    expect(pruned).not.toContain('href="k/');
  });

  it("baselines.json and KEEP markers pin runs", async () => {
    const root = path.join(tmp, "r2");
    const d1 = materialise(root, 1, { w: PASS });
    const d2 = materialise(root, 2, { w: PASS });
    await writeBaselines(root, { version: 1, baselines: { nightly: `nightly/${night(1)}` } });
    const b = await readBaselines(root);
    expect(isPinned(`nightly/${night(1)}`, d1, b)).toBe(true);
    expect(isPinned(`nightly/${night(2)}`, d2, b)).toBe(false);
    writeFileSync(path.join(d2, "KEEP"), "bisect good point\n");
    expect(isPinned(`nightly/${night(2)}`, d2, b)).toBe(true);
  });
});
