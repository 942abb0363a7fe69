// What a level-2 QEMU did, judged against the predictor (vfio/nested.ts levelTwoVerdict): the
// stderr QEMU 10.0.2 and Debian's 11.1.3 printed in a level-1 guest (captured), and info pci.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { levelTwoVerdict } from "../../harness/vfio/nested.ts";
import { predictDmaMappingBudget, virtioMemSections } from "../../harness/vfio/mapping-budget.ts";
import type { DevicePreflight } from "../../harness/vfio/preflight.ts";

const M = 1024 * 1024;
const G = 1024 * M;
const fixture = (f: string) => readFileSync(path.join(import.meta.dirname, "..", "fixtures", "vfio", f), "utf8");
// The scenario's level 2: 1G of virtio-mem in 2M blocks under TCG (512 memslots): 1023 mappings.
const budget = (limit: number) =>
  predictDmaMappingBudget({
    sections: virtioMemSections([{ sizeBytes: G, blockBytes: 2 * M }], 4 * G),
    maxMemslots: 512,
    limit,
  });
const nic: DevicePreflight = {
  device: { kind: "pci", host: "0000:00:06.0" },
  label: "0000:00:06.0",
  exists: true,
  vendor: "0x1af4",
  deviceId: "0x1041",
  driver: "virtio-pci",
  iommuGroup: 4,
  members: [],
};
const devices = [{ host: "0000:00:06.0" }];
// `info pci` in level 2 (QEMU 10.0.2): the passed-through NIC under the id vmrig gave it.
const infoPci = `  Bus  0, device   2, function 0:
    Ethernet controller: PCI device 1af4:1041
      PCI subsystem 1af4:1100
      IRQ 0, pin A
      BAR1: 32 bit memory at 0xfebd1000 [0xfebd1fff].
      BAR4: 64 bit prefetchable memory at 0xfe000000 [0xfe003fff].
      id "hostdev0"
`;

