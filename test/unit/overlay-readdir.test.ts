// overlayReaddir's outcome logic, SHORT in expectations and reports, and the row platform
// (arch, page size) in the table.
import { describe, expect, it } from "vitest";
import type { CellOutcome, CellResult, Expectation, KernelRowResult, RunResult } from "../../harness/types.ts";
import {
  countOutcome,
  judgeOverlay,
  overlayCommand,
  OVERLAY_MOUNT_FAILED,
  parseLsSummary,
} from "../../harness/workloads/overlay-readdir.ts";
import { workloadKind } from "../../harness/workloads/registry.ts";
import {
  cellLabel,
  expectationMet,
  renderJUnit,
  renderMarkdown,
  renderTerminalTable,
  summarise,
} from "../../harness/report/index.ts";
import { pageSizeLabel } from "../../harness/classify/server-evidence.ts";
import type { ExecResult } from "../../harness/guest/ssh.ts";

type Exited = Extract<ExecResult, { kind: "exited" }>;
const w = {
  id: "overlay-readdir",
  kind: "overlayReaddir" as const,
  share: "share",
  entries: 6000,
  bufferBytes: 32768,
  lister: "getdents" as const,
};
const exited = (code: number, stdout: string, stderr = ""): Exited => ({
  kind: "exited",
  code,
  stdout,
  stderr,
  ms: 10,
});
const probe = (o: Record<string, unknown>) =>
  JSON.stringify({ op: "getdents", bufferSize: 32768, calls: 1, maxReturned: 0, ...o });

describe("countOutcome: a listing that ended without an error", () => {
  it("all entries is PASS, fewer is SHORT (never PASS), more is FAIL", () => {
    expect(countOutcome(6000, 6000)).toEqual({ kind: "pass", detail: "6000 entries" });
    expect(countOutcome(0, 6000)).toEqual({ kind: "short", seen: 0, expected: 6000, detail: "saw 0 of 6000 entries" });
    expect(countOutcome(5999, 6000, "busybox ls: exit 0, 5999 entries")).toMatchObject({
      kind: "short",
      seen: 5999,
      detail: "saw 5999 of 6000 entries; busybox ls: exit 0, 5999 entries",
    });
    expect(countOutcome(6001, 6000).kind).toBe("fail");
  });
});

