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
import { registerCleanup } from "../util/cleanup.ts";
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
  private readonly undo: Array<{ what: string; run: () => Promise<void> }> = [];
  private readonly log: (line: string) => void;
  private readonly unregister: () => void;
  private restoring: Promise<RestoreReport> | undefined;

  constructor(hostName: string, log: (line: string) => void) {
    this.log = log;
    this.unregister = registerCleanup(`restore VFIO host ${hostName}`, async () => {
      const r = await this.restore();
      if (r.failed.length) throw new Error(r.failed.join("; "));
    });
  }

  /** Run by `restore`, newest first. */
  pushUndo(what: string, run: () => Promise<void>): void {
    this.undo.push({ what, run });
  }

  record(change: HostChangeRecord): void {
    this.changes.push(change);
  }

  readonly restore = (): Promise<RestoreReport> => (this.restoring ??= this.undoAll());

  private async undoAll(): Promise<RestoreReport> {
    this.unregister();
    const report: RestoreReport = { restored: [], failed: [] };
    // Reversed in place and iterated live: an undo pushed while restoring (Ctrl-C during binding) still runs, last.
    for (const u of this.undo.reverse()) {
      try {
        await u.run();
        report.restored.push(u.what);
        this.log(`restored: ${u.what}`);
      } catch (e) {
        report.failed.push(`${u.what}: ${(e as Error).message}`);
        this.log(`NOT restored: ${u.what}: ${(e as Error).message}`);
      }
    }
    return report;
  }
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
  const cx: BindContext = {
    sysfs: new TimedSysfs(fs, opts.timeoutMs ?? 10_000, opts.settleMs ?? 3_000),
    host: new HostChanges(fs.name, log),
    log,
  };
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
  await cx.sysfs.write(SYSFS.dmaEntryLimit, String(requested));
  cx.host.pushUndo(`dma_entry_limit back to ${current}`, () => cx.sysfs.write(SYSFS.dmaEntryLimit, String(current)));
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
  await cx.sysfs.write(`${SYSFS.mdevType(device.parent, device.type)}/create`, uuid);
  cx.host.pushUndo(`remove mdev ${uuid}`, () => cx.sysfs.write(`${SYSFS.mdevDevice(uuid)}/remove`, "1"));
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

/** How a device was bound before vmrig touched it: what its undo puts back. */
interface OriginalBinding {
  driver: string | undefined;
  /** "" when none was set. */
  override: string;
}

async function bindToVfioPci(cx: BindContext, m: GroupMember, changeWhat: string): Promise<void> {
  const dev = SYSFS.pciDevice(m.bdf);
  // Read the state now, not the preflight's: it is what must come back.
  const driver = await cx.sysfs.driverOf(m.bdf);
  const original: OriginalBinding = { driver, override: await cx.sysfs.overrideOf(m.bdf) };
  if (original.driver === "vfio-pci") return;

  const keptOverride = original.override ? ` (driver_override ${original.override})` : "";
  cx.host.pushUndo(`${m.bdf} back to ${original.driver ?? "no driver"}${keptOverride}`, () =>
    restoreBinding(cx.sysfs, m.bdf, original),
  );
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
