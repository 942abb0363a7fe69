import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  compareWithQemu,
  confidentialRamSections,
  DEFAULT_DMA_ENTRY_LIMIT,
  KVM_MAX_MEMSLOTS,
  largestFittingVirtioMem,
  maxMemslots,
  parseQemuDmaWarnings,
  predictDmaMappingBudget,
  sectionGranules,
  TCG_MAX_MEMSLOTS,
  virtioMemSections,
  x86DeviceMemoryBase,
} from "../../harness/vfio/mapping-budget.ts";

const K = 1024,
  M = 1024 ** 2,
  G = 1024 ** 3;
const fixture = (f: string) => readFileSync(path.join(import.meta.dirname, "..", "fixtures", "vfio", f), "utf8");

/** QEMU's check, transcribed literally (listener.c), as an oracle for the shapes below. */
function qemuOracle(
  sections: Array<{ start: number; size: number; g: number }>,
  memslots: number,
  limit: number,
): { warns: number; total: number } {
  let warns = 0,
    n = 0,
    c = 0,
    total = 0;
  for (const s of [...sections].sort((a, b) => a.start - b.start)) {
    const start = Math.floor(s.start / s.g) * s.g;
    const end = Math.ceil((s.start + s.size) / s.g) * s.g;
    n += (end - start) / s.g;
    c++;
    total = n + memslots - c;
    if (limit && total > limit) warns++;
  }
  return { warns, total };
}

const one = (size: number, block: number) => virtioMemSections([{ sizeBytes: size, blockBytes: block }], 4 * G);

