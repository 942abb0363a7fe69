// Pure: how many VFIO type1 DMA mappings a guest can need, by QEMU's own rule, against the
// container's limit. QEMU (hw/vfio/listener.c, vfio_ram_discard_register_listener; earlier
// hw/vfio/common.c, vfio_register_ram_discard_listener) runs this check each time it registers a
// RamDiscardManager section (a virtio-mem device's memory; guest_memfd for confidential guests):
//
//   N_i = (ROUND_UP(start_i + size_i, g_i) - ALIGN_DOWN(start_i, g_i)) / g_i   per section so far
//   N = sum N_i, C = number of such sections, M = max memslots (512 under TCG, KVM_CAP_NR_MEMSLOTS
//   under KVM): every other section is assumed to cost one mapping, and there can be M of them.
//   warn (QEMU <= 10.1) / fail (10.2+, ceb59c1cc61d) when limit != 0 && N + M - C > limit.
//
// The limit QEMU uses is the container's VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL (a fresh container has
// the module's dma_entry_limit available), or 65535 when the kernel does not report it.
import type { AccelName, Arch } from "../types.ts";
import { ARCHES, archRecord } from "../arch.ts";
import { formatSize } from "../util/size.ts";

/** vfio_iommu_type1's default `dma_entry_limit`, and what QEMU assumes without DMA_AVAIL. */
export const DEFAULT_DMA_ENTRY_LIMIT = 65535;
/** QEMU's max_memslots when KVM is not in use. */
export const TCG_MAX_MEMSLOTS = 512;

/**
 * KVM_CAP_NR_MEMSLOTS on current kernels (5.13+ raised it): KVM_MEM_SLOTS_NUM (SHRT_MAX) less the
 * arch's internal slots (3 on x86). Older kernels report 509 (x86) and 512 (arm64).
 */
export const KVM_MAX_MEMSLOTS = Object.fromEntries(ARCHES.map((a) => [a, archRecord(a).kvmMaxMemslots])) as Record<
  Arch,
  number
>;

/** M in QEMU's formula. */
export function maxMemslots(accel: AccelName, arch: Arch): number {
  return accel === "kvm" ? KVM_MAX_MEMSLOTS[arch] : TCG_MAX_MEMSLOTS;
}

/** One RamDiscardManager section as QEMU sees it in the container's address space. */
export interface DiscardSection {
  /** For messages ("virtio-mem vm0"). */
  name?: string;
  /** Guest-physical address (offset_within_address_space). */
  startBytes: number;
  /** The whole section: a virtio-mem device's full `size`, not its requested size. */
  sizeBytes: number;
  /** The RamDiscardManager's minimum granularity: virtio-mem's block-size; the page size for guest_memfd. */
  granularityBytes: number;
}

export interface BudgetInput {
  sections: DiscardSection[];
  /** M: see maxMemslots(). */
  maxMemslots: number;
  /**
   * The container's limit (QEMU's dma_max_mappings): dma_entry_limit for a fresh container.
   * 0: QEMU makes no check (e.g. the iommufd backend). undefined: not known.
   */
  limit: number | undefined;
  /** Why the limit is unknown, for the verdict. */
  limitUnknownReason?: string;
}

export interface DmaMappingBudget {
  verdict: "fits" | "exceeds" | "unknown";
  /** N + M - C: the count QEMU compares with the limit (absent when QEMU makes no check). */
  predicted?: number;
  /** N: granule mappings of all sections. */
  granuleMappings: number;
  /** C. */
  sectionCount: number;
  /** M. */
  maxMemslots: number;
  limit?: number;
  /** predicted - limit, when it exceeds. */
  exceedsBy?: number;
  /** limit - predicted, when it fits. */
  headroom?: number;
  /** Whether QEMU runs the check at all (sections present, limit non-zero). */
  qemuChecks: boolean;
  /**
   * QEMU checks after registering each section (in address order), so with several sections
   * QEMU <= 10.1 prints its warning once per section whose running total is over (10.2+ stops at the first).
   */
  expectedWarnings: number;
  /** Per section, in registration order: its granules and the running total QEMU compares. */
  steps: Array<{ name?: string; granules: number; runningTotal: number; over: boolean }>;
  /** One line: "exceeds by 23: N 512 + memslots 512 - sections 1 = 1023 > limit 1000". */
  summary: string;
}

const alignDown = (x: number, g: number) => Math.floor(x / g) * g;
const roundUp = (x: number, g: number) => Math.ceil(x / g) * g;
const isPowerOfTwo = (n: number) => Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;

/** N_i for one section. */
export function sectionGranules(s: DiscardSection): number {
  if (!isPowerOfTwo(s.granularityBytes))
    throw new RangeError(`granularity ${s.granularityBytes} is not a power of two (QEMU asserts it is)`);
  return (
    (roundUp(s.startBytes + s.sizeBytes, s.granularityBytes) - alignDown(s.startBytes, s.granularityBytes)) /
    s.granularityBytes
  );
}

