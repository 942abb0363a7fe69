// What a scenario feature (VFIO today) adds to the one row runner (runner.ts) instead of running
// rows of its own: more shares, kernel command line words and QEMU devices for every guest of a
// row, a check once each guest is up, and the cells of its own workload kinds. Every row then
// gets the same boot retry, load-scaled timeouts, --jobs slots and fresh guests.
import type { BootRequest, Guest } from "../guest/boot.ts";
import type { ShareSpec, WorkloadSpec } from "../types.ts";
import type { CellRun, CellTimeouts } from "./cell.ts";

export type QemuExtras = NonNullable<BootRequest["qemuExtras"]>;

/** A row's timeouts, already scaled for the accelerator and the host's load. */
export interface RowTimeouts extends CellTimeouts {
  bootMs: number;
}

/** What a feature found once a guest was up: a problem makes every remaining cell INFRA. */
export interface AfterBoot {
  problem?: string;
  /** Row evidence (taken from the row's first guest). */
  evidence?: Record<string, unknown>;
  /** Appended to the row's heading (taken from the row's first guest). */
  descriptionSuffix?: string;
}

/** Runs one cell of a workload kind the generic cell runner cannot (several steps in the guest). */
export type CellRunner = (w: WorkloadSpec, guest: Guest, t: RowTimeouts) => Promise<CellRun>;

export interface RowHooks {
  /** What progress calls the row's first guest while it boots (default: just "booting"). */
  guestName?: string;
  /**
   * The row's `qemu:` is not what boots its guests (nested VFIO: it runs level 2 inside the
   * guest), so they boot on the host's QEMU and the row's heading does not name it.
   */
  bootOnHostQemu?: boolean;
  /** Row evidence from the start, before any guest boots. */
  evidence?: Record<string, unknown>;
  /** Shares beyond the scenario's, each with the host directory it exports; not mounted by vmrig. */
  shares?: Array<{ spec: ShareSpec; hostDir: string }>;
  /** Kernel command line words, after the machine's and before the kernel entry's own. */
  cmdline?: string[];
  /** QEMU additions for every guest of the row, on top of the run's (RunEnv.qemuExtras). */
  qemuExtras?: QemuExtras;
  /** After vmrig's own facts about each guest (fresh ones too), before its first cell. */
  afterBoot?: (guest: Guest, t: RowTimeouts) => Promise<AfterBoot>;
  /** Cells of these workload kinds run here instead of in the generic cell runner. */
  cellRunners?: Partial<Record<WorkloadSpec["kind"], CellRunner>>;
}

/**
 * Pure: QEMU additions of the run and of features in one. Lists add up; a setting two of them
 * give differently is a conflict between features, which no guest could satisfy.
 */
export function mergeQemuExtras(...all: Array<QemuExtras | undefined>): QemuExtras | undefined {
  const given = all.filter((x): x is QemuExtras => x !== undefined);
  if (given.length <= 1) return given[0];
  const out: QemuExtras = {};
  for (const x of given) {
    for (const key of ["virtioMem", "vfio", "extraDevices"] as const) {
      if (x[key]) Object.assign(out, { [key]: [...(out[key] ?? []), ...x[key]] });
    }
    for (const key of ["memoryBackend", "viommu"] as const) {
      if (x[key] === undefined) continue;
      if (out[key] !== undefined && JSON.stringify(out[key]) !== JSON.stringify(x[key])) {
        throw new Error(
          `QEMU ${key}: ${JSON.stringify(out[key])} and ${JSON.stringify(x[key])} asked for the same guest`,
        );
      }
      Object.assign(out, { [key]: x[key] });
    }
  }
  return out;
}

/** Pure: several features' hooks as one; each feature's parts in the order the features come. */
export function composeRowHooks(all: RowHooks[]): RowHooks {
  if (all.length <= 1) return all[0] ?? {};
  const names = all.flatMap((h) => (h.guestName ? [h.guestName] : []));
  const runners: Partial<Record<WorkloadSpec["kind"], CellRunner>> = {};
  for (const h of all) {
    for (const [kind, run] of Object.entries(h.cellRunners ?? {}) as Array<[WorkloadSpec["kind"], CellRunner]>) {
      if (runners[kind]) throw new Error(`two scenario features run ${kind} workloads`);
      runners[kind] = run;
    }
  }
  const afterBoots = all.flatMap((h) => (h.afterBoot ? [h.afterBoot] : []));
  return {
    ...(names.length ? { guestName: names.join("; ") } : {}),
    ...(all.some((h) => h.bootOnHostQemu) ? { bootOnHostQemu: true } : {}),
    evidence: Object.assign({}, ...all.map((h) => h.evidence ?? {})) as Record<string, unknown>,
    shares: all.flatMap((h) => h.shares ?? []),
    cmdline: all.flatMap((h) => h.cmdline ?? []),
    ...(all.some((h) => h.qemuExtras) ? { qemuExtras: mergeQemuExtras(...all.map((h) => h.qemuExtras)) } : {}),
    ...(afterBoots.length ? { afterBoot: (guest, t) => afterBootInTurn(afterBoots, guest, t) } : {}),
    cellRunners: runners,
  };
}

/** Each feature's check in turn; the first problem ends it (the later checks would only fail on it). */
async function afterBootInTurn(
  checks: Array<NonNullable<RowHooks["afterBoot"]>>,
  guest: Guest,
  t: RowTimeouts,
): Promise<AfterBoot> {
  const out: Required<Pick<AfterBoot, "evidence">> & AfterBoot = { evidence: {} };
  for (const check of checks) {
    const r = await check(guest, t);
    Object.assign(out.evidence, r.evidence ?? {});
    if (r.descriptionSuffix) out.descriptionSuffix = (out.descriptionSuffix ?? "") + r.descriptionSuffix;
    if (r.problem) return { ...out, problem: r.problem };
  }
  return out;
}