describe("QEMU's DMA mapping formula", () => {
  it("counts granules of the whole section, aligned outward", () => {
    expect(sectionGranules({ startBytes: 4 * G, sizeBytes: 1 * G, granularityBytes: 2 * M })).toBe(512);
    // Unaligned start and end each cost a partial granule.
    expect(sectionGranules({ startBytes: 4 * G + 1 * M, sizeBytes: 4 * M, granularityBytes: 2 * M })).toBe(3);
    expect(() => sectionGranules({ startBytes: 0, sizeBytes: 4 * M, granularityBytes: 3 * M })).toThrow(/power of two/);
  });

  it("reproduces the reference example: x86 KVM, 2 MiB blocks: 64 GiB passes, 65 GiB fails", () => {
    const m = maxMemslots("kvm", "x86_64");
    expect(m).toBe(32764);
    const ok = predictDmaMappingBudget({
      sections: one(64 * G, 2 * M),
      maxMemslots: m,
      limit: DEFAULT_DMA_ENTRY_LIMIT,
    });
    expect(ok).toMatchObject({ verdict: "fits", predicted: 32768 + 32764 - 1, headroom: 4 });
    const bad = predictDmaMappingBudget({
      sections: one(65 * G, 2 * M),
      maxMemslots: m,
      limit: DEFAULT_DMA_ENTRY_LIMIT,
    });
    expect(bad).toMatchObject({
      verdict: "exceeds",
      predicted: 33280 + 32764 - 1,
      exceedsBy: 66043 - 65535,
      expectedWarnings: 1,
    });
    expect(bad.summary).toBe("exceeds by 508: N 33280 + memslots 32764 - sections 1 = 66043 > limit 65535");
  });

  it("uses 512 memslots without KVM, and each arch's KVM count with it", () => {
    expect(maxMemslots("tcg", "x86_64")).toBe(TCG_MAX_MEMSLOTS);
    expect(maxMemslots("tcg", "aarch64")).toBe(512);
    expect(maxMemslots("kvm", "aarch64")).toBe(KVM_MAX_MEMSLOTS.aarch64);
    // Same guest, two accelerators: TCG leaves room KVM does not.
    const sections = one(100 * G, 2 * M); // 51200 granules
    expect(predictDmaMappingBudget({ sections, maxMemslots: 512, limit: 65535 }).verdict).toBe("fits");
    expect(predictDmaMappingBudget({ sections, maxMemslots: 32764, limit: 65535 }).verdict).toBe("exceeds");
  });

  it("sits exactly on the boundary: predicted == limit fits, one less exceeds by 1", () => {
    const sections = one(1 * G, 2 * M); // 512 + 512 - 1 = 1023 under TCG
    expect(predictDmaMappingBudget({ sections, maxMemslots: 512, limit: 1023 })).toMatchObject({
      verdict: "fits",
      headroom: 0,
    });
    expect(predictDmaMappingBudget({ sections, maxMemslots: 512, limit: 1022 })).toMatchObject({
      verdict: "exceeds",
      exceedsBy: 1,
    });
  });

  it("sums several virtio-mem devices and predicts one warning per registration that is over", () => {
    const devices = [
      { id: "a", sizeBytes: 512 * M, blockBytes: 2 * M }, // 256
      { id: "b", sizeBytes: 1 * G, blockBytes: 1 * M }, // 1024
      { id: "c", sizeBytes: 2 * G, blockBytes: 128 * M }, // 16
    ];
    const sections = virtioMemSections(devices, 4 * G);
    const p = predictDmaMappingBudget({ sections, maxMemslots: 512, limit: 1500 });
    // After a: 256+511 = 767; after b: 1280+510 = 1790 (over); after c: 1296+509 = 1805 (over).
    expect(p.steps.map((s) => s.runningTotal)).toEqual([767, 1790, 1805]);
    expect(p).toMatchObject({
      verdict: "exceeds",
      predicted: 1805,
      exceedsBy: 305,
      expectedWarnings: 2,
      sectionCount: 3,
      granuleMappings: 1296,
    });
  });

  it("places virtio-mem devices aligned to their block size after one another", () => {
    const s = virtioMemSections(
      [
        { sizeBytes: 3 * M, blockBytes: 1 * M },
        { sizeBytes: 256 * M, blockBytes: 256 * M },
      ],
      4 * G,
    );
    expect(s[0]!.startBytes).toBe(4 * G);
    expect(s[1]!.startBytes).toBe(4 * G + 256 * M);
    expect(x86DeviceMemoryBase(128 * M)).toBe(4 * G);
    expect(x86DeviceMemoryBase(2 * G)).toBe(4 * G);
    expect(x86DeviceMemoryBase(3 * G)).toBe(5 * G); // 2 GiB low, 1 GiB above 4 GiB
    expect(x86DeviceMemoryBase(3 * G + 512 * M)).toBe(6 * G);
  });

  it("prices a confidential (guest_memfd) guest at 4 KiB granules: 1 GiB is already past 65535", () => {
    const sections = confidentialRamSections([
      { startBytes: 0, sizeBytes: 2 * G },
      { startBytes: 4 * G, sizeBytes: 6 * G },
    ]);
    const p = predictDmaMappingBudget({ sections, maxMemslots: 32764, limit: 65535 });
    expect(p.granuleMappings).toBe((8 * G) / (4 * K));
    expect(p.verdict).toBe("exceeds");
  });

  it("matches a literal transcription of QEMU's loop on many shapes", () => {
    const blocks = [1 * M, 2 * M, 4 * M, 128 * M, 1 * G];
    let checked = 0;
    for (const block of blocks) {
      for (const count of [1, 2, 3]) {
        for (const memslots of [512, 509, 32764, 32767]) {
          for (const limit of [1000, 1023, 65535, 100_000]) {
            const devices = Array.from({ length: count }, (_, i) => ({
              sizeBytes: block * (1 + ((i * 37 + count * 11) % 300)),
              blockBytes: block,
            }));
            const sections = virtioMemSections(devices, 4 * G);
            const oracle = qemuOracle(
              sections.map((s) => ({ start: s.startBytes, size: s.sizeBytes, g: s.granularityBytes })),
              memslots,
              limit,
            );
            const p = predictDmaMappingBudget({ sections, maxMemslots: memslots, limit });
            expect(p.predicted).toBe(oracle.total);
            expect(p.verdict).toBe(oracle.total > limit ? "exceeds" : "fits");
            expect(p.verdict === "exceeds" ? p.expectedWarnings : 0).toBe(oracle.warns);
            checked++;
          }
        }
      }
    }
    expect(checked).toBe(240);
  });

  it("says unknown without a limit, and fits (no check) without sections or with a zero limit", () => {
    expect(
      predictDmaMappingBudget({
        sections: one(1 * G, 2 * M),
        maxMemslots: 512,
        limit: undefined,
        limitUnknownReason: "vfio_iommu_type1 not loaded",
      }),
    ).toMatchObject({ verdict: "unknown", predicted: 1023 });
    expect(predictDmaMappingBudget({ sections: [], maxMemslots: 512, limit: 10 })).toMatchObject({
      verdict: "fits",
      qemuChecks: false,
    });
    expect(predictDmaMappingBudget({ sections: one(1 * G, 2 * M), maxMemslots: 512, limit: 0 })).toMatchObject({
      verdict: "fits",
      qemuChecks: false,
    });
  });

  it("finds the largest virtio-mem that still fits", () => {
    const size = largestFittingVirtioMem(2 * M, 32764, 65535);
    expect(size).toBe(32772 * 2 * M);
    expect(predictDmaMappingBudget({ sections: one(size, 2 * M), maxMemslots: 32764, limit: 65535 }).headroom).toBe(0);
    expect(
      predictDmaMappingBudget({ sections: one(size + 2 * M, 2 * M), maxMemslots: 32764, limit: 65535 }).exceedsBy,
    ).toBe(1);
  });
});

