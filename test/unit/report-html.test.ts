import { describe, expect, it } from "vitest";
import { renderRunPage, trendKey, type ArtifactLink } from "../../harness/report/html/run-page.ts";
import { renderIndexPage } from "../../harness/report/html/index-page.ts";
import { trendSvg } from "../../harness/report/html/trend.ts";
import { cellHistory, compareRuns } from "../../harness/history/compare.ts";
import { crash, fakeRun, HANG, INFRA, night, PASS } from "../helpers/runs.ts";

const plain = (rels: string[]): Record<string, ArtifactLink> =>
  Object.fromEntries(rels.map((rel) => [rel, { rel, href: rel, state: "plain" as const }]));

function twoNights() {
  const a = fakeRun({
    stamp: night(1),
    kernels: [{ label: "stock", identity: "deb:6.12", cells: { getdents: PASS, read: PASS } }],
  });
  const b = fakeRun({
    stamp: night(2),
    kernels: [
      {
        label: "stock",
        identity: "deb:7.3",
        cells: { getdents: crash("kernel BUG at fs/notify/dnotify/dnotify.c:123", "BUG dnotify|fuse_x"), read: INFRA },
      },
    ],
  });
  b.result.rows[0]!.artifacts["stacks-getdents"] = "stock/stacks-getdents.txt";
  return { a, b };
}

describe("run report", () => {
  it("colours cells, marks missed expectations and changes, and links every artifact of the cell", () => {
    const { a, b } = twoNights();
    const rels = Object.values(b.result.rows[0]!.artifacts);
    const html = renderRunPage({
      run: b,
      comparison: compareRuns(a, b),
      comparedHref: `../${night(1)}/report.html`,
      trends: { [trendKey("stock", "getdents")]: cellHistory([a, b], "stock", "getdents") },
      artifacts: plain(rels),
      files: ["results.json", "junit.xml"],
      indexHref: "../../index.html",
    });
    expect(html.startsWith("<!doctype html>")).toBe(true);
    // The crash cell: red, its title, the miss mark, REGRESSION, and links to its evidence.
    const cell = html.slice(
      html.indexOf('id="c-stock--getdents"'),
      html.indexOf("</td>", html.indexOf('id="c-stock--getdents"')),
    );
    expect(cell).toContain("background:#f9d4d4");
    expect(cell).toContain("CRASH: kernel BUG at fs/notify/dnotify/dnotify.c:123");
    expect(cell).toContain("✗ expected PASS");
    expect(cell).toContain(">REGRESSION<");
    for (const [title, href] of [
      ["console", "stock/console.log"],
      ["dmesg", "stock/dmesg.txt"],
      ["stacks getdents", "stock/stacks-getdents.txt"],
      ["virtiofsd share", "stock/virtiofsd-share.log"],
      ["QEMU cmdline", "stock/qemu-cmdline.txt"],
    ]) {
      expect(cell).toContain(`<a href="${href}">${title}</a>`);
    }
    expect(cell).toContain("<svg");
    expect(cell).toContain('href="#c-stock--getdents-detail"');
    expect(html).toContain('id="c-stock--getdents-detail"');
    // The read cell has no stacks link (the stacks belong to getdents) and says no verdict.
    const read = html.slice(
      html.indexOf('id="c-stock--read"'),
      html.indexOf("</td>", html.indexOf('id="c-stock--read"')),
    );
    expect(read).not.toContain("stacks");
    expect(read).toContain(">NO VERDICT<");
    expect(read).toContain("background:#eadff7");
    // The signature and the changed kernel are in the details.
    expect(html).toContain("<code>BUG dnotify|fuse_x</code>");
    expect(html).toMatch(/kernel: Kernel deb:6\.12 \[deb:6\.12\] → Kernel deb:7\.3 \[deb:7\.3\]/);
    expect(html).toContain(`<a href="../${night(1)}/report.html">nightly/${night(1)}</a>`);
  });

  it("says each row's architecture and page size, so a mixed 4K/64K table is read right", () => {
    const r = fakeRun({
      stamp: night(1),
      kernels: [
        { label: "k4", identity: "a", cells: { w: PASS } },
        { label: "k64", identity: "b", cells: { w: PASS } },
      ],
    });
    Object.assign(r.result.rows[0]!, { arch: "aarch64", pageSize: "4K" });
    Object.assign(r.result.rows[1]!, { arch: "aarch64", pageSize: "64K" });
    const html = renderRunPage({ run: r, trends: {}, artifacts: {}, files: [] });
    const heading = (label: string) =>
      html.slice(
        html.indexOf(`<tr><th><div>${label}</div>`),
        html.indexOf("</th>", html.indexOf(`<tr><th><div>${label}</div>`)),
      );
    expect(heading("k4")).toContain('<div class="kdesc">aarch64, 4K pages</div>');
    expect(heading("k64")).toContain('<div class="kdesc">aarch64, 64K pages</div>');
  });

  it("a search cell lists its probes in the order they ran", () => {
    const r = fakeRun({ stamp: night(1), kernels: [{ label: "k", identity: "a", cells: { w: PASS } }] });
    const cell = r.result.rows[0]!.cells[0]!;
    cell.outcome = {
      kind: "errno",
      errno: "ENOMEM",
      mountHealthy: true,
      searchLabel: "PASS up to 256K, -ENOMEM from 260K (2 probes)",
    };
    cell.evidence = {
      search: {
        probes: [
          { value: 262144, label: "256K", outcome: { kind: "pass" }, durationMs: 1500 },
          {
            value: 266240,
            label: "260K",
            outcome: { kind: "errno", errno: "ENOMEM", mountHealthy: true },
            durationMs: 500,
          },
        ],
      },
    };
    const html = renderRunPage({ run: r, trends: {}, artifacts: {}, files: [] });
    expect(html).toContain("PASS up to 256K, -ENOMEM from 260K (2 probes)");
    expect(html).toContain("<tr><td>256K</td><td>PASS</td><td>1.5 s</td>");
    expect(html).toContain("<tr><td>260K</td><td>-ENOMEM (mount healthy)</td><td>0.5 s</td>");
  });

  it("escapes everything that came from a guest or a file", () => {
    const r = fakeRun({
      stamp: night(1),
      kernels: [{ label: "k", identity: "<i>", cells: { w: { kind: "fail", detail: '<script>alert("x")</script>' } } }],
    });
    const html = renderRunPage({
      run: r,
      trends: {},
      artifacts: plain(Object.values(r.result.rows[0]!.artifacts)),
      files: [],
    });
    expect(html).not.toContain("<script>");
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    expect(html).not.toContain("<i>");
  });

  it("shows removed artifacts as such and gzipped ones as .gz links", () => {
    const r = fakeRun({ stamp: night(1), kernels: [{ label: "k", identity: "i", cells: { w: HANG } }] });
    const arts = plain(Object.values(r.result.rows[0]!.artifacts));
    arts["k/console.log"] = { rel: "k/console.log", href: "k/console.log.gz", state: "gz" };
    arts["k/dmesg.txt"] = { rel: "k/dmesg.txt", state: "missing" };
    const html = renderRunPage({ run: r, trends: {}, artifacts: arts, files: [] });
    expect(html).toContain('<a href="k/console.log.gz">console (.gz)</a>');
    expect(html).toContain('<span class="gone" title="k/dmesg.txt: removed by retention">dmesg</span>');
  });
});

