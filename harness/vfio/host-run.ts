// VFIO on this machine for a `vmrig run`: preflight before anything boots (refusal: exit 2,
// nothing changed), binding for the run, restore at the end, all of it stored in the results.
// A vfio.nested scenario does this inside its level-1 guests instead (vfio/nested.ts).
import type { Accelerator } from "../qemu/accel.ts";
import type { BootRequest } from "../guest/boot.ts";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Arch, RunResult, Scenario } from "../types.ts";
import { compareWithQemu, parseQemuDmaWarnings } from "./mapping-budget.ts";
import { HostError } from "../util/errors.ts";
import { bindVfioHost, type VfioBinding } from "./bind.ts";
import { defaultJournalDir, journalFile } from "./journal.ts";
import { localHostFs, type HostFs } from "./host-fs.ts";
import { formatPreflight, vfioPreflight, type VfioPreflight } from "./preflight.ts";

/** Modules the guest image needs beyond vmrig's own. */
export function vfioGuestModules(s: Pick<Scenario, "memory" | "vfio">): string[] {
  return [
    ...(s.memory?.virtioMem.length ? ["virtio_mem"] : []),
    // A nested scenario's level-1 guest is the VFIO host.
    ...(s.vfio?.nested ? ["vfio_pci", "vfio_iommu_type1"] : []),
  ];
}

export interface VfioRun {
  qemuExtras: NonNullable<BootRequest["qemuExtras"]>;
  /** For results.json: the preflight, what was changed, and (after finish) what was restored. */
  record: Record<string, unknown>;
  /**
   * Restore the host; returns the final record, with what each row's QEMU printed about DMA
   * mappings (its qemu-stderr.log) checked against the prediction. Safe to call twice.
   */
  finish(result?: RunResult, runDir?: string): Promise<Record<string, unknown>>;
}

/**
 * Preflight and bind for a scenario that passes devices through on this host, or just the QEMU
 * additions when it only shapes memory. Undefined when the scenario has neither (or is nested).
 */
export async function prepareVfioRun(
  s: Scenario,
  accel: Accelerator,
  opts: { log: (line: string) => void; fs?: HostFs; arch?: Arch },
): Promise<VfioRun | undefined> {
  if (s.vfio?.nested) return undefined;
  const memoryExtras = {
    ...(s.memory?.backend ? { memoryBackend: s.memory.backend } : {}),
    ...(s.memory?.virtioMem.length ? { virtioMem: s.memory.virtioMem } : {}),
  };
  if (!s.vfio) return s.memory ? { qemuExtras: memoryExtras, record: {}, finish: async () => ({}) } : undefined;

  const fs = opts.fs ?? localHostFs("/");
  const preflight = await vfioPreflight(fs, {
    vfio: s.vfio,
    ...(s.memory ? { memory: s.memory } : {}),
    memoryBytes: s.machine.memoryBytes,
    accel: accel.name,
    arch: opts.arch ?? s.machine.arch,
  });
  for (const line of formatPreflight(preflight)) opts.log(line);
  if (preflight.problems.length) {
    throw new HostError(
      "VFIO preflight refused the run; nothing was bound or changed:\n" +
        `${preflight.problems.map((p) => `  - ${p}`).join("\n")}`,
    );
  }
  const journal = journalFile(defaultJournalDir());
  const binding: VfioBinding = await bindVfioHost(fs, preflight, { log: opts.log, journal }).catch((e: Error) => {
    throw new HostError(e.message);
  });
  const record: Record<string, unknown> = { preflight: summary(preflight), changes: binding.changes };
  let finished: Promise<Record<string, unknown>> | undefined;
  return {
    qemuExtras: { ...memoryExtras, vfio: binding.qemuDevices },
    record,
    finish: (result, runDir) =>
      (finished ??= binding.restore().then(async (restore) => {
        for (const f of restore.failed) opts.log(`VFIO restore FAILED: ${f}`);
        const qemu = result && runDir ? await qemuSaid(result, runDir, preflight) : undefined;
        return Object.assign(record, { restore, ...(qemu ? { qemu } : {}) });
      })),
  };
}

/** Per row: QEMU's DMA mapping messages from its stderr log, against the prediction. */
async function qemuSaid(result: RunResult, runDir: string, p: VfioPreflight): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const row of result.rows) {
    const file = row.artifacts.qemuStderr;
    const log = file ? await readFile(path.join(runDir, file), "utf8").catch(() => undefined) : undefined;
    if (log === undefined) continue;
    const warnings = parseQemuDmaWarnings(log);
    out[row.label] = { warnings, check: compareWithQemu(p.budget, warnings) };
  }
  return out;
}

/** The preflight for results.json: the facts and the verdict, with the printed lines. */
export function summary(p: VfioPreflight): Record<string, unknown> {
  return { ...p, lines: formatPreflight(p) };
}