export function predictDmaMappingBudget(input: BudgetInput): DmaMappingBudget {
  // QEMU registers sections as the memory listener walks the flat view: by address.
  const ordered = [...input.sections].sort((a, b) => a.startBytes - b.startBytes);
  const M = input.maxMemslots;
  const { granuleMappings, steps } = runningTotals(ordered, M, input.limit);
  const C = ordered.length;
  const base = { granuleMappings, sectionCount: C, maxMemslots: M, steps };
  if (C === 0) return withoutDiscardSections(base, input.limit);
  return againstLimit(base, input);
}

type BudgetBase = Pick<DmaMappingBudget, "granuleMappings" | "sectionCount" | "maxMemslots" | "steps">;

/** N and, per section in address order, the running total QEMU compares with the limit after registering it. */
export function runningTotals(
  ordered: DiscardSection[],
  maxMemslots: number,
  limit: number | undefined,
): { granuleMappings: number; steps: DmaMappingBudget["steps"] } {
  let n = 0;
  const steps: DmaMappingBudget["steps"] = [];
  ordered.forEach((s, i) => {
    const granules = sectionGranules(s);
    n += granules;
    const runningTotal = n + maxMemslots - (i + 1);
    steps.push({
      ...(s.name ? { name: s.name } : {}),
      granules,
      runningTotal,
      over: limit !== undefined && limit !== 0 && runningTotal > limit,
    });
  });
  return { granuleMappings: n, steps };
}

/** No RamDiscardManager section: QEMU has nothing to count. */
function withoutDiscardSections(base: BudgetBase, limit: number | undefined): DmaMappingBudget {
  return {
    ...base,
    verdict: "fits",
    qemuChecks: false,
    expectedWarnings: 0,
    ...(limit !== undefined ? { limit } : {}),
    summary:
      "fits: no virtio-mem (RamDiscardManager) memory, " +
      "so guest RAM is mapped in a few large pieces and QEMU makes no check",
  };
}

/** N + M - C against the limit: unknown, unchecked (0), over, or within it. */
function againstLimit(base: BudgetBase, input: BudgetInput): DmaMappingBudget {
  const { granuleMappings: n, maxMemslots: M, sectionCount: C, steps } = base;
  const predicted = n + M - C;
  const formula = `N ${n} + memslots ${M} - sections ${C} = ${predicted}`;
  if (input.limit === undefined) {
    return {
      ...base,
      verdict: "unknown",
      predicted,
      qemuChecks: true,
      expectedWarnings: 0,
      summary:
        `unknown: ${formula}, but the DMA mapping limit is not known` +
        `${input.limitUnknownReason ? ` (${input.limitUnknownReason})` : ""}`,
    };
  }
  if (input.limit === 0) {
    return {
      ...base,
      verdict: "fits",
      predicted,
      limit: 0,
      qemuChecks: false,
      expectedWarnings: 0,
      summary: `fits: ${formula}; the container reports no limit, so QEMU makes no check`,
    };
  }
  const expectedWarnings = steps.filter((s) => s.over).length;
  if (predicted > input.limit) {
    const by = predicted - input.limit;
    return {
      ...base,
      verdict: "exceeds",
      predicted,
      limit: input.limit,
      exceedsBy: by,
      qemuChecks: true,
      expectedWarnings,
      summary: `exceeds by ${by}: ${formula} > limit ${input.limit}`,
    };
  }
  return {
    ...base,
    verdict: "fits",
    predicted,
    limit: input.limit,
    headroom: input.limit - predicted,
    qemuChecks: true,
    expectedWarnings: 0,
    summary: `fits: ${formula} <= limit ${input.limit} (${input.limit - predicted} to spare)`,
  };
}

// ---- guest layout -> sections -------------------------------------------------------------

export interface VirtioMemShape {
  id?: string;
  sizeBytes: number;
  blockBytes: number;
}

const GiB = 1024 ** 3;

/**
 * Where a q35 machine's device memory starts: ROUND_UP(4 GiB + RAM above 4 GiB, 1 GiB)
 * (hw/i386/pc.c). q35 keeps all RAM below 4 GiB up to 2.75 GiB; from there, 2 GiB stay low and
 * the rest goes above 4 GiB (hw/i386/pc_q35.c).
 */
export function x86DeviceMemoryBase(ramBytes: number): number {
  // q35: lowmem is 2 GiB when RAM >= 0xb0000000 (2.75 GiB), else all RAM is below 4 GiB.
  const lowmem = ramBytes >= 0xb0000000 ? 2 * GiB : ramBytes;
  const above4g = ramBytes - lowmem;
  return roundUp(4 * GiB + above4g, GiB);
}

/**
 * virtio-mem devices as QEMU places them: one after another in device memory, each aligned to
 * its block size (virtio-mem's minimum alignment). The full device size counts, not the
 * requested size: QEMU's check is about what the guest could plug over time.
 */
export function virtioMemSections(devices: readonly VirtioMemShape[], deviceMemoryBase: number): DiscardSection[] {
  let next = deviceMemoryBase;
  return devices.map((d, i) => {
    const start = roundUp(next, d.blockBytes);
    next = start + d.sizeBytes;
    return {
      name: `virtio-mem ${d.id ?? `vm${i}`}`,
      startBytes: start,
      sizeBytes: d.sizeBytes,
      granularityBytes: d.blockBytes,
    };
  });
}

