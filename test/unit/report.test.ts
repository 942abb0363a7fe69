import { describe, expect, it } from "vitest";
import type { CellOutcome, CellResult, Expectation, KernelRowResult, RunResult } from "../../harness/types.ts";
import {
  cellLabel,
  describeExpectation,
  expectationMet,
  renderJUnit,
  renderMarkdown,
  renderTerminalTable,
  summarise,
} from "../../harness/report/index.ts";

const WORKLOADS = ["getdents", "read-1M", "write-1M", "dnotify"];

function cell(kernel: string, workload: string, outcome: CellOutcome, expected: Expectation): CellResult {
  return {
    kernel,
    workload,
    outcome,
    expected,
    met: expectationMet(outcome, expected),
    durationMs: 1500,
    evidence: {},
  };
}

function row(label: string, description: string, cells: Array<[string, CellOutcome, Expectation]>): KernelRowResult {
  return {
    label,
    description,
    accel: "tcg",
    bootMs: 4200,
    artifacts: { console: `rows/${label}/console.log`, qemuCmdline: `rows/${label}/qemu-cmdline.txt` },
    cells: cells.map(([w, o, e]) => cell(label, w, o, e)),
    evidence: {},
  };
}

const NULL_DEREF = [
  "[    2.259323] BUG: kernel NULL pointer dereference, address: 0000000000000000",
  "[    2.260134] Oops: Oops: 0002 [#1] PREEMPT SMP NOPTI",
  "[    2.268798] ---[ end trace 0000000000000000 ]---",
].join("\n");

/** Every outcome kind, met and not met. */
function sampleRun(complete = true): RunResult {
  const rows = [
    row("stock", "Debian 6.12.95-1~bpo12+1 cloud-amd64, bookworm-backports", [
      ["getdents", { kind: "errno", errno: "EIO", mountHealthy: false, detail: "getdents64: EIO" }, ["PASS"]],
      ["read-1M", { kind: "pass" }, ["PASS"]],
      ["write-1M", { kind: "crash", title: "BUG: kernel NULL pointer dereference", excerpt: NULL_DEREF }, ["PASS"]],
      ["dnotify", { kind: "hang", what: "dnotify did not finish in 60 s", wedged: true }, ["HANG", "CRASH"]],
    ]),
    row("patched", "self-built 6.12.95 + clamp max_pages", [
      ["getdents", { kind: "pass" }, ["PASS"]],
      ["read-1M", { kind: "errno", errno: "ENOMEM", mountHealthy: true }, ["ENOMEM"]],
      ["write-1M", { kind: "fail", detail: "checksum differs at byte 4096" }, ["PASS"]],
      ["dnotify", { kind: "infra", reason: "virtiofsd exited with status 1" }, ["PASS"]],
    ]),
    row("broken", "path: /srv/kernels/bzImage-broken", [
      ["getdents", { kind: "boot-fail", reason: "no shell within 120 s" }, ["PASS"]],
      ["read-1M", { kind: "not-run", reason: "the guest never booted" }, ["PASS"]],
      ...(complete
        ? ([
            ["write-1M", { kind: "not-run", reason: "the guest never booted" }, ["ANY"]],
            ["dnotify", { kind: "boot-fail", reason: "no shell within 120 s" }, ["BOOT-FAIL"]],
          ] as Array<[string, CellOutcome, Expectation]>)
        : []),
    ]),
  ];
  return {
    scenario: "getdents-swiotlb",
    scenarioFile: "/work/main/scenarios/getdents-swiotlb.yaml",
    startedAt: "2026-11-21T13:00:00.000Z",
    finishedAt: "2026-11-21T13:04:10.000Z",
    complete,
    host: { qemu: "10.0.2", virtiofsd: "1.13.2", accel: "tcg", accelNote: "no usable KVM", hostname: "builder" },
    workloads: WORKLOADS,
    rows,
  };
}

describe("cellLabel", () => {
  it("names every outcome kind", () => {
    expect(cellLabel({ kind: "pass" })).toBe("PASS");
    expect(cellLabel({ kind: "errno", errno: "ENOMEM", mountHealthy: true })).toBe("-ENOMEM (mount healthy)");
    expect(cellLabel({ kind: "errno", errno: "EIO", mountHealthy: false })).toBe("-EIO, mount wedged");
    expect(cellLabel({ kind: "errno", errno: "-EIO", mountHealthy: "unknown" })).toBe("-EIO");
    expect(cellLabel({ kind: "fail", detail: "3 entries, expected 4" })).toBe("FAIL: 3 entries, expected 4");
    expect(cellLabel({ kind: "hang", what: "readdir", wedged: false })).toBe("HANG: readdir");
    expect(cellLabel({ kind: "crash", title: "kernel BUG at fs/notify/dnotify/dnotify.c:161", excerpt: "" })).toBe(
      "CRASH: kernel BUG at fs/notify/dnotify/dnotify.c:161",
    );
    expect(cellLabel({ kind: "boot-fail", reason: "no shell" })).toBe("BOOT-FAIL: no shell");
    expect(cellLabel({ kind: "infra", reason: "virtiofsd died" })).toBe("INFRA: virtiofsd died");
    expect(cellLabel({ kind: "not-run", reason: "interrupted" })).toBe("NOT RUN");
  });
});

