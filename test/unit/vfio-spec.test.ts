import path from "node:path";
import { describe, expect, it } from "vitest";
import { emitJsonSchema } from "../../harness/scenario/json-schema.ts";
import { parseScenario } from "../../harness/scenario/load.ts";
import { NESTED_DEVICE_BDF, normaliseBdf } from "../../harness/scenario/vfio.ts";
import { SpecError } from "../../harness/util/errors.ts";

const M = 1024 ** 2,
  G = 1024 ** 3;
const head = `name: t
kernels:
  k: { debian: { version: "6.12", flavour: cloud-amd64 } }
workloads:
  - { id: w, shell: { command: "true" } }
`;
const load = (extra: string) => parseScenario(head + extra, "/s/t.yaml");
function errors(extra: string): string[] {
  try {
    load(extra);
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    return (e as SpecError).message.split("\n");
  }
  throw new Error("expected a SpecError");
}

describe("memory: and vfio: in a scenario", () => {
  it("loads devices, virtio-mem, the backend and the limit", () => {
    const s = load(`memory:
  backend: file:vm.ram
  virtioMem:
    - { size: 1G, blockSize: 2M, requested: 256M }
    - { size: 512M }
vfio:
  devices:
    - { host: "01:00.0" }
    - { host: "0000:3B:00.1" }
    - { mdev: mtty-2, parent: mtty }
  dmaEntryLimit: 1000
`);
    expect(s.memory).toEqual({
      backend: { kind: "file", path: path.resolve("/s/vm.ram") },
      virtioMem: [
        { id: "vm0", sizeBytes: 1 * G, blockBytes: 2 * M, requestedBytes: 256 * M },
        { id: "vm1", sizeBytes: 512 * M, blockBytes: 2 * M, requestedBytes: 0 },
      ],
    });
    expect(s.vfio).toEqual({
      devices: [
        { kind: "pci", host: "0000:01:00.0" },
        { kind: "pci", host: "0000:3b:00.1" },
        { kind: "mdev", type: "mtty-2", parent: "mtty" },
      ],
      dmaEntryLimit: 1000,
    });
  });

  it("takes a list as vfio's shorthand and one mapping as a one-device virtioMem", () => {
    const s = load(`vfio: [{ host: "0000:01:00.0" }]\nmemory: { backend: memfd, virtioMem: { size: 2G } }\n`);
    expect(s.vfio).toEqual({ devices: [{ kind: "pci", host: "0000:01:00.0" }] });
    expect(s.memory).toEqual({
      backend: { kind: "memfd" },
      virtioMem: [{ id: "vm0", sizeBytes: 2 * G, blockBytes: 2 * M, requestedBytes: 0 }],
    });
  });

  it("defaults a nested scenario's device to the level-1 guest's emulated one", () => {
    const s = parseScenario(
      `name: t
kernels: { k: { debian: { version: "6.12", flavour: cloud-amd64 } } }
vfio: { nested: { device: e1000e }, dmaEntryLimit: 1000 }
workloads:
  - { id: fits, nestedQemu: { dmaEntryLimit: 1023 } }
  - { id: exceeds, nestedQemu: { runSeconds: 1 } }
`,
      "/s/t.yaml",
    );
    expect(s.vfio).toEqual({
      devices: [{ kind: "pci", host: NESTED_DEVICE_BDF }],
      dmaEntryLimit: 1000,
      nested: { device: "e1000e", memoryBytes: 128 * M },
    });
    expect(s.workloads).toEqual([
      { id: "fits", kind: "nestedQemu", dmaEntryLimit: 1023, runSeconds: 3, mappingWarning: "fail" },
      { id: "exceeds", kind: "nestedQemu", runSeconds: 1, mappingWarning: "fail" },
    ]);
  });

  it("reports every bad field at its line", () => {
    const lines = errors(`memory:
  backend: tmpfs
  virtioMem:
    - { size: 1G, blockSize: 3M }
    - { size: 1000M, blockSize: 128M, requested: 2G }
    - { size: 1G, blockSize: 512K }
vfio:
  devices:
    - { host: "1:0.0" }
    - { mdev: mtty-2 }
    - { pci: "0000:01:00.0" }
  dmaEntryLimit: 0
  nested: { device: rtl8139 }
`);
    expect(lines).toEqual([
      `/s/t.yaml:7:12 memory.backend: expected memfd or file:<path>, got "tmpfs"`,
      "/s/t.yaml:9:30 memory.virtioMem[0].blockSize: " +
        "must be a power of two of at least 1M (QEMU's virtio-mem block-size), got 3M",
      `/s/t.yaml:10:15 memory.virtioMem[1].size: must be a non-zero multiple of blockSize (128M), got 1000M`,
      "/s/t.yaml:10:50 memory.virtioMem[1].requested: " +
        "must be a multiple of blockSize (128M) no larger than size (1000M), got 2G",
      "/s/t.yaml:11:30 memory.virtioMem[2].blockSize: " +
        "must be a power of two of at least 1M (QEMU's virtio-mem block-size), got 512K",
      "/s/t.yaml:14:15 vfio.devices[0].host: " +
        'expected a PCI address like "0000:01:00.0" (domain:bus:device.function), got "1:0.0"',
      "/s/t.yaml:15:7 vfio.devices[1]: an mdev needs both mdev (its type) and parent, " +
        'as in { host: "0000:01:00.0" } or { mdev: <type>, parent: <device> }',
      `/s/t.yaml:16:7 vfio.devices[2]: expected { host: "0000:01:00.0" } or { mdev: <type>, parent: <device> }`,
      `/s/t.yaml:16:9 vfio.devices[2].pci: unknown key (known: host, force, mdev, parent)`,
      `/s/t.yaml:17:18 vfio.dmaEntryLimit: must be at least 1, got 0`,
      `/s/t.yaml:18:21 vfio.nested.device: expected one of virtio-net-pci, e1000e, e1000, got "rtl8139"`,
    ]);
  });

  it("relates nested devices and nestedQemu workloads to vfio.nested", () => {
    const lines = errors(`vfio: { nested: {}, devices: [{ host: "0000:01:00.0" }] }
`);
    expect(lines).toEqual([
      "/s/t.yaml:6:39 vfio.devices[0].host: " +
        `with vfio.nested the device is the level-1 guest's emulated one at "0000:00:06.0", got "0000:01:00.0"`,
    ]);
    const noNested = errors(`  - { id: l2, nestedQemu: {} }\n`);
    expect(noNested).toEqual([
      `/s/t.yaml:6:15 workloads[1].nestedQemu: needs vfio.nested (the level-1 guest that runs the level-2 QEMU)`,
    ]);
  });

  it("normalises PCI addresses", () => {
    expect(normaliseBdf("01:00.0")).toBe("0000:01:00.0");
    expect(normaliseBdf("0001:AF:1f.7")).toBe("0001:af:1f.7");
    expect(normaliseBdf("00:20.0")).toBeUndefined();
    expect(normaliseBdf("00:01.8")).toBeUndefined();
  });

  it("appears in the JSON Schema editors use", () => {
    const props = (emitJsonSchema() as { properties: Record<string, unknown> }).properties;
    expect(Object.keys(props)).toEqual(expect.arrayContaining(["memory", "vfio"]));
  });
});

