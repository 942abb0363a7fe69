import { describe, expect, it } from "vitest";
import {
  classifyCell,
  compareRuns,
  compareWithHistory,
  cellHistory,
  flakyOverHistory,
  outcomeKey,
  type CellSide,
} from "../../harness/history/compare.ts";
import { cellInputs, inputChanges } from "../../harness/history/inputs.ts";
import { renderComparison, renderSummary } from "../../harness/history/render.ts";
import { crash, ENOMEM, FAIL, fakeRun, HANG, INFRA, night, PASS } from "../helpers/runs.ts";

const side = (key: string, met: boolean, repeats = [key]): CellSide => ({ run: "r", label: key, key, met, repeats });
const kernelChange = [{ what: "kernel", from: "6.12", to: "7.3" }];

describe("classifyCell", () => {
  it("names regressions, fixes, still-failing and passing cells", () => {
    expect(classifyCell(side("PASS", true), side("FAIL", false), kernelChange).cls).toBe("regression");
    expect(classifyCell(side("FAIL", false), side("PASS", true), kernelChange).cls).toBe("fix");
    expect(classifyCell(side("FAIL", false), side("HANG", false), kernelChange).cls).toBe("still-failing");
    expect(classifyCell(side("FAIL", false), side("FAIL", false), []).cls).toBe("still-failing");
    expect(classifyCell(side("PASS", true), side("PASS", true), []).cls).toBe("pass");
  });

  it("calls an outcome change without any input change flaky, whichever way it went", () => {
    expect(classifyCell(side("PASS", true), side("HANG", false), []).cls).toBe("flaky");
    expect(
      classifyCell(side("HANG", false), side("PASS", true), [{ what: "expected", from: "PASS", to: "HANG" }]).cls,
    ).toBe("flaky");
    expect(classifyCell(side("PASS", true), side("HANG", false), []).note).toMatch(/no input change/);
  });

  it("calls cells whose repeats in one run differ flaky", () => {
    const r = classifyCell(side("PASS", true), side("PASS", false, ["PASS", "HANG", "PASS"]), kernelChange);
    expect(r.cls).toBe("flaky");
    expect(r.note).toMatch(/3 repeats/);
  });

  it("keeps INFRA apart: no verdict now is not a regression; no verdict before is not a fix", () => {
    expect(classifyCell(side("PASS", true), side("INFRA", false), []).cls).toBe("infra");
    expect(classifyCell(side("INFRA", false), side("PASS", true), []).cls).toBe("new");
    expect(classifyCell(undefined, side("FAIL", false), []).cls).toBe("new");
    expect(classifyCell(side("PASS", true), undefined, []).cls).toBe("removed");
  });

  it("tells crashes apart by signature, errnos by name", () => {
    expect(outcomeKey(crash("BUG: a", "sig-a"))).not.toBe(outcomeKey(crash("BUG: a", "sig-b")));
    expect(outcomeKey(ENOMEM)).toBe("-ENOMEM");
    expect(outcomeKey({ kind: "errno", errno: "EIO", mountHealthy: false })).toBe("-EIO wedged");
  });
});

const yaml = (version: string, extra = "") => `name: nightly
machine: { arch: x86_64, memory: 1G, cpus: 1 }
kernels:
  moving: { debian: { version: "${version}", flavour: cloud-amd64 } }
  steady: { debian: { version: "6.12", flavour: cloud-amd64 }, expect: { w1: PASS } }
shares: [{ tag: share }]
workloads:
  - { id: w1, shell: { command: "true", expectExit: 0 } }
  - { id: w2, shell: { command: "uname -r${extra}", expectExit: 0 } }
`;