describe("judgeOverlay", () => {
  it("calls a probe that printed no report INFRA, as every probe kind does, keeping its own evidence", () => {
    const j = judgeOverlay(w, exited(127, "", "sh: vmrig-probe: not found\n"));
    expect(j).toMatchObject({
      kind: "outcome",
      outcome: { kind: "infra", reason: "probe printed no result (exit 127): sh: vmrig-probe: not found" },
      evidence: { stdout: "", stderr: "sh: vmrig-probe: not found\n" },
    });
  });

  it("getdents64 ENOMEM on the merged dir is an errno, with busybox ls's silent empty listing beside it", () => {
    const j = judgeOverlay(
      w,
      exited(
        1,
        probe({ entries: 0, ok: false, errno: "ENOMEM", errnoNum: 12, syscall: "getdents64" }),
        "vmrig-ls: exit=0 lines=0 err=\n",
      ),
    );
    expect(j).toMatchObject({
      kind: "errno",
      errno: "ENOMEM",
      detail: "getdents64 on the merged dir: ENOMEM after 0 entries; busybox ls: exit 0, 0 entries",
    });
    expect(j.evidence).toMatchObject({ hostEntries: 6000, ls: { exit: 0, lines: 0 } });
  });

  it("a short listing without an error is SHORT: saw N of M", () => {
    const j = judgeOverlay(w, exited(0, probe({ entries: 120, ok: true }), "vmrig-ls: exit=0 lines=120 err=\n"));
    expect(j).toMatchObject({ kind: "outcome", outcome: { kind: "short", seen: 120, expected: 6000 } });
    if (j.kind === "outcome") expect(cellLabel(j.outcome)).toBe("SHORT: saw 120 of 6000");
  });

  it("the full listing passes", () => {
    expect(
      judgeOverlay(w, exited(0, probe({ entries: 6000, ok: true }), "vmrig-ls: exit=0 lines=6000 err=\n")),
    ).toMatchObject({
      kind: "outcome",
      outcome: { kind: "pass", detail: "6000 entries; busybox ls: exit 0, 6000 entries" },
    });
  });

  it("an overlay mount that fails is FAIL, or INFRA when the kernel has no overlayfs", () => {
    const failed = judgeOverlay(
      w,
      exited(
        OVERLAY_MOUNT_FAILED,
        "",
        "mount: mounting overlay on /tmp/x/merged failed: Invalid argument\nvmrig-overlay: mount failed\n",
      ),
    );
    expect(failed).toMatchObject({
      kind: "outcome",
      outcome: {
        kind: "fail",
        detail:
          "mount -t overlay over virtio-fs failed: mount: mounting overlay on /tmp/x/merged failed: Invalid argument",
      },
    });
    const none = judgeOverlay(
      w,
      exited(
        OVERLAY_MOUNT_FAILED,
        "",
        "mount: mounting overlay on /tmp/x/merged failed: No such device (unknown filesystem type)\n" +
          "vmrig-overlay: mount failed\n",
      ),
    );
    expect(none).toMatchObject({ kind: "outcome", outcome: { kind: "infra" } });
  });

  it("with `lister: ls` the cell is what busybox ls saw: exit 0 with no entries is SHORT: saw 0 of 6000", () => {
    const ls = { ...w, lister: "ls" as const };
    const j = judgeOverlay(
      ls,
      exited(
        1,
        probe({ entries: 0, ok: false, errno: "ENOMEM", errnoNum: 12, syscall: "getdents64" }),
        "vmrig-ls: exit=0 lines=0 err=\n",
      ),
    );
    expect(j).toMatchObject({
      kind: "outcome",
      outcome: {
        kind: "short",
        seen: 0,
        expected: 6000,
        detail: "saw 0 of 6000 entries; ls exit 0; getdents64: ENOMEM",
      },
    });
    expect(
      judgeOverlay(ls, exited(0, probe({ entries: 6000, ok: true }), "vmrig-ls: exit=0 lines=6000 err=\n")),
    ).toMatchObject({ kind: "outcome", outcome: { kind: "pass" } });
    expect(
      judgeOverlay(ls, exited(0, probe({ entries: 6000, ok: true }), "vmrig-ls: exit=1 lines=10 err=ls: boom\n")),
    ).toMatchObject({
      kind: "outcome",
      outcome: { kind: "fail", detail: "busybox ls exited 1 after 10 entries: ls: boom; getdents64 saw 6000 entries" },
    });
  });

  it("no probe output is INFRA", () => {
    expect(judgeOverlay(w, exited(127, "", "sh: vmrig-probe: not found"))).toMatchObject({
      kind: "outcome",
      outcome: { kind: "infra" },
    });
  });

  it("parses the ls summary line", () => {
    expect(parseLsSummary("junk\nvmrig-ls: exit=1 lines=3 err=ls: x: Cannot allocate memory \n")).toEqual({
      exit: 1,
      lines: 3,
      stderr: "ls: x: Cannot allocate memory",
    });
    expect(parseLsSummary("nothing")).toBeUndefined();
  });

  it("the guest script mounts tmpfs upper/work, overlay over the share's directory, lists with the probe first", () => {
    const cmd = overlayCommand(w, "/mnt/share");
    expect(cmd).toContain(
      "mount -t overlay overlay -o lowerdir=/mnt/share/overlay-readdir," +
        "upperdir=/tmp/vmrig-overlay-overlay-readdir/upper,workdir=/tmp/vmrig-overlay-overlay-readdir/work " +
        "/tmp/vmrig-overlay-overlay-readdir/merged",
    );
    expect(cmd.indexOf("vmrig-probe getdents /tmp/vmrig-overlay-overlay-readdir/merged 32768")).toBeLessThan(
      cmd.indexOf("ls -1"),
    );
    expect(workloadKind(w).guestCommand(w, { guestDir: "/mnt/share" })).toBe(cmd);
  });

  it("a plain readdir that comes up short is SHORT too", async () => {
    const r = { id: "g", kind: "readdir" as const, share: "share", entries: 10, bufferBytes: 4096 };
    const j = await workloadKind(r).judge(r, exited(0, probe({ entries: 7, ok: true })), {}, {});
    expect(j).toMatchObject({ kind: "outcome", outcome: { kind: "short", seen: 7, expected: 10 } });
  });
});

