// The headline: the GetDents table from Debian images alone, through the ACCESS_PLATFORM relay
// with swiotlb=force; and the same kernel without the relay passes (the relay is the lever).
import { describe, expect, it } from "vitest";
import { writeFileSync, readFileSync } from "node:fs";
import path from "node:path";
import { runScenarioFile } from "../../harness/run/run-file.ts";
import { silentProgress, discardOutput, type Progress } from "../../harness/run/progress.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { ownGuestProcesses } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

// Removed afterwards; a failed test's guest consoles are kept (the path is printed).
const tmp = testScratch("vmrig-test-getdents-");
const quiet: Progress = silentProgress;
const sink = discardOutput;

describe("GetDents table from Debian images (scenarios/default.yaml)", () => {
  it("6.18.15 fails getdents 1M with ENOMEM (mount healthy), 7.3 passes; relay and swiotlb evidence recorded", async () => {
    const { result, runDir, exitCode } = await runScenarioFile(path.join(repoRoot, "scenarios/default.yaml"), {
      resultsRoot: tmp,
      progress: quiet,
      out: sink,
    });
    expect(exitCode).toBe(0);
    const [old, fixed] = result.rows;
    expect(old!.cells[0]!.outcome).toMatchObject({ kind: "errno", errno: "ENOMEM", mountHealthy: true });
    expect(String(old!.cells[0]!.evidence.kernelMessages)).toContain("swiotlb buffer is full");
    expect(old!.cells.slice(1).map((c) => c.outcome.kind)).toEqual(["pass", "pass"]);
    expect(fixed!.cells.map((c) => c.outcome.kind)).toEqual(["pass", "pass", "pass"]);
    for (const row of result.rows) {
      // Every boot reached its first command at the first try: a retry here would be vmrig's blindness.
      expect(row.evidence.bootRetry, row.label).toBeUndefined();
      expect(row.bootPhases?.map((p) => p.phase)).toEqual(["daemons", "qemu", "kernel", "init", "sshd", "command"]);
      expect(row.evidence.virtioFsDevices).toEqual([expect.objectContaining({ accessPlatform: true })]);
      expect((row.evidence.swiotlb as { io_tlb_used_hiwater: number }).io_tlb_used_hiwater).toBeGreaterThan(0);
    }
    expect(readFileSync(path.join(runDir, "debian-6.18.15/relay-share.log"), "utf8")).toContain("added 0x200000000");
    expect(ownGuestProcesses()).toEqual([]);
  }, 900_000);

  it("the same 6.18.15 kernel without the relay passes: ACCESS_PLATFORM is what makes virtio-fs bounce", async () => {
    const f = path.join(tmp, "no-relay.yaml");
    writeFileSync(
      f,
      `name: no-relay
machine: { cmdline: ["swiotlb=force"] }
kernels:
  debian-6.18.15: { debian: { version: "6.18.15", flavour: cloud-amd64 } }
shares: [{ tag: share }]
workloads:
  - { id: getdents-1M, readdir: { share: share, entries: 5000, bufferSize: 1M } }
`,
    );
    const { result } = await runScenarioFile(f, { resultsRoot: tmp, progress: quiet, out: sink });
    expect(result.rows[0]!.cells[0]!.outcome.kind).toBe("pass");
    expect(result.rows[0]!.evidence.virtioFsDevices).toEqual([expect.objectContaining({ accessPlatform: false })]);
  }, 600_000);

  it("built from linux-source-7.3: the pre-fix readdir fails at 512K, the seed's clamp makes it pass (scenarios/getdents-swiotlb.yaml)", async () => {
    const { result } = await runScenarioFile(path.join(repoRoot, "scenarios/getdents-swiotlb.yaml"), {
      resultsRoot: tmp,
      progress: quiet,
      out: sink,
      kernels: ["prefix-7.3", "clamped-7.3"],
    });
    const [prefix, clamped] = result.rows;
    expect(prefix!.cells[0]!.outcome).toMatchObject({ kind: "errno", errno: "ENOMEM", mountHealthy: true });
    expect(prefix!.cells[1]!.outcome).toMatchObject({ kind: "errno", errno: "ENOMEM", at: "512K" });
    expect(clamped!.cells.map((c) => c.outcome.kind)).toEqual(["pass", "pass", "pass", "pass"]);
    for (const row of result.rows) {
      // Every boot reached its first command at the first try: a retry here would be vmrig's blindness.
      expect(row.evidence.bootRetry, row.label).toBeUndefined();
      expect(row.evidence.virtioFsDevices).toEqual([expect.objectContaining({ accessPlatform: true })]);
      expect((row.evidence.swiotlb as { io_tlb_used_hiwater: number }).io_tlb_used_hiwater).toBeGreaterThan(0);
    }
    expect(result.rows.every((r) => r.cells.every((c) => c.met))).toBe(true);
  }, 2_400_000);
});
