// A fake VFIO host: a sysfs/procfs tree in a temp dir laid out as the kernel lays it out, and a
// HostFs that plays the kernel's part for the writes binding makes (driver_override, unbind,
// bind, drivers_probe, mdev create/remove) by moving the `driver` symlinks in the tree.
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  existsSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { localHostFs, type HostFs } from "../../harness/vfio/host-fs.ts";

export interface FakePciDevice {
  bdf: string;
  driver?: string;
  group: number;
  vendor?: string;
  device?: string;
  /** PCI class, e.g. 0x010802 (NVMe), 0x060400 (bridge). */
  class?: string;
}

export interface FakeHostSpec {
  devices: FakePciDevice[];
  /** Drivers that exist (bind/unbind files); vfio-pci is added unless `noVfioPci`. */
  drivers?: string[];
  noVfioPci?: boolean;
  dmaEntryLimit?: number | null;
  iommu?: boolean;
  lockedBytes?: number | "unlimited";
  mountinfo?: string;
  /** Other files ("/proc/net/route") and symlinks ("/sys/class/net/eth0" -> target) of the host. */
  files?: Record<string, string>;
  links?: Record<string, string>;
  mdev?: Array<{ parent: string; types: Record<string, number> }>;
}

export interface FakeHost {
  root: string;
  fs: HostFs;
  /** Every write the "kernel" saw, in order. */
  writes: Array<{ path: string; text: string }>;
  driverOf(bdf: string): string | undefined;
  overrideOf(bdf: string): string;
  read(p: string): string;
  /** Make the next write to a path matching `re` fail with `message`, or never answer. */
  failNext(re: RegExp, how: { error: string } | "hang"): void;
  cleanup(): void;
}