describe("judging a level-2 start", () => {
  it("passes the device that reached level 2's firmware when 1023 mappings fit a limit of 1023", () => {
    const v = levelTwoVerdict({ budget: budget(1023), devices: [nic] }, devices, {
      code: 0,
      stdout: infoPci,
      stderr: "vmrig-l2-ready-after-ds=37\n",
    });
    expect(v.outcome).toEqual({
      kind: "pass",
      detail: "0000:00:06.0 [0x1af4:0x1041] passed to level 2 (2 BARs mapped by its firmware); " + budget(1023).summary,
    });
    expect(v.evidence).toMatchObject({
      qemuExit: 0,
      levelTwoStartMs: 3700,
      qemuDmaWarnings: [],
      levelTwoPci: { present: true },
    });
    expect(v.evidence.predictorAgrees).toEqual({ agrees: true, mismatches: [] });
  });

  it("fails with QEMU 10.0's warning when the predictor said 'exceeds', and the VM ran on", () => {
    const v = levelTwoVerdict({ budget: budget(1000), devices: [nic] }, devices, {
      code: 0,
      stdout: infoPci,
      stderr: fixture("qemu-10.0.2-l2-stderr.txt"),
    });
    expect(v.outcome).toMatchObject({
      kind: "fail",
      detail: expect.stringMatching(/^QEMU warned 1x, as predicted \(exceeds by 23/),
    });
    expect(v.outcome).toMatchObject({
      detail: expect.stringContaining("its limit 1000, memslots 512; the VM runs on"),
    });
  });

  it("with mappingWarning: pass, QEMU 10.0's warning is a pass (the VM ran on); 11.1's refusal still fails", () => {
    const warned = levelTwoVerdict(
      { budget: budget(1000), devices: [nic] },
      devices,
      { code: 0, stdout: infoPci, stderr: fixture("qemu-10.0.2-l2-stderr.txt") },
      "pass",
    );
    expect(warned.outcome).toMatchObject({
      kind: "pass",
      detail: expect.stringMatching(/passed to level 2 .*; QEMU warned 1x, .*\(mappingWarning: pass\)$/),
    });
    const stderr =
      "qemu-system-x86_64: -device vfio-pci,host=0000:00:06.0: vfio 0000:00:06.0: failed to setup container " +
      "for group 4: memory listener initialization failed: Region vm0-mem: vfio_ram_discard_register_listener: " +
      "possibly running out of DMA mappings. E.g., try increasing the 'block-size' of virtio-mem devies. " +
      "Maximum possible DMA mappings: 1022, Maximum possible memslots: 512";
    const refused = levelTwoVerdict(
      { budget: budget(1022), devices: [nic] },
      devices,
      { code: 1, stdout: "", stderr },
      "pass",
    );
    expect(refused.outcome).toMatchObject({ kind: "fail", detail: expect.stringMatching(/^QEMU refused the device/) });
  });

  it("fails with QEMU 11.1's refusal, exit 1, and the message that names the mapping budget", () => {
    const stderr = [
      "vmrig-l2-ready-after-ds=40",
      "qemu-system-x86_64: -device vfio-pci,host=0000:00:06.0: vfio 0000:00:06.0: " +
        "failed to setup container for group 4: memory listener initialization failed: " +
        "Region vm0-mem: vfio_ram_discard_register_listener: possibly running out of DMA mappings. " +
        "E.g., try increasing the 'block-size' of virtio-mem devies. " +
        "Maximum possible DMA mappings: 1022, Maximum possible memslots: 512",
    ].join("\n");
    const v = levelTwoVerdict({ budget: budget(1022), devices: [nic] }, devices, { code: 1, stdout: "", stderr });
    expect(v.outcome).toMatchObject({
      kind: "fail",
      detail: expect.stringMatching(/^QEMU refused the device \(exceeds by 1: /),
    });
    expect(v.evidence.qemuExit).toBe(1);
  });

  it("is INFRA when QEMU contradicts the predictor: vmrig's numbers are wrong, not the kernel", () => {
    const v = levelTwoVerdict({ budget: budget(1023), devices: [nic] }, devices, {
      code: 0,
      stdout: infoPci,
      stderr: fixture("qemu-10.0.2-l2-stderr.txt"),
    });
    expect(v.outcome).toMatchObject({
      kind: "infra",
      reason: expect.stringMatching(/^the predictor disagrees with QEMU: /),
    });
  });

  it("fails a quiet start whose level 2 does not show the device, or a QEMU that exited with an error", () => {
    const quiet = { budget: budget(1023), devices: [nic] };
    expect(levelTwoVerdict(quiet, devices, { code: 0, stdout: "", stderr: "" }).outcome).toEqual({
      kind: "fail",
      detail: "level 2 does not show 0000:00:06.0 in info pci",
    });
    const broken = levelTwoVerdict(quiet, devices, {
      code: 1,
      stdout: "",
      stderr: "qemu-system-x86_64: -m 128M: bad\n",
    });
    expect(broken.outcome).toEqual({ kind: "fail", detail: "level-2 QEMU exited 1: qemu-system-x86_64: -m 128M: bad" });
  });
});

// Captured from scenarios/vfio-mdev-mtty.yaml (2026-12-03): an mtty-2 mdev made in a built 7.3 level 1.
describe("judging a level-2 start with an mdev", () => {
  const mtty: DevicePreflight = {
    device: { kind: "mdev", type: "mtty-2", parent: "mtty" },
    label: "mdev mtty-2 on mtty",
    exists: true,
    members: [],
    parentTypes: ["mtty-1", "mtty-2"],
    availableInstances: 12,
  };
  const mdevPlan = [{ sysfsdev: "/sys/bus/mdev/devices/7be2e18c-f331-4eb2-b71f-823d3df515e9" }];

  it("passes the instance that level 2's firmware shows by vmrig's id, with mtty's IDs and two I/O BARs", () => {
    const v = levelTwoVerdict({ budget: budget(1023), devices: [mtty] }, mdevPlan, {
      code: 0,
      stdout: fixture("mtty-l2-info-pci.txt"),
      stderr: "vmrig-l2-ready-after-ds=37\n",
    });
    expect(v.outcome).toEqual({
      kind: "pass",
      detail:
        `mdev mtty-2 on mtty [4348:3253] passed to level 2 as ${mdevPlan[0]!.sysfsdev} ` +
        `(2 BARs mapped by its firmware); ${budget(1023).summary}`,
    });
  });

  it("fails with QEMU 10.0's warning (the VM runs on) and 11.1's refusal, both as predicted", () => {
    const warned = levelTwoVerdict({ budget: budget(1022), devices: [mtty] }, mdevPlan, {
      code: 0,
      stdout: fixture("mtty-l2-info-pci.txt"),
      stderr: fixture("mtty-qemu-10.0.2-l2-exceeds-stderr.txt"),
    });
    expect(warned.outcome).toMatchObject({
      kind: "fail",
      detail: expect.stringMatching(/^QEMU warned 1x, as predicted/),
    });
    expect(warned.evidence.predictorAgrees).toEqual({ agrees: true, mismatches: [] });
    const refused = levelTwoVerdict({ budget: budget(1022), devices: [mtty] }, mdevPlan, {
      code: 1,
      stdout: "",
      stderr: fixture("mtty-qemu-11.1.3-l2-exceeds-stderr.txt"),
    });
    expect(refused.outcome).toMatchObject({
      kind: "fail",
      detail: expect.stringMatching(/^QEMU refused the device \(exceeds by 1: .*failed to setup container for group 0/),
    });
    expect(refused.evidence.qemuDmaWarnings).toEqual([
      expect.objectContaining({ severity: "error", maxMappings: 1022, maxMemslots: 512 }),
    ]);
  });
});
