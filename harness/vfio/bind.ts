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
import { SYSFS, type VfioPreflight } from "./preflight.ts";

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

export async function bindVfioHost(fs: HostFs, pre: VfioPreflight, opts: BindOptions = {}): Promise<VfioBinding> {
  if (pre.problems.length) throw new Error(`preflight refused the run:\n${pre.problems.join("\n")}`);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const settleMs = opts.settleMs ?? 3_000;
  const log = opts.log ?? (() => {});
  const changes: HostChangeRecord[] = [];
  const undo: Array<{ what: string; run: () => Promise<void> }> = [];
  const op = <T>(what: string, p: () => Promise<T>) => withTimeout(what, timeoutMs, p());
  const write = (p: string, text: string) => op(`write ${p}`, () => fs.write(p, text));
  const driverOf = async (bdf: string) =>
    basename(await op(`read ${bdf}/driver`, () => fs.readLink(`${SYSFS.pciDevice(bdf)}/driver`)));

  async function waitForDriver(bdf: string, want: string | undefined): Promise<void> {
    const start = Date.now();
    for (;;) {
      const now = await driverOf(bdf);
      if (now === want) return;
      if (Date.now() - start > settleMs)
        throw new Error(`${bdf} is bound to ${now ?? "no driver"}, expected ${want ?? "no driver"}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  let restoring: Promise<RestoreReport> | undefined;
  const restore = () =>
    (restoring ??= (async () => {
      unregister();
      const report: RestoreReport = { restored: [], failed: [] };
      for (const u of undo.reverse()) {
        try {
          await u.run();
          report.restored.push(u.what);
          log(`restored: ${u.what}`);
        } catch (e) {
          report.failed.push(`${u.what}: ${(e as Error).message}`);
          log(`NOT restored: ${u.what}: ${(e as Error).message}`);
        }
      }
      return report;
    })());
  const unregister = registerCleanup(`restore VFIO host ${fs.name}`, async () => {
    const r = await restore();
    if (r.failed.length) throw new Error(r.failed.join("; "));
  });

  const qemuDevices: VfioDevicePlan[] = [];
  try {
    // dma_entry_limit: new containers take it; QEMU's check reads it back as DMA_AVAIL.
    const { requested, current } = pre.dmaEntryLimit;
    if (requested !== undefined && requested !== current && current !== undefined) {
      await write(SYSFS.dmaEntryLimit, String(requested));
      undo.push({ what: `dma_entry_limit back to ${current}`, run: () => write(SYSFS.dmaEntryLimit, String(current)) });
      changes.push({ what: "vfio_iommu_type1 dma_entry_limit", before: String(current), after: String(requested) });
      log(`dma_entry_limit ${current} -> ${requested}`);
    }

    for (const d of pre.devices) {
      if (d.device.kind === "mdev") {
        const uuid = (opts.uuid ?? randomUUID)();
        const typeDir = SYSFS.mdevType(d.device.parent, d.device.type);
        await write(`${typeDir}/create`, uuid);
        undo.push({ what: `remove mdev ${uuid}`, run: () => write(`${SYSFS.mdevDevice(uuid)}/remove`, "1") });
        changes.push({ what: `mdev ${d.device.type} on ${d.device.parent}`, before: "absent", after: uuid });
        qemuDevices.push({ sysfsdev: SYSFS.mdevDevice(uuid) });
        log(`created ${d.label}: ${uuid}`);
        continue;
      }
      const bdf = d.device.host;
      for (const m of d.members) {
        if (m.action !== "bind to vfio-pci") continue;
        const dev = SYSFS.pciDevice(m.bdf);
        // Read the state now, not the preflight's: it is what must come back.
        const originalDriver = await driverOf(m.bdf);
        const overrideText = (
          await op(`read ${m.bdf}/driver_override`, () => fs.readText(`${dev}/driver_override`))
        )?.trim();
        const originalOverride = overrideText === undefined || overrideText === "(null)" ? "" : overrideText;
        if (originalDriver === "vfio-pci") continue;

        // One undo per device, pushed before the first write and safe on any partial state:
        // off vfio-pci, the original override back (a bind to another driver fails while the
        // override names vfio-pci), then the original driver.
        undo.push({
          what: `${m.bdf} back to ${originalDriver ?? "no driver"}${originalOverride ? ` (driver_override ${originalOverride})` : ""}`,
          run: async () => {
            const now = await driverOf(m.bdf);
            if (now !== undefined && now !== originalDriver) await write(`${dev}/driver/unbind`, m.bdf);
            await write(`${dev}/driver_override`, originalOverride || "\n");
            if (originalDriver && (await driverOf(m.bdf)) !== originalDriver) {
              await write(`${SYSFS.pciDriver(originalDriver)}/bind`, m.bdf);
              await waitForDriver(m.bdf, originalDriver);
            }
          },
        });
        await write(`${dev}/driver_override`, "vfio-pci");
        if (originalDriver) await write(`${dev}/driver/unbind`, m.bdf);
        await write(SYSFS.driversProbe, m.bdf);
        await waitForDriver(m.bdf, "vfio-pci");
        changes.push({
          what: `driver of ${m.bdf}${m.bdf === bdf ? "" : ` (group ${d.iommuGroup} of ${bdf})`}`,
          before: originalDriver ?? "none",
          after: "vfio-pci",
        });
        log(`${m.bdf}: ${originalDriver ?? "no driver"} -> vfio-pci`);
      }
      qemuDevices.push({ host: bdf });
    }
  } catch (e) {
    const report = await restore();
    throw new BindError(
      `binding on ${fs.name} failed: ${(e as Error).message}; ` +
        (report.failed.length
          ? `could NOT restore: ${report.failed.join("; ")}`
          : `restored ${report.restored.length} change(s)`),
      report,
    );
  }
  return { changes, qemuDevices, restore };
}
