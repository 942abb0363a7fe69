// VFIO without hardware: the nested scenario on real guests, and the real-host
// preflight refusing a run on this machine (no IOMMU here) with nothing changed.
import { describe, expect, it } from "vitest";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runScenarioFile } from "../../harness/run/run-file.ts";
import { silentProgress, discardOutput, type Progress } from "../../harness/run/progress.ts";
import { HostError } from "../../harness/util/errors.ts";
import { pendingCleanups } from "../../harness/util/cleanup.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { ownGuestProcesses } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

// Removed afterwards; a failed test's guest consoles are kept (the path is printed).
const tmp = testScratch("vmrig-test-vfio-");
const quiet: Progress = silentProgress;
const sink = discardOutput;

/** The evidence fields vfio/nested records that these tests read (a cell's evidence is untyped). */
interface NestedEvidence extends Record<string, unknown> {
  levelTwoPci: { present: boolean };
  changes: unknown;
  preflight: { devices: unknown[] };
  prediction: unknown;
  qemuDmaWarnings: unknown;
  predictorAgrees: unknown;
  restore: { failed: string[]; restored: string[] };
  qemuExit: number;
}

describe("hardware-free VFIO: level-2 QEMU in a level-1 guest with an emulated IOMMU", () => {
  it("passes a device through; 1023 mappings fit a limit of 1023; at 1022 the predictor says exceeds by 1: QEMU 10.0 warns, Debian's QEMU 11.1 refuses the device", async () => {
    const started = Date.now();
    const { result, runDir, exitCode } = await runScenarioFile(
      path.join(repoRoot, "scenarios", "vfio-mapping-budget.yaml"),
      {
        resultsRoot: path.join(tmp, "results"),
        progress: quiet,
        out: sink,
      },
    );
    const row = result.rows.find((r) => r.label === "debian-6.12")!;
    const cells = Object.fromEntries(row.cells.map((c) => [c.workload, c]));
    const ev = (id: string) => cells[id]!.evidence as NestedEvidence;

    // Passthrough: the device reached level 2 (QEMU read its IDs through VFIO) and came back to its driver.
    expect(cells.passthrough!.outcome).toMatchObject({ kind: "pass" });
    expect(ev("passthrough").levelTwoPci.present).toBe(true);
    expect(ev("passthrough").changes).toEqual([
      { what: "driver of 0000:00:06.0", before: "virtio-pci", after: "vfio-pci" },
    ]);
    expect(ev("passthrough").preflight.devices[0]).toMatchObject({
      iommuGroup: expect.any(Number),
      driver: "virtio-pci",
      vendor: "0x1af4",
      deviceId: "0x1041",
    });

    // Fits exactly, and QEMU stays quiet.
    expect(cells.fits!.outcome).toMatchObject({ kind: "pass" });
    expect(ev("fits").prediction).toMatchObject({ verdict: "fits", predicted: 1023, limit: 1023, headroom: 0 });
    expect(ev("fits").qemuDmaWarnings).toEqual([]);

    // Exceeds by one: QEMU's warning is the outcome, with the numbers the predictor used.
    expect(cells.exceeds!.outcome).toMatchObject({
      kind: "fail",
      detail: expect.stringContaining("QEMU warned 1x, as predicted (exceeds by 1"),
    });
    expect(cells.exceeds!.met).toBe(true);
    expect(ev("exceeds").prediction).toMatchObject({ verdict: "exceeds", exceedsBy: 1 });
    expect(ev("exceeds").qemuDmaWarnings).toEqual([
      expect.objectContaining({ severity: "warning", maxMappings: 1022, maxMemslots: 512 }),
    ]);
    expect(ev("exceeds").predictorAgrees).toEqual({ agrees: true, mismatches: [] });

    // Level 1 was put back every time: driver and limit.
    for (const id of ["passthrough", "fits", "exceeds"]) expect(ev(id).restore.failed).toEqual([]);
    expect(ev("exceeds").restore.restored).toEqual([
      "0000:00:06.0 back to virtio-pci",
      "dma_entry_limit back to 65535",
    ]);

    // The second row: the same kernel, level 2 run by Debian's QEMU 11.1 (provisioned privately).
    const row11 = result.rows.find((r) => r.label === "qemu-11.1")!;
    expect(String(row11.evidence.levelTwoQemu)).toMatch(/^11\.1\./);
    expect(row11.description).toMatch(/level 2: QEMU 11\.1\.\d+ \(Debian's, /);
    const cells11 = Object.fromEntries(row11.cells.map((c) => [c.workload, c]));
    const ev11 = (id: string) => cells11[id]!.evidence as NestedEvidence;
    expect(cells11.passthrough!.outcome).toMatchObject({ kind: "pass" });
    expect(cells11.fits!.outcome).toMatchObject({ kind: "pass" });
    expect(ev11("fits").qemuDmaWarnings).toEqual([]);
    // 10.2 and later refuse at init what 10.0 only warned about: same numbers, QEMU exits.
    expect(cells11.exceeds!.outcome).toMatchObject({
      kind: "fail",
      detail: expect.stringMatching(
        /^QEMU refused the device \(exceeds by 1: .*memory listener initialization failed: .*possibly running out of DMA mappings/,
      ),
    });
    expect(cells11.exceeds!.met).toBe(true);
    expect(ev11("exceeds").qemuDmaWarnings).toEqual([
      expect.objectContaining({ severity: "error", maxMappings: 1022, maxMemslots: 512 }),
    ]);
    expect(ev11("exceeds").predictorAgrees).toEqual({ agrees: true, mismatches: [] });
    expect(ev11("exceeds").qemuExit).toBe(1);
    expect(readFileSync(path.join(runDir, "qemu-11.1", "level2-exceeds.cmdline.txt"), "utf8")).toMatch(
      /^env QEMU_MODULE_DIR=\S+ \S+ld-linux-x86-64\.so\.2 --library-path /,
    );
    for (const id of ["passthrough", "fits", "exceeds"]) expect(ev11(id).restore.failed).toEqual([]);

    expect(exitCode).toBe(0);
    expect(String(row.evidence.levelTwoQemu)).toMatch(/^\d+\.\d+/);
    expect(readFileSync(path.join(runDir, "debian-6.12", "qemu-cmdline.txt"), "utf8")).toContain(
      "intel-iommu,intremap=on,caching-mode=on",
    );
    expect(existsSync(path.join(runDir, "debian-6.12", "level2-exceeds.stderr.txt"))).toBe(true);
    expect(ownGuestProcesses()).toEqual([]);
    expect(pendingCleanups()).toEqual([]);
    console.log(`vfio nested scenario: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }, 900_000);
});

/** What an mdev cell adds to the evidence: the instance it made, and whether it was gone once restored. */
interface MdevEvidence extends NestedEvidence {
  changes: Array<{ what: string; before: string; after: string }>;
  levelTwoPci: { present: boolean; ids?: string; barsMapped: number };
  mdevsAfterRestore: Array<{ sysfsdev: string; present: boolean }>;
}

describe("hardware-free VFIO over an mdev: the mtty sample in a level 1 that vmrig builds", () => {
  it("finds mtty's types; its mtty-2 reaches level 2; 1023 fits; 1022 exceeds; the instance is removed", async () => {
    const started = Date.now();
    const { result, exitCode } = await runScenarioFile(path.join(repoRoot, "scenarios", "vfio-mdev-mtty.yaml"), {
      resultsRoot: path.join(tmp, "results-mdev"),
      progress: quiet,
      out: sink,
    });
    const rowCells = (label: string) => {
      const row = result.rows.find((r) => r.label === label)!;
      const cells = Object.fromEntries(row.cells.map((c) => [c.workload, c]));
      return { row, cells, ev: (id: string) => cells[id]!.evidence as MdevEvidence };
    };
    for (const label of ["mtty-7.3", "mtty-7.3-qemu-11.1"]) {
      const { row, cells, ev } = rowCells(label);
      expect(row.evidence.levelOne).toEqual({ mdevs: ["mtty-2 on mtty"] });
      // Preflight in level 1: the parent and the types it offers, before anything was created.
      expect(ev("passthrough").preflight.devices[0]).toMatchObject({
        device: { kind: "mdev", type: "mtty-2", parent: "mtty" },
        exists: true,
        parentTypes: ["mtty-1", "mtty-2"],
        availableInstances: 12,
      });
      // The instance reached level 2: QEMU read mtty's emulated config space and the firmware mapped its BARs.
      expect(cells.passthrough!.outcome).toMatchObject({
        kind: "pass",
        detail: expect.stringMatching(/^mdev mtty-2 on mtty \[4348:3253\] passed to level 2 as \/sys\/bus\/mdev\//),
      });
      expect(ev("passthrough").levelTwoPci).toMatchObject({ present: true, ids: "4348:3253", barsMapped: 2 });
      const [created] = ev("passthrough").changes;
      expect(created).toMatchObject({ what: "mdev mtty-2 on mtty", before: "absent" });
      // Fits exactly, quietly.
      expect(cells.fits!.outcome).toMatchObject({ kind: "pass" });
      expect(ev("fits").prediction).toMatchObject({ verdict: "fits", predicted: 1023, limit: 1023, headroom: 0 });
      expect(ev("fits").qemuDmaWarnings).toEqual([]);
      // One short: the expected FAIL, with the predictor agreeing with QEMU.
      expect(cells.exceeds!.outcome.kind).toBe("fail");
      expect(cells.exceeds!.met).toBe(true);
      expect(ev("exceeds").prediction).toMatchObject({ verdict: "exceeds", exceedsBy: 1 });
      expect(ev("exceeds").predictorAgrees).toEqual({ agrees: true, mismatches: [] });
      // Every cell removed its instance: the restore says so, and sysfs no longer has it.
      for (const id of ["passthrough", "fits", "exceeds"]) {
        const uuid = ev(id).changes.find((c) => c.what === "mdev mtty-2 on mtty")!.after;
        expect(ev(id).restore).toMatchObject({ failed: [], restored: expect.arrayContaining([`remove mdev ${uuid}`]) });
        expect(ev(id).mdevsAfterRestore).toEqual([{ sysfsdev: `/sys/bus/mdev/devices/${uuid}`, present: false }]);
      }
    }
    // QEMU 10.0 warns and runs on; Debian's QEMU 11.1 refuses the mdev with the same numbers.
    expect(rowCells("mtty-7.3").cells.exceeds!.outcome).toMatchObject({
      detail: expect.stringContaining("QEMU warned 1x, as predicted (exceeds by 1"),
    });
    const q11 = rowCells("mtty-7.3-qemu-11.1");
    expect(String(q11.row.evidence.levelTwoQemu)).toMatch(/^11\.1\./);
    expect(q11.cells.exceeds!.outcome).toMatchObject({
      detail: expect.stringMatching(/^QEMU refused the device \(exceeds by 1: .*possibly running out of DMA mappings/),
    });
    expect(q11.ev("exceeds").qemuExit).toBe(1);

    expect(exitCode).toBe(0);
    expect(ownGuestProcesses()).toEqual([]);
    expect(pendingCleanups()).toEqual([]);
    console.log(`vfio mdev scenario: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }, 1_200_000);
});

describe("VFIO preflight on this host (read-only; this host has no IOMMU)", () => {
  it("refuses a run with a missing device and no IOMMU: exit 2, nothing written, nothing bound", async () => {
    const file = path.join(tmp, "refuse.yaml");
    writeFileSync(
      file,
      `name: vfio-refuse
machine: { memory: 512M, accel: tcg }
kernels: { debian-6.12: { debian: { version: "6.12", flavour: cloud-amd64 } } }
vfio: [{ host: "0000:7f:1f.7" }]
workloads: [{ id: w, shell: { command: "true" } }]
`,
    );
    const lines: string[] = [];
    const err = await runScenarioFile(file, {
      resultsRoot: path.join(tmp, "refused"),
      out: sink,
      progress: { ...quiet, info: (l) => lines.push(l) },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostError);
    expect((err as HostError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(/VFIO preflight refused the run; nothing was bound or changed/);
    expect((err as Error).message).toMatch(/no IOMMU on this host/);
    expect((err as Error).message).toMatch(/PCI device 0000:7f:1f.7 does not exist on this host/);
    expect(lines.join("\n")).toContain("VFIO preflight on this host:");
    expect(existsSync(path.join(tmp, "refused"))).toBe(false);
    expect(pendingCleanups()).toEqual([]);
  }, 300_000);
});
