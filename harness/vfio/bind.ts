// Binding: make the VFIO host ready for the run, and put everything back afterwards. Each
// change is applied with its undo pushed on a stack; a failed step undoes what was done, and
// `restore()` (also registered for Ctrl-C and crashes: util/cleanup.ts) undoes the rest, newest
// first. Only devices the scenario names are ever written to.
//
// A PCI device goes to vfio-pci the way the kernel documents: driver_override = vfio-pci,
// unbind from its driver, drivers_probe. Restoring clears the override and binds the original
// driver back (or leaves the device unbound, as it was).
import { randomUUID } from "node:crypto";
import path from "node:path";
import type { VfioDevicePlan } from "../qemu/argv.ts";
import { rm } from "node:fs/promises";
import { registerCleanup } from "../util/cleanup.ts";
import { orphanedJournals, writeJournal, type OriginalBinding, type UndoStep } from "./journal.ts";
import type { HostFs } from "./host-fs.ts";
import { SYSFS, type DevicePreflight, type GroupMember, type VfioPreflight } from "./preflight.ts";

export interface BindOptions {
  /** Per sysfs operation; a driver whose remove blocks must not hang the run. */
  timeoutMs?: number;
  log?: (line: string) => void;
  /** For mdev UUIDs (tests pass a fixed one). */
  uuid?: () => string;
  /** How long to wait for a bind to show in sysfs. */
  settleMs?: number;
  /** Where the changes are journaled until restored (the local host's binding; a guest's needs none). */
  journal?: string;
}

export interface HostChangeRecord {
  what: string;
  before: string;
  after: string;
}

export interface RestoreReport {
  restored: string[];
  failed: string[];
}

export interface VfioBinding {
  /** What was changed, in order: stored with the results. */
  readonly changes: HostChangeRecord[];
  /** The -device vfio-pci arguments for QEMU. */
  readonly qemuDevices: VfioDevicePlan[];
  /** Undo every change (newest first); safe to call twice. */
  restore(): Promise<RestoreReport>;
}

export class BindError extends Error {
  constructor(
    message: string,
    readonly undo: RestoreReport,
  ) {
    super(message);
  }
}

const basename = (p: string | undefined) => (p ? path.posix.basename(p.trim()) : undefined);

function withTimeout<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** The host's sysfs, every operation bounded by `timeoutMs` and named in the error when it never answers. */
class TimedSysfs {
  private readonly fs: HostFs;
  private readonly timeoutMs: number;
  private readonly settleMs: number;

  constructor(fs: HostFs, timeoutMs: number, settleMs: number) {
    this.fs = fs;
    this.timeoutMs = timeoutMs;
    this.settleMs = settleMs;
  }

  private op<T>(what: string, p: () => Promise<T>): Promise<T> {
    return withTimeout(what, this.timeoutMs, p());
  }

  write(p: string, text: string): Promise<void> {
    return this.op(`write ${p}`, () => this.fs.write(p, text));
  }

  /** The device's driver_override, "" when none is set. */
  async overrideOf(bdf: string): Promise<string> {
    const dev = SYSFS.pciDevice(bdf);
    const text = (
      await this.op(`read ${bdf}/driver_override`, () => this.fs.readText(`${dev}/driver_override`))
    )?.trim();
    return text === undefined || text === "(null)" ? "" : text;
  }

  async driverOf(bdf: string): Promise<string | undefined> {
    return basename(await this.op(`read ${bdf}/driver`, () => this.fs.readLink(`${SYSFS.pciDevice(bdf)}/driver`)));
  }