describe("expectationMet", () => {
  const eio: CellOutcome = { kind: "errno", errno: "EIO", mountHealthy: true };
  const cases: Array<[CellOutcome, Expectation, boolean]> = [
    [{ kind: "pass" }, ["PASS"], true],
    [{ kind: "pass" }, ["ERRNO"], false],
    [eio, ["EIO"], true],
    [eio, ["ENOMEM"], false],
    [eio, ["ERRNO"], true],
    [eio, ["PASS", "EIO"], true],
    [eio, ["FAIL"], false],
    [{ kind: "errno", errno: "EAGAIN", mountHealthy: true }, ["EWOULDBLOCK"], true], // libc alias
    [{ kind: "fail", detail: "x" }, ["FAIL"], true],
    [{ kind: "hang", what: "x", wedged: true }, ["HANG"], true],
    [{ kind: "crash", title: "x", excerpt: "" }, ["HANG", "CRASH"], true],
    [{ kind: "crash", title: "x", excerpt: "" }, ["ERRNO"], false],
    [{ kind: "boot-fail", reason: "x" }, ["BOOT-FAIL"], true],
    [{ kind: "boot-fail", reason: "x" }, ["ANY"], true],
    [{ kind: "infra", reason: "x" }, ["INFRA"], true],
    [{ kind: "infra", reason: "x" }, ["ANY"], false], // says nothing about the kernel
    [{ kind: "not-run", reason: "x" }, ["ANY"], false],
    [{ kind: "pass" }, [], false],
  ];
  it.each(cases)("%j vs %j -> %s", (o, e, met) => expect(expectationMet(o, e)).toBe(met));

  it("describes expectations the way cells print errnos", () => {
    expect(describeExpectation(["PASS", "ENOMEM"])).toBe("PASS or -ENOMEM");
    expect(describeExpectation(["ERRNO"])).toBe("an errno");
    expect(describeExpectation(["HANG", "CRASH"])).toBe("HANG or CRASH");
  });
});

describe("summarise", () => {
  it("counts cells and fails the run when any cell missed", () => {
    const s = summarise(sampleRun());
    expect(s).toMatchObject({ cells: 12, met: 5, notMet: 7, missing: 0, complete: true, exitCode: 1 });
    expect(s.byKind).toEqual({
      pass: 2,
      errno: 2,
      fail: 1,
      skip: 0,
      short: 0,
      hang: 1,
      crash: 1,
      "boot-fail": 2,
      infra: 1,
      "not-run": 2,
    });
  });

  it("exits 0 only when complete and all met", () => {
    const run = sampleRun();
    const good: RunResult = {
      ...run,
      rows: [
        row("ok", "", [
          ["getdents", { kind: "pass" }, ["PASS"]],
          ["read-1M", { kind: "pass" }, ["PASS"]],
          ["write-1M", { kind: "pass" }, ["ANY"]],
          ["dnotify", { kind: "hang", what: "x", wedged: false }, ["HANG"]],
        ]),
      ],
    };
    expect(summarise(good).exitCode).toBe(0);
    expect(summarise({ ...good, complete: false }).exitCode).toBe(1);
    const partial = { ...good, rows: [{ ...good.rows[0]!, cells: good.rows[0]!.cells.slice(0, 2) }] };
    expect(summarise(partial)).toMatchObject({ missing: 2, exitCode: 1 });
  });
});