describe("compareRuns", () => {
  it("names the regression and the fix of a kernel change, with the kernel that changed", () => {
    const a = fakeRun({
      stamp: night(1),
      yaml: yaml("6.12"),
      kernels: [
        {
          label: "moving",
          identity: "deb:6.12.117-1",
          description: "Debian 6.12.117-1",
          cells: { w1: PASS, w2: FAIL },
        },
        { label: "steady", identity: "deb:6.12.117-1", cells: { w1: PASS, w2: FAIL } },
      ],
    });
    const b = fakeRun({
      stamp: night(2),
      yaml: yaml("7.3"),
      kernels: [
        { label: "moving", identity: "deb:7.3.4-1", description: "Debian 7.3.4-1", cells: { w1: FAIL, w2: PASS } },
        { label: "steady", identity: "deb:6.12.117-1", cells: { w1: PASS, w2: FAIL } },
      ],
    });
    const c = compareRuns(a, b);
    const cls = Object.fromEntries(c.cells.map((x) => [`${x.kernel}/${x.workload}`, x.cls]));
    expect(cls).toEqual({
      "moving/w1": "regression",
      "moving/w2": "fix",
      "steady/w1": "pass",
      "steady/w2": "still-failing",
    });
    const reg = c.cells.find((x) => x.cls === "regression")!;
    expect(reg.changes.map((x) => x.what)).toEqual(["kernel", "image", "spec.kernel"]);
    expect(reg.changes[0]).toMatchObject({
      from: expect.stringContaining("Debian 6.12.117-1"),
      to: expect.stringContaining("Debian 7.3.4-1"),
    });
    expect(c.counts).toMatchObject({ regression: 1, fix: 1, "still-failing": 1, pass: 1, flaky: 0 });
    // The other row's spec did not change: only this kernel's entry is part of its inputs.
    expect(c.cells.find((x) => x.kernel === "steady" && x.workload === "w2")!.changes).toEqual([]);
  });

  it("sees a QEMU or virtiofsd upgrade as an input change, and a changed workload only in that workload's cells", () => {
    const a = fakeRun({
      stamp: night(1),
      yaml: yaml("6.12"),
      kernels: [{ label: "moving", identity: "k", cells: { w1: PASS, w2: PASS } }],
    });
    const b = fakeRun({
      stamp: night(2),
      yaml: yaml("6.12", " -a"),
      virtiofsd: "1.14.0",
      kernels: [{ label: "moving", identity: "k", cells: { w1: HANG, w2: FAIL } }],
    });
    const c = compareRuns(a, b);
    const w1 = c.cells.find((x) => x.workload === "w1")!;
    const w2 = c.cells.find((x) => x.workload === "w2")!;
    expect(w1.cls).toBe("regression");
    expect(w1.changes.map((x) => x.what)).toEqual(["virtiofsd"]);
    expect(w1.changes[0]).toMatchObject({ from: "virtiofsd 1.13.2", to: "virtiofsd 1.14.0" });
    expect(w2.changes.map((x) => x.what)).toEqual(["virtiofsd", "spec.workload"]);
  });

  it("sees a row's own QEMU build (qemu:) change as a QEMU change, not the host's", () => {
    const a = fakeRun({
      stamp: night(1),
      yaml: yaml("6.12"),
      kernels: [{ label: "moving", identity: "k", cells: { w1: PASS } }],
    });
    const b = fakeRun({
      stamp: night(2),
      yaml: yaml("6.12"),
      kernels: [{ label: "moving", identity: "k", cells: { w1: FAIL } }],
    });
    a.result.rows[0]!.evidence = {
      ...a.result.rows[0]!.evidence,
      qemu: { version: "11.1.3 (Debian 1:11.1.3+ds-1)", source: "debian sid qemu-system-x86 1:11.1.3+ds-1" },
    };
    b.result.rows[0]!.evidence = {
      ...b.result.rows[0]!.evidence,
      qemu: { version: "11.2.0 (Debian 1:11.2.0+ds-1)", source: "debian sid qemu-system-x86 1:11.2.0+ds-1" },
    };
    const w1 = compareRuns(a, b).cells[0]!;
    expect(w1.cls).toBe("regression");
    expect(w1.changes).toEqual([
      expect.objectContaining({
        what: "qemu",
        from: expect.stringContaining("QEMU 11.1.3"),
        to: expect.stringContaining("QEMU 11.2.0"),
      }),
    ]);
  });

  it("flags a flip with identical inputs as flaky, and lists new and removed cells", () => {
    const a = fakeRun({
      stamp: night(1),
      yaml: yaml("6.12"),
      kernels: [{ label: "moving", identity: "k", cells: { w1: PASS, w2: PASS } }],
    });
    const b = fakeRun({
      stamp: night(2),
      yaml: yaml("6.12"),
      kernels: [
        { label: "moving", identity: "k", cells: { w1: HANG, w2: PASS } },
        { label: "steady", identity: "k", cells: { w1: PASS } },
      ],
    });
    const c = compareRuns(a, b);
    expect(c.cells.map((x) => `${x.kernel}/${x.workload}:${x.cls}`)).toEqual([
      "moving/w1:flaky",
      "moving/w2:pass",
      "steady/w1:new",
    ]);
    expect(compareRuns(b, a).cells.find((x) => x.kernel === "steady")!.cls).toBe("removed");
  });

  it("does not call an INFRA night a regression", () => {
    const a = fakeRun({ stamp: night(1), kernels: [{ label: "k", identity: "k", cells: { w1: PASS } }] });
    const b = fakeRun({ stamp: night(2), kernels: [{ label: "k", identity: "k", cells: { w1: INFRA } }] });
    expect(compareRuns(a, b).cells[0]!.cls).toBe("infra");
  });
});