describe("trend", () => {
  it("draws a dot per night, coloured by outcome, ringed when missed, linked to that night", () => {
    const svg = trendSvg([
      {
        run: "a",
        startedAt: "2026-11-01T02:00:00.000Z",
        key: "PASS",
        label: "PASS",
        met: true,
        durationMs: 1000,
        href: "../a/report.html",
      },
      { run: "b", startedAt: "2026-11-02T02:00:00.000Z" },
      {
        run: "c",
        startedAt: "2026-11-03T02:00:00.000Z",
        key: "HANG",
        label: "HANG: x",
        met: false,
        durationMs: 10000,
        current: true,
      },
    ]);
    expect(svg.match(/<circle/g)).toHaveLength(3);
    expect(svg).toContain('fill="#2e9d4a"');
    expect(svg).toContain('fill="#d33b3b" stroke="#7f1d1d"');
    expect(svg).toContain('<a href="../a/report.html">');
    expect(svg).toContain("not in this run");
    expect(svg).toContain("<polyline");
  });
});

describe("index", () => {
  it("lists scenarios with the newest run's notable cells and every run", () => {
    const { a, b } = twoNights();
    const cmp = compareRuns(a, b);
    const html = renderIndexPage({
      generatedAt: "now",
      scenarios: [
        {
          name: "nightly",
          comparedWith: a.id,
          notable: cmp.cells.filter((c) => c.cls !== "pass"),
          runs: [
            {
              id: b.id,
              href: `nightly/${night(2)}/report.html`,
              startedAt: b.result.startedAt,
              complete: true,
              met: 0,
              cells: 2,
              kernels: ["stock"],
              counts: cmp.counts,
              artifacts: "kept",
            },
            {
              id: a.id,
              href: `nightly/${night(1)}/report.html`,
              startedAt: a.result.startedAt,
              complete: true,
              met: 2,
              cells: 2,
              kernels: ["stock"],
              artifacts: "compressed",
              pinned: "baseline",
            },
          ],
        },
      ],
    });
    expect(html).toContain(`<a href="nightly/${night(2)}/report.html#c-stock--getdents">stock / getdents</a>`);
    expect(html).toContain(">REGRESSION<");
    expect(html).toContain(">baseline<");
    expect(html).toContain("compressed");
    expect(html).toContain("last 2 runs, oldest left");
  });
});