describe("renderTerminalTable", () => {
  it("prints a row per kernel and marks missed expectations", () => {
    expect("\n" + renderTerminalTable(sampleRun(), { color: false, width: 200 })).toMatchInlineSnapshot(`
      "
      Guest kernel                              │ getdents                                  │ read-1M                 │ write-1M                                  │ dnotify
      ──────────────────────────────────────────┼───────────────────────────────────────────┼─────────────────────────┼───────────────────────────────────────────┼───────────────────────────────────────────
      stock — Debian 6.12.95-1~bpo12+1 cloud-a… │ -EIO, mount wedged ✗ expected PASS        │ PASS                    │ CRASH: BUG: kernel NULL … ✗ expected PASS │ HANG: dnotify did not finish in 60 s
      patched — self-built 6.12.95 + clamp max… │ PASS                                      │ -ENOMEM (mount healthy) │ FAIL: checksum differs a… ✗ expected PASS │ INFRA: virtiofsd exited w… ✗ expected PASS
      broken — path: /srv/kernels/bzImage-brok… │ BOOT-FAIL: no shell with… ✗ expected PASS │ NOT RUN ✗ expected PASS │ NOT RUN ✗ expected ANY                    │ BOOT-FAIL: no shell within 120 s

      5 of 12 cells met their expectation"
    `);
  });

  it("fits a narrow terminal, keeping the marks", () => {
    const out = renderTerminalTable(sampleRun(), { color: false, width: 100 });
    expect("\n" + out).toMatchInlineSnapshot(`
      "
      Guest kernel      │ getdents          │ read-1M            │ write-1M           │ dnotify
      ──────────────────┼───────────────────┼────────────────────┼────────────────────┼───────────────────
      stock — Debian 6… │ -EIO, mount we… ✗ │ PASS               │ CRASH: BUG: ker… ✗ │ HANG: dnotify did…
      patched — self-b… │ PASS              │ -ENOMEM (mount he… │ FAIL: checksum … ✗ │ INFRA: virtiofs… ✗
      broken — path: /… │ BOOT-FAIL: no … ✗ │ NOT RUN ✗ exp PASS │ NOT RUN ✗ exp ANY  │ BOOT-FAIL: no she…

      5 of 12 cells met their expectation"
    `);
    for (const l of out.split("\n")) expect([...l].length).toBeLessThanOrEqual(100);
  });

  it("colours only when asked, and the colours add nothing else", () => {
    const plain = renderTerminalTable(sampleRun(), { color: false, width: 200 });
    const coloured = renderTerminalTable(sampleRun(), { color: true, width: 200 });
    expect(plain).not.toContain("\x1b[");
    expect(coloured).toContain("\x1b[32mPASS\x1b[0m");
    expect(coloured).toContain("\x1b[1;31m✗ expected PASS\x1b[0m");
    // eslint-disable-next-line no-control-regex
    expect(coloured.replace(/\x1b\[[\d;]*m/g, "")).toBe(plain);
  });

  it("says when the run is incomplete and shows the missing cells as NOT RUN", () => {
    const out = renderTerminalTable(sampleRun(false), { color: false });
    // One NOT RUN cell and two the run never reached.
    expect(out).toContain("run INCOMPLETE (3 not run)");
    expect(out.split("\n").find((l) => l.startsWith("broken"))).toMatch(/NOT RUN\s+│ NOT RUN$/);
  });
});

describe("renderMarkdown", () => {
  it("has the header, the table, a legend and the crash excerpts", () => {
    expect(renderMarkdown(sampleRun())).toMatchInlineSnapshot(`
      "# vmrig: getdents-swiotlb

      - Scenario: \`/work/main/scenarios/getdents-swiotlb.yaml\`
      - Host: QEMU 10.0.2, virtiofsd 1.13.2, accel tcg (no usable KVM), host builder
      - Started 2026-11-21T13:00:00.000Z, finished 2026-11-21T13:04:10.000Z
      - Run: complete
      - Result: 5 of 12 cells met their expectation (**not all met**)

      | Guest kernel | getdents | read-1M | write-1M | dnotify |
      |---|---|---|---|---|
      | **stock**<br>Debian 6.12.95-1~bpo12+1 cloud-amd64, bookworm-backports | -EIO, mount wedged ✗ expected PASS | PASS | CRASH: BUG: kernel NULL pointer dereference ✗ expected PASS | HANG: dnotify did not finish in 60 s |
      | **patched**<br>self-built 6.12.95 + clamp max_pages | PASS | -ENOMEM (mount healthy) | FAIL: checksum differs at byte 4096 ✗ expected PASS | INFRA: virtiofsd exited with status 1 ✗ expected PASS |
      | **broken**<br>path: /srv/kernels/bzImage-broken | BOOT-FAIL: no shell within 120 s ✗ expected PASS | NOT RUN ✗ expected PASS | NOT RUN ✗ expected ANY | BOOT-FAIL: no shell within 120 s |

      Legend:

      - \`PASS\`: the workload did what it should
      - \`-EXXX\`: the syscall failed with that errno; *mount healthy* / *mount wedged* says whether the share still answered afterwards
      - \`FAIL\`: it ran, but the result was wrong (count, checksum, exit code)
      - \`SHORT: saw N of M\`: a listing ended without any error but saw fewer entries than the host directory holds (silent loss)
      - \`HANG\`: it did not finish in time (what hung)
      - \`CRASH\`: the kernel oopsed, BUG()ed or panicked (first line of the report)
      - \`BOOT-FAIL\`: the kernel never reached the guest's shell
      - \`INFRA\`: vmrig or the host failed, which says nothing about the kernel
      - \`SKIP\`: a KTAP test case said it does not apply to this kernel (its reason)
      - \`NOT RUN\`: the run stopped before this cell
      - \`NOT REPORTED\`: the workload ran but its KTAP output has no such test case
      - ✗ expected X: the cell did not meet the scenario's expectation

      ## Crashes

      ### stock / write-1M: BUG: kernel NULL pointer dereference (console: \`rows/stock/console.log\`)

      \`\`\`
      [    2.259323] BUG: kernel NULL pointer dereference, address: 0000000000000000
      [    2.260134] Oops: Oops: 0002 [#1] PREEMPT SMP NOPTI
      [    2.268798] ---[ end trace 0000000000000000 ]---
      \`\`\`
      "
    `);
  });

  it("escapes pipes in cells", () => {
    const run = sampleRun();
    run.rows[0]!.cells[0]!.outcome = { kind: "fail", detail: "ls | wc -l said 3" };
    expect(renderMarkdown(run)).toContain("FAIL: ls \\| wc -l said 3");
  });
});

/** Just enough XML checking: every tag closes in order, attributes are quoted, entities known. */
function assertWellFormed(xml: string): void {
  const body = xml.replace(/^<\?xml[^>]*\?>\s*/, "");
  const stack: string[] = [];
  const tag = /<(\/?)([\w:-]+)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<!\[CDATA\[[\s\S]*?\]\]>/g;
  let last = 0;
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    const text = body.slice(last, m.index);
    expect(text).not.toMatch(/<|&(?!(?:amp|lt|gt|quot|apos|#\d+);)/);
    last = tag.lastIndex;
    if (m[0].startsWith("<![CDATA[")) continue;
    if (m[1]) expect(stack.pop()).toBe(m[2]);
    else if (!m[4]) stack.push(m[2]!);
  }
  expect(body.slice(last).trim()).toBe("");
  expect(stack).toEqual([]);
}

const count = (xml: string, re: RegExp) => (xml.match(re) ?? []).length;

describe("renderJUnit", () => {
  const xml = renderJUnit(sampleRun());

  it("is well-formed XML", () => assertWellFormed(xml));

  it("has a testsuite per kernel and a testcase per cell", () => {
    expect(count(xml, /<testsuite\b/g)).toBe(3);
    expect(count(xml, /<testcase\b/g)).toBe(12);
  });

  it("reports infra and boot failures as errors, missed expectations as failures", () => {
    // stock: EIO, crash; patched: fail  -> failures. patched: infra; broken: boot-fail -> errors.
    expect(count(xml, /<failure\b/g)).toBe(3);
    expect(count(xml, /<error\b/g)).toBe(2);
    expect(count(xml, /<skipped\b/g)).toBe(2);
    expect(xml).toMatch(
      /<testsuites[^>]*tests="12"[^>]*failures="3"[^>]*errors="2"[^>]*skipped="2"|<testsuites[^>]*failures="3"/,
    );
    expect(xml).toContain('message="-EIO, mount wedged (expected PASS)"');
    expect(xml).toContain('message="INFRA: virtiofsd exited with status 1 (expected PASS)"');
    expect(xml).toContain('type="BOOT-FAIL"');
  });

  it("points at the artifacts and carries the crash excerpt", () => {
    expect(xml).toContain("console: rows/stock/console.log");
    expect(xml).toContain("BUG: kernel NULL pointer dereference, address: 0000000000000000");
  });

  it("attaches each cell's artifacts for Jenkins and GitLab, a stack dump only to its own workload", () => {
    const run = sampleRun();
    run.rows[0]!.artifacts["stacks-getdents"] = "rows/stock/stacks-getdents.txt";
    const attached = renderJUnit(run, { attachmentBase: "results/s/2026-11-21T00-00-00Z" });
    assertWellFormed(attached);
    expect(attached).toContain("[[ATTACHMENT|results/s/2026-11-21T00-00-00Z/rows/stock/console.log]]");
    expect(count(attached, /stacks-getdents\.txt\]\]/g)).toBe(1);
    expect(xml).not.toContain("[[ATTACHMENT|");
  });

  it("skips the cells an interrupted run never reached", () => {
    const partial = renderJUnit(sampleRun(false));
    assertWellFormed(partial);
    expect(count(partial, /<testcase\b/g)).toBe(12);
    expect(partial).toContain("not run: the run stopped before this cell");
  });
});