describe("history", () => {
  const nightRun = (n: number, w1: typeof PASS, identity = "k") =>
    fakeRun({ stamp: night(n), yaml: yaml("6.12"), kernels: [{ label: "moving", identity, cells: { w1 } }] });

  it("a cell that wavers over nights with the same inputs is flaky, even when the last two agree", () => {
    const h = [nightRun(1, PASS), nightRun(2, HANG), nightRun(3, PASS), nightRun(4, PASS)];
    expect(flakyOverHistory(cellHistory(h, "moving", "w1"), 7)).toMatch(
      /2 different outcomes over the last 4 runs.*PASS x3, HANG.* x1/,
    );
    const c = compareWithHistory(h[2]!, h[3]!, h);
    expect(c.cells[0]!.cls).toBe("flaky");
    expect(c.counts).toMatchObject({ flaky: 1, pass: 0 });
    // Out of the window: steady again.
    expect(flakyOverHistory(cellHistory(h, "moving", "w1"), 2)).toBeUndefined();
  });

  it("a change of kernel starts a new history: the old kernel's outcomes do not make the new one flaky", () => {
    const h = [nightRun(1, PASS), nightRun(2, PASS), nightRun(3, HANG, "k2"), nightRun(4, HANG, "k2")];
    expect(compareWithHistory(h[1]!, h[2]!, h.slice(0, 3)).cells[0]!.cls).toBe("regression");
    expect(compareWithHistory(h[2]!, h[3]!, h).cells[0]!.cls).toBe("still-failing");
  });

  it("INFRA nights are not verdicts", () => {
    const h = [nightRun(1, PASS), nightRun(2, INFRA), nightRun(3, PASS)];
    expect(flakyOverHistory(cellHistory(h, "moving", "w1"), 7)).toBeUndefined();
  });

  it("inputs of a cell ignore other rows and other workloads", () => {
    const a = fakeRun({
      stamp: night(1),
      yaml: yaml("6.12"),
      kernels: [{ label: "steady", identity: "k", cells: { w1: PASS } }],
    });
    const b = fakeRun({
      stamp: night(2),
      yaml: yaml("7.3", " -a"),
      kernels: [{ label: "steady", identity: "k", cells: { w1: PASS } }],
    });
    expect(inputChanges(cellInputs(a, a.result.rows[0]!, "w1"), cellInputs(b, b.result.rows[0]!, "w1"))).toEqual([]);
  });
});

describe("rendering a comparison", () => {
  it("lists notable cells by class with what changed, and counts", () => {
    const a = fakeRun({
      stamp: night(1),
      yaml: yaml("6.12"),
      kernels: [{ label: "moving", identity: "deb:6.12", description: "Debian 6.12", cells: { w1: PASS, w2: FAIL } }],
    });
    const b = fakeRun({
      stamp: night(2),
      yaml: yaml("7.3"),
      kernels: [{ label: "moving", identity: "deb:7.3", description: "Debian 7.3", cells: { w1: FAIL, w2: PASS } }],
    });
    const text = renderComparison(compareRuns(a, b));
    expect(text).toContain("1 regression, 1 fix, 0 flaky, 0 still failing");
    expect(text).toMatch(
      /Regressions \(new failures\):\n {2}moving \/ w1: PASS -> FAIL: exit 1, expected 0 ✗\n {6}kernel: Debian 6.12 \[deb:6.12\] -> Debian 7.3 \[deb:7.3\]/,
    );
    expect(text).toMatch(/Fixes \(new passes\):\n {2}moving \/ w2: FAIL: exit 1, expected 0 -> PASS/);
    const md = renderSummary([{ scenario: "nightly", comparison: compareRuns(a, b) }], {
      markdown: true,
      generatedAt: "now",
      against: "the run before it",
    });
    expect(md).toContain("# vmrig nightly summary");
    expect(md).toContain("### Regressions (new failures)");
    expect(md).toContain("- **moving / w1**: `PASS` -> `FAIL: exit 1, expected 0` ✗");
  });
});