describe("SHORT in expectations and reports", () => {
  const short: CellOutcome = { kind: "short", seen: 0, expected: 6000, detail: "saw 0 of 6000 entries" };

  it("only SHORT (or ANY) expects a short listing; PASS, FAIL and ERRNO do not", () => {
    expect(expectationMet(short, ["SHORT"])).toBe(true);
    expect(expectationMet(short, ["ANY"])).toBe(true);
    expect(expectationMet(short, ["PASS"])).toBe(false);
    expect(expectationMet(short, ["FAIL"])).toBe(false);
    expect(expectationMet(short, ["ERRNO"])).toBe(false);
    expect(expectationMet(short, ["ENOMEM", "SHORT"])).toBe(true);
    expect(expectationMet({ kind: "pass" }, ["SHORT"])).toBe(false);
  });

  const cell = (
    kernel: string,
    workload: string,
    outcome: CellOutcome,
    expected: Expectation,
    notes?: string[],
  ): CellResult => ({
    kernel,
    workload,
    outcome,
    expected,
    met: expectationMet(outcome, expected),
    durationMs: 100,
    evidence: {},
    ...(notes ? { notes } : {}),
  });
  const row = (
    label: string,
    arch: KernelRowResult["arch"],
    pageSize: string,
    cells: CellResult[],
  ): KernelRowResult => ({
    label,
    description: "Debian 7.3.4-1~bpo13+1",
    accel: "tcg",
    arch,
    pageSize,
    bootMs: 9000,
    artifacts: {},
    cells,
    evidence: {},
  });
  const run: RunResult = {
    scenario: "overlay-readdir-pagesize",
    scenarioFile: "scenarios/overlay-readdir-pagesize.yaml",
    startedAt: "2026-11-21T13:00:00Z",
    complete: true,
    host: { hostname: "h" },
    workloads: ["getdents-1M", "overlay-readdir"],
    rows: [
      row("arm64-16k", "aarch64", "16K", [
        cell("arm64-16k", "getdents-1M", { kind: "pass" }, ["PASS"]),
        cell(
          "arm64-16k",
          "overlay-readdir",
          { kind: "errno", errno: "ENOMEM", mountHealthy: true },
          ["ENOMEM"],
          ["virtiofsd refused READDIRPLUS (-12) x 2"],
        ),
      ]),
      row("arm64-64k", "aarch64", "64K", [
        cell("arm64-64k", "getdents-1M", { kind: "pass" }, ["PASS"]),
        cell("arm64-64k", "overlay-readdir", short, ["PASS"]),
      ]),
    ],
  };

  it("the terminal table shows arch and page size per row, SHORT cells, and virtiofsd's refusals as footnotes", () => {
    const t = renderTerminalTable(run, { color: false, width: 200 });
    expect(t).toContain("arm64-16k (aarch64, 16K pages) — Debian 7.3.4-1~bpo13+1");
    // Capped cells cut the description, never the platform that follows the label.
    expect(renderTerminalTable(run, { color: false })).toContain("arm64-64k (aarch64, 64K pages) — Debian 7.3.4-1…");
    expect(t).toContain("-ENOMEM (mount healthy) [1]");
    expect(t).toContain("SHORT: saw 0 of 6000 ✗ expected PASS");
    expect(t).toContain("[1] arm64-16k / overlay-readdir: virtiofsd refused READDIRPLUS (-12) x 2");
  });

  it("Markdown puts the platform under the label and the notes in the cell; JUnit calls SHORT a failure", () => {
    const md = renderMarkdown(run);
    expect(md).toContain("| **arm64-64k**<br>aarch64, 64K pages<br>Debian 7.3.4-1~bpo13+1 |");
    expect(md).toContain("-ENOMEM (mount healthy)<br>virtiofsd refused READDIRPLUS (-12) x 2");
    expect(md).toContain("`SHORT: saw N of M`");
    expect(renderJUnit(run)).toContain('type="SHORT"');
    expect(summarise(run).byKind.short).toBe(1);
  });

  it("page sizes print as the scenario spells them", () => {
    expect(pageSizeLabel(4096)).toBe("4K");
    expect(pageSizeLabel(65536)).toBe("64K");
    expect(pageSizeLabel("unknown")).toBeUndefined();
  });
});
