// Issue 6 on real guests: the shipped scenarios scenarios/dnotify-bad-inode.yaml and
// scenarios/virtiofsd-faults.yaml, run as written (labels prefixed so this file's processes
// are told from any other vmrig run on the host). Guest time here: ~6 minutes under TCG.
//
//   dnotify-bad-inode  Debian 7.3 (fixed): every lie refused, PASS with the guest healthy;
//                      linux-source-7.3 with the fix reverted: CRASH "kernel BUG at
//                      fs/notify/dnotify/dnotify.c:N" (the build is cached; a cold one is ~8 min
//                      and is not counted here).
//   virtiofsd-faults   each planned fault gives the cell the scenario documents, and leaves no
//                      QEMU or virtiofsd behind.
import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import { runScenarioFile } from "../../harness/run/run-file.ts";
import { silentProgress, discardOutput, type Progress } from "../../harness/run/progress.ts";
import type { CellResult, RunResult } from "../../harness/types.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { vmrigProcesses } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

// Removed afterwards; a failed test's guest consoles are kept (the path is printed).
const tmp = testScratch("vmrig-test-repro-");

const quiet: Progress = silentProgress;
const sink = discardOutput;
const PREFIX = "i6t-";

/** The shipped scenario with its kernel labels prefixed and its relative paths made absolute. */
function shipped(name: string, labels: string[]): string {
  let text = readFileSync(path.join(repoRoot, "scenarios", `${name}.yaml`), "utf8");
  for (const l of labels) text = text.replace(new RegExp(`^  ${l.replace(/\./g, "\\.")}:`, "m"), `  ${PREFIX}${l}:`);
  text = text.replaceAll("../kernels/", `${path.join(repoRoot, "kernels")}/`);
  const f = path.join(tmp, `${name}.yaml`);
  writeFileSync(f, text);
  return f;
}

const ours = () => vmrigProcesses().filter((p) => p.cmdline.includes(`vmrig-${PREFIX}`));
const cellsOf = (r: RunResult, label: string) =>
  Object.fromEntries(r.rows.find((x) => x.label === PREFIX + label)!.cells.map((c) => [c.workload, c])) as Record<
    string,
    CellResult
  >;

describe("dnotify bad inode (seed 002)", () => {
  const file = shipped("dnotify-bad-inode", ["debian-7.3", "reverted-fix"]);

  it("a current Debian kernel refuses every lie with EIO and stays healthy", async () => {
    const { result } = await runScenarioFile(file, {
      kernels: [`${PREFIX}debian-7.3`],
      resultsRoot: path.join(tmp, "results"),
      progress: quiet,
      out: sink,
    });
    const cells = cellsOf(result, "debian-7.3");
    for (const id of ["mode-flip", "negative-size", "wrong-size", "dnotify"]) {
      expect(cells[id]!.outcome, id).toMatchObject({ kind: "pass" });
      expect(cells[id]!.evidence.liveness, id).toMatchObject({ ok: true });
      expect(cells[id]!.evidence.consoleFindings, id).toEqual([]);
    }
    expect(cells.dnotify!.evidence.report).toMatchObject({
      steps: { dnotify: "ok", fstat: "EIO", close: "ok", umount: "ok" },
    });
    expect(cells["wrong-size"]!.evidence.report).toMatchObject({
      steps: { read: "EIO" },
      replyErrors: expect.arrayContaining([expect.objectContaining({ errno: "EINVAL" })]),
    });
    expect(ours()).toEqual([]);
  }, 600_000);

  it("the kernel with the fix reverted hits the dnotify BUG: CRASH with its signature", async () => {
    const { result, runDir } = await runScenarioFile(file, {
      kernels: [`${PREFIX}reverted-fix`],
      resultsRoot: path.join(tmp, "results"),
      progress: quiet,
      out: sink,
    });
    const cells = cellsOf(result, "reverted-fix");
    // The lies without a dnotify mark are still refused; the bad inode only hurts with the mark.
    expect(cells["mode-flip"]!.outcome).toMatchObject({ kind: "pass" });
    const dnotify = cells.dnotify!;
    expect(dnotify.outcome).toMatchObject({
      kind: "crash",
      title: expect.stringMatching(/^kernel BUG at fs\/notify\/dnotify\/dnotify\.c:\d+$/),
    });
    expect(dnotify.met).toBe(true);
    const o = dnotify.outcome as Extract<CellResult["outcome"], { kind: "crash" }>;
    expect(o.signature).toMatch(/^kernel BUG at fs\/notify\/dnotify\/dnotify\.c:\d+ \| dnotify_free_mark/);
    // results.json keeps title, signature and the raw excerpt.
    const saved = JSON.parse(readFileSync(path.join(runDir, "results.json"), "utf8")) as RunResult;
    const savedCell = saved.rows[0]!.cells.find((c) => c.workload === "dnotify")!;
    expect(savedCell.outcome).toMatchObject({
      kind: "crash",
      title: o.title,
      signature: o.signature,
      excerpt: expect.stringContaining("Call Trace:"),
    });
    expect(ours()).toEqual([]);
  }, 1_800_000);
});