export function fakeVfioHost(spec: FakeHostSpec, opts: { uid?: number } = {}): FakeHost {
  const root = mkdtempSync(path.join(os.tmpdir(), "vmrig-fake-sysfs-"));
  const at = (p: string) => path.join(root, p);
  const put = (p: string, text: string) => {
    mkdirSync(path.dirname(at(p)), { recursive: true });
    writeFileSync(at(p), text);
  };
  const drivers = new Set([
    ...(spec.drivers ?? []),
    ...spec.devices.flatMap((d) => (d.driver ? [d.driver] : [])),
    ...(spec.noVfioPci ? [] : ["vfio-pci"]),
  ]);
  for (const d of drivers) {
    put(`/sys/bus/pci/drivers/${d}/bind`, "");
    put(`/sys/bus/pci/drivers/${d}/unbind`, "");
  }
  put("/sys/bus/pci/drivers_probe", "");
  mkdirSync(at("/sys/kernel/iommu_groups"), { recursive: true });
  mkdirSync(at("/sys/class/iommu"), { recursive: true });
  /** Which driver a device binds to when probed without an override. */
  const natural = new Map<string, string | undefined>();
  for (const d of spec.devices) {
    const dev = `/sys/bus/pci/devices/${d.bdf}`;
    put(`${dev}/vendor`, `${d.vendor ?? "0x8086"}\n`);
    put(`${dev}/device`, `${d.device ?? "0x1234"}\n`);
    put(`${dev}/class`, `${d.class ?? "0x020000"}\n`);
    put(`${dev}/driver_override`, "(null)\n");
    natural.set(d.bdf, d.driver);
    if (spec.iommu !== false) {
      mkdirSync(at(`/sys/kernel/iommu_groups/${d.group}/devices`), { recursive: true });
      symlinkSync(
        `../../../../devices/pci0000:00/${d.bdf}`,
        at(`/sys/kernel/iommu_groups/${d.group}/devices/${d.bdf}`),
      );
      symlinkSync(`../../../kernel/iommu_groups/${d.group}`, at(`${dev}/iommu_group`));
    }
    if (d.driver) symlinkSync(`../../../bus/pci/drivers/${d.driver}`, at(`${dev}/driver`));
  }
  if (spec.iommu !== false) mkdirSync(at("/sys/class/iommu/dmar0"), { recursive: true });
  if (spec.dmaEntryLimit !== null)
    put("/sys/module/vfio_iommu_type1/parameters/dma_entry_limit", `${spec.dmaEntryLimit ?? 65535}\n`);
  const locked = spec.lockedBytes ?? 8 * 1024 * 1024;
  put(
    "/proc/self/limits",
    "Limit                     Soft Limit           Hard Limit           Units     \n" +
      `Max locked memory         ${locked}              ${locked}              bytes     \n`,
  );
  put("/proc/self/mountinfo", spec.mountinfo ?? "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n");
  put("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1\n");
  for (const [p, text] of Object.entries(spec.files ?? {})) put(p, text);
  for (const [p, target] of Object.entries(spec.links ?? {})) {
    mkdirSync(path.dirname(at(p)), { recursive: true });
    symlinkSync(target, at(p));
  }
  for (const m of spec.mdev ?? []) {
    for (const [type, n] of Object.entries(m.types)) {
      put(`/sys/class/mdev_bus/${m.parent}/mdev_supported_types/${type}/available_instances`, `${n}\n`);
      put(`/sys/class/mdev_bus/${m.parent}/mdev_supported_types/${type}/create`, "");
    }
  }

  const driverOf = (bdf: string) => {
    try {
      return path.basename(readlinkSync(at(`/sys/bus/pci/devices/${bdf}/driver`)));
    } catch {
      return undefined;
    }
  };
  const overrideOf = (bdf: string) => readFileSync(at(`/sys/bus/pci/devices/${bdf}/driver_override`), "utf8").trim();
  const bindTo = (bdf: string, driver: string) => {
    if (driverOf(bdf)) throw new Error("EBUSY: device already has a driver");
    if (!drivers.has(driver)) throw new Error("ENODEV");
    const o = overrideOf(bdf);
    // The kernel matches driver_override first: another driver's bind file refuses the device.
    if (o !== "(null)" && o !== driver) throw new Error(`ENODEV: ${driver} does not match driver_override ${o}`);
    symlinkSync(`../../../bus/pci/drivers/${driver}`, at(`/sys/bus/pci/devices/${bdf}/driver`));
  };

  const writes: FakeHost["writes"] = [];
  const failures: Array<{ re: RegExp; how: { error: string } | "hang" }> = [];
  const real = localHostFs(root, { uid: () => opts.uid ?? 0, name: "fake host" });
  const kernel = async (p: string, text: string): Promise<void> => {
    writes.push({ path: p, text });
    const f = failures.findIndex((x) => x.re.test(p));
    if (f >= 0) {
      const how = failures.splice(f, 1)[0]!.how;
      if (how === "hang") return new Promise(() => {});
      throw new Error(how.error);
    }
    let m: RegExpExecArray | null;
    if (/^\/sys\/bus\/pci\/devices\/([^/]+)\/driver_override$/.test(p)) {
      writeFileSync(at(p), text.trim() === "" ? "(null)\n" : `${text.trim()}\n`);
    } else if ((m = /^\/sys\/bus\/pci\/devices\/([^/]+)\/driver\/unbind$/.exec(p))) {
      if (m[1] !== text.trim()) throw new Error("ENODEV: wrong device");
      if (!driverOf(m[1])) throw new Error("ENOENT: no driver");
      unlinkSync(at(`/sys/bus/pci/devices/${m[1]}/driver`));
    } else if ((m = /^\/sys\/bus\/pci\/drivers\/([^/]+)\/bind$/.exec(p))) {
      bindTo(text.trim(), m[1]!);
    } else if ((m = /^\/sys\/bus\/pci\/drivers\/([^/]+)\/unbind$/.exec(p))) {
      if (driverOf(text.trim()) !== m[1]) throw new Error("ENODEV");
      unlinkSync(at(`/sys/bus/pci/devices/${text.trim()}/driver`));
    } else if (p === "/sys/bus/pci/drivers_probe") {
      const bdf = text.trim();
      if (driverOf(bdf)) return;
      const o = overrideOf(bdf);
      const want = o !== "(null)" ? o : natural.get(bdf);
      if (want && drivers.has(want)) bindTo(bdf, want);
    } else if ((m = /^\/sys\/class\/mdev_bus\/([^/]+)\/mdev_supported_types\/([^/]+)\/create$/.exec(p))) {
      const uuid = text.trim();
      if (existsSync(at(`/sys/bus/mdev/devices/${uuid}`))) throw new Error("EEXIST");
      put(`/sys/bus/mdev/devices/${uuid}/remove`, "");
      const avail = `/sys/class/mdev_bus/${m[1]}/mdev_supported_types/${m[2]}/available_instances`;
      writeFileSync(at(avail), `${Number(readFileSync(at(avail), "utf8")) - 1}\n`);
    } else if ((m = /^\/sys\/bus\/mdev\/devices\/([^/]+)\/remove$/.exec(p))) {
      rmSync(at(`/sys/bus/mdev/devices/${m[1]}`), { recursive: true });
    } else {
      await real.write(p, text);
    }
  };
  const fs: HostFs = { ...real, write: kernel };
  return {
    root,
    fs,
    writes,
    driverOf,
    overrideOf,
    read: (p) => readFileSync(at(p), "utf8"),
    failNext: (re, how) => failures.push({ re, how }),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}
