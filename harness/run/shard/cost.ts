// A row's expected guest time, in seconds, for balancing shards. Pure. From a previous run of the
// scenario when one is given (boot plus every cell, as measured), else a static estimate from
// the scenario alone: never from the runner computing it, so every runner gets the same number.
import type { KernelEntry, KernelRowResult, Scenario, WorkloadSpec } from "../../types.ts";
import { kernelArch } from "../../scenario/platform.ts";

/** Boot to SSH plus teardown under TCG on x86 (about 3.5 s to SSH, the rest dmesg, stop, reports). */
const BOOT_S = 10;
/** Seconds per workload kind under TCG; a kind not named costs DEFAULT_WORKLOAD_S. */
const WORKLOAD_S: Record<string, number> = {
  shell: 1,
  read: 3,
  write: 3,
  readdir: 3,
  ktap: 5,
  getdentsSweep: 10,
  overlayReaddir: 10,
  nestedQemu: 60,
};
const DEFAULT_WORKLOAD_S = 5;
/** A parameter search probes about a dozen values. */
const SEARCH_PROBES = 12;
/** A kernel built from source: a cold build on a few cores (a warm cache is cheaper; unknown here). */
const BUILD_S = 240;
/** An arm64 guest under TCG on an x86 runner: its timeScale is 8 against x86's 4. */
const ARCH_FACTOR = { x86_64: 1, aarch64: 2 } as const;
/** A scenario that asks for KVM runs about 4x faster than TCG (the accelerators' timeScale). */
const KVM_FACTOR = 0.25;
/** Nested VFIO boots a level-1 guest that boots the row's guest. */
const NESTED_FACTOR = 2;

function workloadCost(w: WorkloadSpec): number {
  const once = WORKLOAD_S[w.kind] ?? DEFAULT_WORKLOAD_S;
  if (!w.search) return once;
  const probe = w.search.on === "guest" ? once + BOOT_S : once;
  return probe * SEARCH_PROBES * w.search.repeat;
}

/** The static estimate of one row: boot and workloads, scaled for arch and accelerator, plus a build. */
export function staticRowCost(s: Scenario, k: KernelEntry): number {
  const guest = BOOT_S + s.workloads.reduce((sum, w) => sum + workloadCost(w), 0);
  const scale =
    ARCH_FACTOR[kernelArch(s, k)] * (s.machine.accel === "kvm" ? KVM_FACTOR : 1) * (s.vfio?.nested ? NESTED_FACTOR : 1);
  return quantize(guest * scale + (k.source.kind === "build" ? BUILD_S : 0));
}

/** What a row took last time: its first boot and every cell (fresh guests' boots are in their cells' time). */
export function measuredRowCost(row: KernelRowResult): number {
  const ms = (row.bootMs ?? 0) + row.cells.reduce((sum, c) => sum + c.durationMs, 0);
  return quantize(ms / 1000);
}

/** Two significant digits: a night's jitter of a few percent rarely moves a row to another shard. */
export function quantize(seconds: number): number {
  return seconds > 0 ? Number(seconds.toPrecision(2)) : 0;
}

export interface RowCost {
  key: string;
  scenario: string;
  label: string;
  cost: number;
  /** "static", or the run the cost was measured in ("smoke/2026-12-01T02-00-00Z"). */
  from: string;
}

/** Each selected row's cost, in scenario then row order; `history` gives a scenario's earlier run. */
export function rowCosts(
  scenarios: Array<{ scenario: Scenario; rows: KernelEntry[] }>,
  history: (scenario: string) => { id: string; rows: KernelRowResult[] } | undefined,
): RowCost[] {
  return scenarios.flatMap(({ scenario: s, rows }) => {
    const past = history(s.name);
    return rows.map((k) => {
      const seen = past?.rows.find((r) => r.label === k.label && r.cells.length > 0);
      return {
        key: `${s.name}/${k.label}`,
        scenario: s.name,
        label: k.label,
        cost: seen ? measuredRowCost(seen) : staticRowCost(s, k),
        from: seen ? past!.id : "static",
      };
    });
  });
}
