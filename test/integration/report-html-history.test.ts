// The HTML reports over a long history (no guests: twelve synthetic nights on disk, one cell
// regressing with a kernel change, one flaky with nothing changed, the oldest runs compressed
// and pruned by gc), rendered by headless chromium: every link resolves, trends have a dot per
// night, classes are right.
import { afterAll, describe, expect, it } from "vitest";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { writeHtmlReports, writeIndex, writeRunReport } from "../../harness/report/html/write.ts";
import { compressRun, pruneRun } from "../../harness/history/retention.ts";
import { loadRun } from "../../harness/history/history.ts";
import { brokenLinks, dumpDom, hrefs, screenshot } from "../helpers/chromium.ts";
import { crash, ENOMEM, fakeRun, HANG, INFRA, night, PASS } from "../helpers/runs.ts";
import type { CellOutcome } from "../../harness/types.ts";
import { testScreenshotsDir } from "../../harness/util/env.ts";

const tmp = mkdtempSync(path.join(os.tmpdir(), "vmrig-test-html-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const root = path.join(tmp, "results");
const NIGHTS = 12;

const yaml = (v: string) => `name: nightly
machine: { arch: x86_64, memory: 1G, cpus: 2 }
kernels:
  stock: { debian: { version: "${v}", flavour: cloud-amd64 } }
  patched: { path: { kernel: /k/bzImage } }
shares: [{ tag: share }]
workloads:
  - { id: getdents-1M, readdir: { share: share, entries: 5000, bufferSize: 1M } }
  - { id: read-1M, read: { share: share, size: 64M, blockSize: 1M } }
  - { id: dnotify, shell: { command: "/usr/bin/dnotify-repro", expectExit: 0 } }
`;

function night_(n: number): string {
  // Night 9 upgrades the stock kernel: getdents starts failing with ENOMEM (a regression).
  const upgraded = n >= 9;
  // read-1M on the patched kernel wavers with nothing changed (flaky).
  const flaky: CellOutcome = n % 3 === 0 ? HANG : PASS;
  const dnotify: CellOutcome =
    n === 5 ? INFRA : crash("kernel BUG at fs/notify/dnotify/dnotify.c:78", "BUG dnotify.c|dnotify_flush|filp_flush");
  const dir = path.join(root, "nightly", night(n));
  const rec = fakeRun({
    stamp: night(n),
    dir,
    yaml: yaml(upgraded ? "6.18" : "6.12"),
    kernels: [
      {
        label: "stock",
        identity: upgraded ? "deb:6.18.15-1" : "deb:6.12.117-1",
        description: upgraded ? "Debian 6.18.15-1" : "Debian 6.12.117-1",
        cells: { "getdents-1M": upgraded ? ENOMEM : PASS, "read-1M": PASS, dnotify },
        expected: { dnotify: ["CRASH"] },
      },
      {
        label: "patched",
        identity: "sha256:patched",
        description: "stock + fuse: back readdir buffers with pages",
        cells: { "getdents-1M": PASS, "read-1M": flaky, dnotify: PASS },
      },
    ],
  });
  rec.result.rows[0]!.artifacts["stacks-read-1M"] = "stock/stacks-read-1M.txt";
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "results.json"), JSON.stringify(rec.result, null, 2));
  writeFileSync(path.join(dir, "scenario.yaml"), rec.scenarioYaml!);
  for (const f of ["results.md", "junit.xml"]) writeFileSync(path.join(dir, f), "x\n");
  for (const row of rec.result.rows) {
    mkdirSync(path.join(dir, row.label), { recursive: true });
    for (const rel of Object.values(row.artifacts)) writeFileSync(path.join(dir, rel), `${rel}\n`.repeat(400));
  }
  return dir;
}

describe("HTML reports over twelve nights", () => {
  it("render in headless chromium with every link resolving, also after compression and pruning", async () => {
    const dirs: string[] = [];
    for (let n = 1; n <= NIGHTS; n++) {
      dirs.push(night_(n));
      await writeHtmlReports(dirs.at(-1)!, root);
    }
    // Retention as `vmrig gc --keep 6 --compress-after 1` would leave it.
    for (const d of dirs.slice(0, NIGHTS - 6)) await pruneRun(d);
    for (const d of dirs.slice(NIGHTS - 6, NIGHTS - 1)) await compressRun(d);
    for (const d of dirs.slice(0, NIGHTS - 1)) await writeRunReport(await loadRun(d), root);
    await writeIndex(root);

    const pages = [path.join(root, "index.html"), ...dirs.map((d) => path.join(d, "report.html"))];
    const doms = new Map<string, string>();
    for (const p of [pages[0]!, pages.at(-1)!, pages[NIGHTS - 1]!, pages[1]!]) doms.set(p, await dumpDom(p));
    for (const [p, dom] of doms)
      expect(
        brokenLinks(p, dom, (f) => doms.get(f)),
        p,
      ).toEqual([]);

    const last = doms.get(pages.at(-1)!)!;
    // A dot per night in every trend (12 nights kept, at most 14 shown).
    const trend = last.slice(last.indexOf('id="c-stock--getdents-1M"'));
    expect((trend.slice(0, trend.indexOf("</svg>")).match(/<circle/g) ?? []).length).toBe(NIGHTS);
    // Night 12 against night 11: read-1M on patched flipped PASS -> HANG with nothing changed.
    expect(last).toMatch(/id="c-patched--read-1M"[^]*?>FLAKY</);
    // Links into the compressed night 11 from its trend dots resolve to its report.
    expect(hrefs(last)).toContain(`../${night(11)}/report.html`);
    // The compressed night links .gz logs; the pruned night links none.
    expect(hrefs(doms.get(pages[NIGHTS - 1]!)!).length).toBeGreaterThan(0);
    const compressed = await dumpDom(path.join(dirs[NIGHTS - 2]!, "report.html"));
    expect(hrefs(compressed)).toContain("stock/console.log.gz");
    expect(brokenLinks(path.join(dirs[NIGHTS - 2]!, "report.html"), compressed)).toEqual([]);
    expect(hrefs(doms.get(pages[1]!)!).filter((h) => h.startsWith("stock/"))).toEqual([]);

    // The night the kernel changed: getdents regressed, naming the kernel.
    const n9 = await dumpDom(path.join(dirs[8]!, "report.html"));
    expect(n9).toMatch(/id="c-stock--getdents-1M"[^]*?>REGRESSION</);
    expect(n9).toContain("Debian 6.12.117-1 [deb:6.12.117-1] → Debian 6.18.15-1 [deb:6.18.15-1]");

    const shot = path.join(tmp, "history.png");
    await screenshot(pages.at(-1)!, shot, "1300,1100");
    await screenshot(pages[0]!, path.join(tmp, "history-index.png"), "1300,1100");
    expect(statSync(shot).size).toBeGreaterThan(20_000);
    const keep = testScreenshotsDir();
    if (keep) {
      mkdirSync(keep, { recursive: true });
      copyFileSync(shot, path.join(keep, "history-report.png"));
      copyFileSync(path.join(tmp, "history-index.png"), path.join(keep, "history-index.png"));
    }
  }, 300_000);
});