describe("planned virtiofsd and guest faults", () => {
  it("each fault gives its documented cell, with stacks for hangs, and leaves no process behind", async () => {
    const file = shipped("virtiofsd-faults", ["debian-7.3"]);
    const { result, runDir, exitCode } = await runScenarioFile(file, {
      resultsRoot: path.join(tmp, "results"),
      progress: quiet,
      out: sink,
    });
    const row = result.rows[0]!;
    const cells = cellsOf(result, "debian-7.3");

    // SIGSTOP then SIGCONT: the read stalls in D state, the kernel says so, then it completes.
    expect(cells["stop-cont"]!.outcome).toMatchObject({ kind: "pass" });
    const findings = cells["stop-cont"]!.evidence.consoleFindings as Array<{ signature: string }>;
    expect(findings.map((f) => f.signature)).toContain(
      "INFO: task vmrig-probe blocked for more than N seconds | " +
        "__wait_for_common < fuse_direct_IO < generic_file_read_iter < vfs_read < ksys_read",
    );
    expect(cells["stop-cont"]!.evidence.faults).toMatchObject([
      { action: "virtiofsd-stop", firedMs: expect.any(Number) },
      { action: "virtiofsd-cont", firedMs: expect.any(Number) },
    ]);

    // SIGKILL (and restart, which QEMU does not reconnect to): HANG, wedged, stacks kept, VM stopped. Not INFRA.
    for (const id of ["kill", "restart"]) {
      const c = cells[id]!;
      expect(c.outcome, id).toMatchObject({
        kind: "hang",
        wedged: true,
        what: expect.stringMatching(new RegExp(`after planned virtiofsd-${id} share at .*; VM stopped$`)),
      });
      expect(c.met, id).toBe(true);
      expect(c.evidence.blockedTasks, id).toMatchObject({
        via: "ssh",
        tasks: [expect.stringMatching(/^vmrig-probe: .*fuse_direct_IO/)],
      });
      const artifact = Object.entries(row.artifacts).find(([k]) => k.startsWith(`stacks-${id}`))?.[1];
      expect(artifact, id).toBeDefined();
      expect(readFileSync(path.join(runDir, artifact!), "utf8")).toMatch(
        /sysrq: Show Blocked State[\s\S]*fuse_direct_IO/,
      );
    }

    expect(cells["sysrq-crash"]!.outcome).toMatchObject({
      kind: "crash",
      title: "Kernel panic - not syncing: sysrq triggered crash",
      signature:
        "Kernel panic - not syncing: sysrq triggered crash | " +
        "sysrq_handle_crash < __handle_sysrq < write_sysrq_trigger < proc_reg_write < vfs_write",
    });

    // SSH gone mid-workload: the result came through the serial console.
    expect(cells["network-cut"]!.outcome, JSON.stringify(cells["network-cut"]!.outcome)).toMatchObject({
      kind: "pass",
    });
    expect(cells["network-cut"]!.evidence).toMatchObject({
      observedVia: "console",
      exec: { kind: "exited", code: 0, stdout: "listed\n" },
    });

    expect(exitCode).toBe(0);
    expect(existsSync(path.join(runDir, "results.json"))).toBe(true);
    expect(ours()).toEqual([]);
  }, 1_200_000);
});