describe("QEMU's own numbers", () => {
  // Captured from QEMU 10.0.2 (Debian) in a level-1 guest: dma_entry_limit 1000, one virtio-mem
  // device of 1G in 2M blocks, -device vfio-pci,host=0000:00:06.0, TCG.
  const captured = fixture("qemu-10.0.2-l2-stderr.txt");

  it("parses the 10.0 warning", () => {
    const w = parseQemuDmaWarnings(captured);
    expect(w).toEqual([
      {
        severity: "warning",
        function: "vfio_register_ram_discard_listener",
        maxMappings: 1000,
        maxMemslots: 512,
        device: "-device vfio-pci,host=0000:00:06.0",
        line: expect.stringContaining("possibly running out of DMA mappings"),
      },
    ]);
  });

  it("agrees with the prediction for the captured run, and notices disagreements", () => {
    const p = predictDmaMappingBudget({ sections: one(1 * G, 2 * M), maxMemslots: 512, limit: 1000 });
    expect(p).toMatchObject({ verdict: "exceeds", exceedsBy: 23 });
    const w = parseQemuDmaWarnings(captured);
    expect(compareWithQemu(p, w)).toEqual({ agrees: true, mismatches: [] });
    // Same run, but had we predicted "fits" (a bigger limit), the warning contradicts it.
    const fits = predictDmaMappingBudget({ sections: one(1 * G, 2 * M), maxMemslots: 512, limit: 1023 });
    expect(compareWithQemu(fits, w).agrees).toBe(false);
    expect(compareWithQemu(fits, w).mismatches.join()).toMatch(/QEMU's limit is 1000, the prediction used 1023/);
    expect(compareWithQemu(p, []).mismatches).toEqual([expect.stringMatching(/printed no mapping warning/)]);
  });

  it("parses 10.2's error form (error_setg, no 'warning:')", () => {
    const line =
      "qemu-system-x86_64: -device vfio-pci,host=0000:01:00.0: vfio 0000:01:00.0: " +
      "vfio_ram_discard_register_listener: possibly running out of DMA mappings. " +
      "E.g., try increasing the 'block-size' of virtio-mem devies. " +
      "Maximum possible DMA mappings: 65535, Maximum possible memslots: 32764";
    expect(parseQemuDmaWarnings(line)).toMatchObject([
      { severity: "error", function: "vfio_ram_discard_register_listener", maxMappings: 65535, maxMemslots: 32764 },
    ]);
  });

  it("reads what Debian's QEMU 11.1.3 printed when it refused the device in level 2 (captured), and agrees with the prediction", () => {
    const stderr = [
      "vmrig-l2-ready-after-ds=40",
      "qemu-system-x86_64: -device vfio-pci,host=0000:00:06.0: vfio 0000:00:06.0: " +
        "failed to setup container for group 4: memory listener initialization failed: Region vm0-mem: " +
        "vfio_ram_discard_register_listener: possibly running out of DMA mappings. " +
        "E.g., try increasing the 'block-size' of virtio-mem devies. " +
        "Maximum possible DMA mappings: 1022, Maximum possible memslots: 512",
    ].join("\n");
    const w = parseQemuDmaWarnings(stderr);
    expect(w).toEqual([
      expect.objectContaining({
        severity: "error",
        function: "vfio_ram_discard_register_listener",
        maxMappings: 1022,
        maxMemslots: 512,
        device: "-device vfio-pci,host=0000:00:06.0",
      }),
    ]);
    const p = predictDmaMappingBudget({ sections: one(1 * G, 2 * M), maxMemslots: 512, limit: 1022 });
    expect(compareWithQemu(p, w)).toEqual({ agrees: true, mismatches: [] });
  });
});

describe("against every run captured from QEMU 10.0.2 (level-2 QEMU in a level-1 guest, TCG)", () => {
  const captured = JSON.parse(fixture("qemu-10.0.2-cases.json")) as {
    ram: string;
    cases: Array<{
      name: string;
      limit: number;
      virtioMem: Array<{ size: string; blockSize: string }>;
      stderr: string;
    }>;
  };
  const bytes = (s: string) => Number(/^(\d+)/.exec(s)![1]) * ({ M, G } as Record<string, number>)[s.slice(-1)]!;

  it.each(captured.cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const sections = virtioMemSections(
      c.virtioMem.map((d) => ({ sizeBytes: bytes(d.size), blockBytes: bytes(d.blockSize) })),
      x86DeviceMemoryBase(bytes(captured.ram)),
    );
    const p = predictDmaMappingBudget({ sections, maxMemslots: maxMemslots("tcg", "x86_64"), limit: c.limit });
    const warnings = parseQemuDmaWarnings(c.stderr);
    expect(compareWithQemu(p, warnings)).toEqual({ agrees: true, mismatches: [] });
    expect(warnings.length).toBe(p.expectedWarnings);
    expect(warnings.every((w) => w.maxMappings === c.limit && w.maxMemslots === 512)).toBe(true);
  });

  it("covers both sides of the boundary and a double warning", () => {
    const names = captured.cases.map((c) => c.name);
    expect(names).toEqual(
      expect.arrayContaining(["one-1G-2M-limit1022", "one-1G-2M-limit1023", "two-512M-1M-and-1G-2M-limit1000"]),
    );
    expect(
      parseQemuDmaWarnings(captured.cases.find((c) => c.name === "two-512M-1M-and-1G-2M-limit1000")!.stderr),
    ).toHaveLength(2);
  });
});