  /** A bind shows in sysfs a little after the write returns: poll until it does, or give up after `settleMs`. */
  async waitForDriver(bdf: string, want: string | undefined): Promise<void> {
    const start = Date.now();
    for (;;) {
      const now = await this.driverOf(bdf);
      if (now === want) return;
      if (Date.now() - start > this.settleMs)
        throw new Error(`${bdf} is bound to ${now ?? "no driver"}, expected ${want ?? "no driver"}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * The changes made to the host so far, each with its undo. Registered for Ctrl-C and crashes
 * from the start; `restore` undoes every change newest first, and only once however often it is
 * called (the binding's own failure, the run's end and the cleanup registry may all ask).
 */
class HostChanges {
  readonly changes: HostChangeRecord[] = [];
  private readonly undo: Array<{ what: string; step: UndoStep }> = [];
  private readonly unregister: () => void;
  private restoring: Promise<RestoreReport> | undefined;
  private readonly startedAt = new Date().toISOString();

  constructor(
    private readonly hostName: string,
    private readonly sysfs: TimedSysfs,
    private readonly log: (line: string) => void,
    private readonly journal?: string,
  ) {
    this.unregister = registerCleanup(`restore VFIO host ${hostName}`, async () => {
      const r = await this.restore();
      if (r.failed.length) throw new Error(r.failed.join("; "));
    });
  }

  /** Run by `restore`, newest first; on disk before the change it undoes is made. */
  async pushUndo(what: string, step: UndoStep): Promise<void> {
    this.undo.push({ what, step });
    await this.saveJournal(this.undo);
  }

  record(change: HostChangeRecord): void {
    this.changes.push(change);
  }

  readonly restore = (): Promise<RestoreReport> => (this.restoring ??= this.undoAll());

  private async undoAll(): Promise<RestoreReport> {
    this.unregister();
    // Reversed in place and iterated live: an undo pushed while restoring (Ctrl-C during binding) still runs, last.
    const report = await undoSteps(this.sysfs, this.undo.reverse(), this.log);
    await this.saveJournal(report.left);
    return { restored: report.restored, failed: report.failed };
  }

  /** What is still to undo; no journal once nothing is. */
  private async saveJournal(undo: Array<{ what: string; step: UndoStep }>): Promise<void> {
    if (!this.journal) return;
    if (undo.length === 0) return void (await rm(this.journal, { force: true }));
    await writeJournal(this.journal, { host: this.hostName, pid: process.pid, startedAt: this.startedAt, undo });
  }
}

/** Undoes `steps` in the order given; what failed is left, oldest first, for a journal. */
async function undoSteps(sysfs: TimedSysfs, steps: Array<{ what: string; step: UndoStep }>, log: (l: string) => void) {
  const report = { restored: [] as string[], failed: [] as string[], left: [] as typeof steps };
  for (const u of steps) {
    try {
      await runUndo(sysfs, u.step);
      report.restored.push(u.what);
      log(`restored: ${u.what}`);
    } catch (e) {
      report.failed.push(`${u.what}: ${(e as Error).message}`);
      report.left.unshift(u);
      log(`NOT restored: ${u.what}: ${(e as Error).message}`);
    }
  }
  return report;
}

function runUndo(sysfs: TimedSysfs, step: UndoStep): Promise<void> {
  switch (step.kind) {
    case "dma-entry-limit":
      return sysfs.write(SYSFS.dmaEntryLimit, step.value);
    case "remove-mdev":
      return sysfs.write(`${SYSFS.mdevDevice(step.uuid)}/remove`, "1");
    case "restore-binding":
      return restoreBinding(sysfs, step.bdf, step.original);
  }
}

/**
 * `vmrig vfio restore`: undoes the changes of every vmrig that died before it restored them (its
 * journal is left behind), newest first; a journal is removed once everything in it is undone.
 */
export async function restoreOrphanedChanges(
  fs: HostFs,
  dir: string,
  log: (line: string) => void,
): Promise<RestoreReport & { journals: number }> {
  const sysfs = new TimedSysfs(fs, 10_000, 3_000);
  const total = { restored: [] as string[], failed: [] as string[], journals: 0 };
  for (const { file, journal } of await orphanedJournals(dir)) {
    total.journals++;
    log(`${file}: vmrig process ${journal.pid} (started ${journal.startedAt}) left ${journal.undo.length} change(s)`);
    const r = await undoSteps(sysfs, [...journal.undo].reverse(), log);
    if (r.left.length) await writeJournal(file, { ...journal, undo: r.left });
    else await rm(file, { force: true });
    total.restored.push(...r.restored);
    total.failed.push(...r.failed);
  }
  return total;
}

/** What every binding step works with. */
interface BindContext {
  sysfs: TimedSysfs;
  host: HostChanges;
  log: (line: string) => void;
}

export async function bindVfioHost(fs: HostFs, pre: VfioPreflight, opts: BindOptions = {}): Promise<VfioBinding> {
  if (pre.problems.length) throw new Error(`preflight refused the run:\n${pre.problems.join("\n")}`);
  const log = opts.log ?? (() => {});
  const sysfs = new TimedSysfs(fs, opts.timeoutMs ?? 10_000, opts.settleMs ?? 3_000);
  const cx: BindContext = { sysfs, host: new HostChanges(fs.name, sysfs, log, opts.journal), log };
  const qemuDevices: VfioDevicePlan[] = [];
  try {
    await setDmaEntryLimit(cx, pre.dmaEntryLimit);
    for (const d of pre.devices) {
      qemuDevices.push(
        d.device.kind === "mdev"
          ? await createMdev(cx, d.label, d.device, opts.uuid ?? randomUUID)
          : await bindGroupToVfioPci(cx, d, d.device.host),
      );
    }
  } catch (e) {
    const report = await cx.host.restore();
    throw new BindError(
      `binding on ${fs.name} failed: ${(e as Error).message}; ` +
        (report.failed.length
          ? `could NOT restore: ${report.failed.join("; ")}`
          : `restored ${report.restored.length} change(s)`),
      report,
    );
  }
  return { changes: cx.host.changes, qemuDevices, restore: cx.host.restore };
}

/** dma_entry_limit: new containers take it; QEMU's check reads it back as DMA_AVAIL. */
async function setDmaEntryLimit(cx: BindContext, limit: VfioPreflight["dmaEntryLimit"]): Promise<void> {
  const { requested, current } = limit;
  if (requested === undefined || requested === current || current === undefined) return;
  await cx.host.pushUndo(`dma_entry_limit back to ${current}`, { kind: "dma-entry-limit", value: String(current) });
  await cx.sysfs.write(SYSFS.dmaEntryLimit, String(requested));
  cx.host.record({ what: "vfio_iommu_type1 dma_entry_limit", before: String(current), after: String(requested) });
  cx.log(`dma_entry_limit ${current} -> ${requested}`);
}

async function createMdev(
  cx: BindContext,
  label: string,
  device: { type: string; parent: string },
  newUuid: () => string,
): Promise<VfioDevicePlan> {
  const uuid = newUuid();
  // After the create: removing an mdev that was never made would fail the restore.
  await cx.sysfs.write(`${SYSFS.mdevType(device.parent, device.type)}/create`, uuid);
  await cx.host.pushUndo(`remove mdev ${uuid}`, { kind: "remove-mdev", uuid });
  cx.host.record({ what: `mdev ${device.type} on ${device.parent}`, before: "absent", after: uuid });
  cx.log(`created ${label}: ${uuid}`);
  return { sysfsdev: SYSFS.mdevDevice(uuid) };
}

/** VFIO takes a whole IOMMU group: every member the preflight marked goes to vfio-pci, then QEMU gets `bdf`. */
async function bindGroupToVfioPci(cx: BindContext, d: DevicePreflight, bdf: string): Promise<VfioDevicePlan> {
  for (const m of d.members) {
    if (m.action !== "bind to vfio-pci") continue;
    const what = `driver of ${m.bdf}${m.bdf === bdf ? "" : ` (group ${d.iommuGroup} of ${bdf})`}`;
    await bindToVfioPci(cx, m, what);
  }
  return { host: bdf };
}

async function bindToVfioPci(cx: BindContext, m: GroupMember, changeWhat: string): Promise<void> {
  const dev = SYSFS.pciDevice(m.bdf);
  // Read the state now, not the preflight's: it is what must come back.
  const driver = await cx.sysfs.driverOf(m.bdf);
  const original: OriginalBinding = { driver, override: await cx.sysfs.overrideOf(m.bdf) };
  if (original.driver === "vfio-pci") return;

  const keptOverride = original.override ? ` (driver_override ${original.override})` : "";
  await cx.host.pushUndo(`${m.bdf} back to ${original.driver ?? "no driver"}${keptOverride}`, {
    kind: "restore-binding",
    bdf: m.bdf,
    original,
  });
  await cx.sysfs.write(`${dev}/driver_override`, "vfio-pci");
  if (original.driver) await cx.sysfs.write(`${dev}/driver/unbind`, m.bdf);
  await cx.sysfs.write(SYSFS.driversProbe, m.bdf);
  await cx.sysfs.waitForDriver(m.bdf, "vfio-pci");
  cx.host.record({ what: changeWhat, before: original.driver ?? "none", after: "vfio-pci" });
  cx.log(`${m.bdf}: ${original.driver ?? "no driver"} -> vfio-pci`);
}

/**
 * One device's undo, pushed before its first write and safe on any partial state: off vfio-pci,
 * the original override back (a bind to another driver fails while the override names
 * vfio-pci), then the original driver.
 */
async function restoreBinding(sysfs: TimedSysfs, bdf: string, original: OriginalBinding): Promise<void> {
  const dev = SYSFS.pciDevice(bdf);
  const now = await sysfs.driverOf(bdf);
  if (now !== undefined && now !== original.driver) await sysfs.write(`${dev}/driver/unbind`, bdf);
  await sysfs.write(`${dev}/driver_override`, original.override || "\n");
  if (original.driver && (await sysfs.driverOf(bdf)) !== original.driver) {
    await sysfs.write(`${SYSFS.pciDriver(original.driver)}/bind`, bdf);
    await sysfs.waitForDriver(bdf, original.driver);
  }
}