/** A confidential guest's private RAM (guest_memfd): one section per RAM range at the page size. */
export function confidentialRamSections(
  ranges: Array<{ startBytes: number; sizeBytes: number }>,
  pageBytes = 4096,
): DiscardSection[] {
  return ranges.map((r, i) => ({
    name: `guest_memfd ${i}`,
    startBytes: r.startBytes,
    sizeBytes: r.sizeBytes,
    granularityBytes: pageBytes,
  }));
}

/** The largest virtio-mem size (a multiple of blockBytes) that still fits the limit with one device. */
export function largestFittingVirtioMem(blockBytes: number, maxMemslots: number, limit: number): number {
  // N + M - 1 <= limit  =>  N <= limit - M + 1
  return Math.max(0, limit - maxMemslots + 1) * blockBytes;
}

/** "1G of 2M blocks" for reports. */
export function describeVirtioMem(d: VirtioMemShape): string {
  return `${formatSize(d.sizeBytes)} in ${formatSize(d.blockBytes)} blocks (${d.sizeBytes / d.blockBytes} granules)`;
}

// ---- what QEMU printed ---------------------------------------------------------------------

export interface QemuDmaWarning {
  /** "warning" through QEMU 10.1 (the VM runs on); "error" from 10.2 (device setup fails). */
  severity: "warning" | "error";
  /**
   * The function QEMU names (vfio_register_ram_discard_listener up to 10.0,
   * vfio_ram_discard_register_listener after).
   */
  function: string;
  /** "Maximum possible DMA mappings": the container's limit as QEMU read it. */
  maxMappings: number;
  /** "Maximum possible memslots": M. */
  maxMemslots: number;
  /** The -device option QEMU names in front of the message, when it does. */
  device?: string;
  line: string;
}

// QEMU 10.0: `qemu-system-x86_64: -device vfio-pci,host=...: warning: vfio_register_ram_discard_listener:
// possibly running out of DMA mappings. E.g., try increasing the 'block-size' of virtio-mem devies.
// Maximum possible DMA mappings: 1000, Maximum possible memslots: 512` (sic: "devies").
const WARNING =
  /(\w+): possibly running out of DMA mappings\..*?Maximum possible DMA mappings: (-?\d+), Maximum possible memslots: (\d+)/;

/** Every instance of QEMU's mapping-budget message in its stderr. */
export function parseQemuDmaWarnings(stderr: string): QemuDmaWarning[] {
  const found: QemuDmaWarning[] = [];
  for (const line of stderr.split(/\r?\n/)) {
    const m = WARNING.exec(line);
    if (!m) continue;
    const before = line.slice(0, m.index);
    const device = /(-device \S+?): /.exec(before)?.[1];
    found.push({
      severity: /(^|: )warning: $/.test(before) ? "warning" : "error",
      function: m[1]!,
      maxMappings: Number(m[2]),
      maxMemslots: Number(m[3]),
      ...(device ? { device } : {}),
      line: line.trim(),
    });
  }
  return found;
}

export interface PredictionCheck {
  agrees: boolean;
  /** Each way QEMU's output contradicts the prediction. */
  mismatches: string[];
}

/**
 * Does what QEMU printed agree with the prediction? It must warn exactly when the prediction
 * says "exceeds" (as often as expectedWarnings for a warning QEMU; at least once for an
 * erroring one), and print the same limit and memslot count.
 */
export function compareWithQemu(prediction: DmaMappingBudget, warnings: readonly QemuDmaWarning[]): PredictionCheck {
  const mismatches: string[] = [];
  if (prediction.verdict === "unknown") {
    return { agrees: true, mismatches };
  }
  if (prediction.verdict === "fits" && warnings.length > 0) {
    mismatches.push(`predicted "${prediction.summary}" but QEMU printed: ${warnings[0]!.line}`);
  }
  if (prediction.verdict === "exceeds") {
    if (warnings.length === 0) mismatches.push(`predicted "${prediction.summary}" but QEMU printed no mapping warning`);
    const erroring = warnings.some((w) => w.severity === "error");
    if (!erroring && warnings.length > 0 && warnings.length !== prediction.expectedWarnings) {
      mismatches.push(`expected ${prediction.expectedWarnings} warning(s), QEMU printed ${warnings.length}`);
    }
  }
  for (const w of warnings) {
    if (prediction.limit !== undefined && w.maxMappings !== prediction.limit) {
      mismatches.push(`QEMU's limit is ${w.maxMappings}, the prediction used ${prediction.limit}`);
    }
    if (w.maxMemslots !== prediction.maxMemslots) {
      mismatches.push(`QEMU's memslot count is ${w.maxMemslots}, the prediction used ${prediction.maxMemslots}`);
    }
  }
  return { agrees: mismatches.length === 0, mismatches: [...new Set(mismatches)] };
}