describe("the VFIO scenarios in scenarios/", () => {
  it("vfio-passthrough.example.yaml (real host, not run in CI) is valid and predicts 'exceeds' on purpose", async () => {
    const { loadScenario } = await import("../../harness/scenario/load.ts");
    const { predictDmaMappingBudget, virtioMemSections, x86DeviceMemoryBase, maxMemslots } =
      await import("../../harness/vfio/mapping-budget.ts");
    const s = await loadScenario(
      path.join(import.meta.dirname, "..", "..", "scenarios", "vfio-passthrough.example.yaml"),
    );
    expect(s.vfio).toEqual({ devices: [{ kind: "pci", host: "0000:03:00.0" }], dmaEntryLimit: 60000 });
    expect(s.memory?.backend).toEqual({ kind: "memfd" });
    const p = predictDmaMappingBudget({
      sections: virtioMemSections(
        s.memory!.virtioMem.map((v) => ({ sizeBytes: v.sizeBytes, blockBytes: v.blockBytes })),
        x86DeviceMemoryBase(s.machine.memoryBytes),
      ),
      maxMemslots: maxMemslots("kvm", "x86_64"),
      limit: s.vfio!.dmaEntryLimit,
    });
    expect(p).toMatchObject({ verdict: "exceeds", exceedsBy: 65531 - 60000 });
    expect(
      predictDmaMappingBudget({
        ...{ sections: virtioMemSections([{ sizeBytes: 64 * G, blockBytes: 2 * M }], 6 * G) },
        maxMemslots: 32764,
        limit: 65535,
      }).verdict,
    ).toBe("fits");
  });

  it("vfio-mapping-budget.yaml (hardware-free, CI) sits on the boundary: 1023 fits, 1022 exceeds by 1", async () => {
    const { loadScenario } = await import("../../harness/scenario/load.ts");
    const s = await loadScenario(path.join(import.meta.dirname, "..", "..", "scenarios", "vfio-mapping-budget.yaml"));
    expect(s.vfio?.nested).toEqual({ device: "virtio-net-pci", memoryBytes: 128 * M });
    expect(s.workloads.map((w) => [w.id, w.kind, "dmaEntryLimit" in w ? w.dmaEntryLimit : undefined])).toEqual([
      ["passthrough", "nestedQemu", undefined],
      ["fits", "nestedQemu", 1023],
      ["exceeds", "nestedQemu", 1022],
    ]);
    expect(s.kernels[0]!.expect).toEqual({ exceeds: ["FAIL"] });
  });

  it("vfio-mdev-mtty.yaml (hardware-free, CI): an mtty-2 mdev on the same boundary, level 1 built", async () => {
    const { loadScenario } = await import("../../harness/scenario/load.ts");
    const s = await loadScenario(path.join(import.meta.dirname, "..", "..", "scenarios", "vfio-mdev-mtty.yaml"));
    expect(s.vfio).toEqual({
      devices: [{ kind: "mdev", type: "mtty-2", parent: "mtty" }],
      nested: { device: "virtio-net-pci", memoryBytes: 128 * M },
    });
    expect(s.workloads.map((w) => [w.id, w.kind, "dmaEntryLimit" in w ? w.dmaEntryLimit : undefined])).toEqual([
      ["passthrough", "nestedQemu", undefined],
      ["fits", "nestedQemu", 1023],
      ["exceeds", "nestedQemu", 1022],
    ]);
    // Both rows run the same built kernel; the second row's level 2 is Debian's QEMU 11.1.
    const fragments = s.kernels.map((k) =>
      k.source.kind === "build" ? k.source.spec.fragments.map((f) => path.basename(f)) : [],
    );
    expect(fragments).toEqual([
      ["guest-x86_64.config", "vfio-mtty.config"],
      ["guest-x86_64.config", "vfio-mtty.config"],
    ]);
    expect(s.kernels.map((k) => k.qemu)).toEqual([
      undefined,
      { kind: "debian", version: "11.1", suite: "trixie-backports" },
    ]);
    for (const k of s.kernels) expect(k.expect).toEqual({ exceeds: ["FAIL"] });
  });
});
