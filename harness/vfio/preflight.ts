// Preflight: everything about the VFIO host that decides whether a scenario's passthrough can
// work, read before anything is bound or booted. It only reads; `problems` are what make vmrig
// refuse the run (exit 2, nothing changed), `notes` are worth printing but not fatal.
import path from "node:path";
import type { AccelName, Arch, GuestMemorySpec, VfioDeviceSpec, VfioSpec } from "../types.ts";
import { formatSize } from "../util/size.ts";
import type { HostFs } from "./host-fs.ts";
import {
  DEFAULT_DMA_ENTRY_LIMIT,
  maxMemslots,
  predictDmaMappingBudget,
  virtioMemSections,
  x86DeviceMemoryBase,
  type DmaMappingBudget,
} from "./mapping-budget.ts";

export const SYSFS = {
  pciDevice: (bdf: string) => `/sys/bus/pci/devices/${bdf}`,
  pciDriver: (name: string) => `/sys/bus/pci/drivers/${name}`,
  driversProbe: "/sys/bus/pci/drivers_probe",
  iommuGroups: "/sys/kernel/iommu_groups",
  iommuUnits: "/sys/class/iommu",
  dmaEntryLimit: "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit",
  type1Module: "/sys/module/vfio_iommu_type1",
  mdevParent: (parent: string) => `/sys/class/mdev_bus/${parent}`,
  mdevType: (parent: string, type: string) => `/sys/class/mdev_bus/${parent}/mdev_supported_types/${type}`,
  mdevDevice: (uuid: string) => `/sys/bus/mdev/devices/${uuid}`,
} as const;

/** Drivers a device may have in a group VFIO uses without vmrig touching it (the kernel's own list, plus none). */
const IDLE_DRIVERS = new Set(["vfio-pci", "pci-stub"]);
/** PCI class 0x0604xx: a PCI-to-PCI bridge; the kernel lets pcieport keep bridges in a VFIO group. */
const isBridgeClass = (cls: string | undefined) => cls !== undefined && /^0x0604/.test(cls.trim());

export interface GroupMember {
  bdf: string;
  /** The driver bound now, if any. */
  driver?: string;
  /** The scenario names this device (vmrig binds it to vfio-pci for the run). */
  named: boolean;
  bridge: boolean;
  /** What vmrig will do with it. */
  action: "bind to vfio-pci" | "already vfio-pci" | "leave (idle)" | "leave (bridge)" | "blocks the group";
}

export interface DevicePreflight {
  device: VfioDeviceSpec;
  /** For messages: the BDF, or "mdev mtty-2 on mtty". */
  label: string;
  exists: boolean;
  vendor?: string;
  deviceId?: string;
  driver?: string;
  iommuGroup?: number;
  members: GroupMember[];
  /** mdev: instances the parent can still create. */
  availableInstances?: number;
  /** mdev: every type the parent offers (mdev_supported_types). */
  parentTypes?: string[];
}

export interface VfioPreflight {
  host: string;
  uid: number;
  iommu: { groups: number; units: string[] };
  devices: DevicePreflight[];
  vfioPciDriver: boolean;
  lockedMemory: {
    limitBytes: number | "unlimited" | undefined;
    pinnedBytes: number;
    enough: boolean | "root" | "unknown";
  };
  dmaEntryLimit: { current?: number; requested?: number; used?: number; moduleLoaded: boolean };
  memoryBackend?: { path: string; dax: "yes" | "per-file" | "no" | "unknown"; mount?: string; options?: string };
  budget: DmaMappingBudget;
  /** Refusals: each makes vmrig stop before anything changes. */
  problems: string[];
  notes: string[];
  /** Anything to change at all (binding, limit, mdev): root is needed only then. */
  needsChanges: boolean;
}

export interface PreflightInput {
  vfio: VfioSpec;
  memory?: GuestMemorySpec;
  /** RAM of the guest that gets the devices (without virtio-mem). */
  memoryBytes: number;
  accel: AccelName;
  arch: Arch;
}

export async function vfioPreflight(fs: HostFs, input: PreflightInput): Promise<VfioPreflight> {
  const problems: string[] = [];
  const notes: string[] = [];
  const uid = await fs.uid();
  const iommu = await checkIommu(fs, input.vfio, problems);
  const vfioPciDriver = await fs.exists(SYSFS.pciDriver("vfio-pci"));
  const devices = await preflightDevices(fs, input.vfio, problems);
  const needsBinding = devices.some((d) => d.members.some((m) => m.action === "bind to vfio-pci"));
  if (needsBinding && !vfioPciDriver)
    problems.push(
      `the vfio-pci driver is not loaded on ${fs.name}: run modprobe vfio-pci (vmrig does not load modules)`,
    );
  const dmaEntryLimit = await readDmaEntryLimit(fs, input.vfio.dmaEntryLimit, problems);
  const budget = predictBudget(input, dmaEntryLimit);
  if (budget.verdict === "exceeds") {
    notes.push(`DMA mappings: ${budget.summary}; QEMU up to 10.1 warns and runs on, 10.2 refuses the device`);
  }
  const lockedMemory = await checkLockedMemory(fs, input, uid, problems, notes);
  const memoryBackend = await checkMemoryBackend(fs, input.memory?.backend, problems, notes);
  const changes = changesNeedingRoot(input.vfio, needsBinding, dmaEntryLimit);
  const needsChanges = changes.length > 0;
  if (needsChanges && uid !== 0) {
    problems.push(
      `${changes.join(", ")} needs root on ${fs.name} (uid ${uid}): ` +
        "run vmrig as root, or do it yourself and drop it from the scenario",
    );
  }

  return {
    host: fs.name,
    uid,
    iommu,
    devices,
    vfioPciDriver,
    lockedMemory,
    dmaEntryLimit,
    ...(memoryBackend ? { memoryBackend } : {}),
    budget,
    problems,
    notes,
    needsChanges,
  };
}

/** IOMMU groups and units; a PCI passthrough with no group at all is refused here. */
async function checkIommu(fs: HostFs, vfio: VfioSpec, problems: string[]): Promise<VfioPreflight["iommu"]> {
  const groupDirs = (await fs.list(SYSFS.iommuGroups)) ?? [];
  const units = (await fs.list(SYSFS.iommuUnits)) ?? [];
  const wantsPci = vfio.devices.some((d) => d.kind === "pci");
  if (wantsPci && groupDirs.length === 0) {
    const cmdline = (await fs.readText("/proc/cmdline"))?.trim() ?? "";
    problems.push(
      `no IOMMU on ${fs.name}: ${SYSFS.iommuGroups} is empty` +
        `${units.length ? "" : " and no IOMMU unit is registered"}; ` +
        "enable it in firmware (VT-d / AMD-Vi) and on the kernel command line " +
        `(intel_iommu=on${cmdline.includes("intel_iommu=on") ? ", already given" : ""})`,
    );
  }
  return { groups: groupDirs.length, units };
}

/** Each device the scenario names, in order: a PCI device with its IOMMU group, or an mdev. */
async function preflightDevices(fs: HostFs, vfio: VfioSpec, problems: string[]): Promise<DevicePreflight[]> {
  const named = new Set(vfio.devices.flatMap((d) => (d.kind === "pci" ? [d.host] : [])));
  const forced = new Set(vfio.devices.flatMap((d) => (d.kind === "pci" && d.force ? [d.host] : [])));
  for (const [bdf, role] of await hostCriticalDevices(fs)) {
    if (named.has(bdf) && !forced.has(bdf))
      problems.push(
        `PCI device ${bdf} carries ${role} on ${fs.name}: binding it to vfio-pci would take that from the host; ` +
          `if you mean it, write { host: "${bdf}", force: true }`,
      );
  }
  const devices: DevicePreflight[] = [];
  for (const d of vfio.devices) {
    devices.push(d.kind === "pci" ? await pciDevice(fs, d.host, named, problems) : await mdevDevice(fs, d, problems));
  }
  return devices;
}

/** vfio_iommu_type1's dma_entry_limit now, the one the scenario asks for, and the one the run will use. */
async function readDmaEntryLimit(
  fs: HostFs,
  requested: number | undefined,
  problems: string[],
): Promise<VfioPreflight["dmaEntryLimit"]> {
  const moduleLoaded = await fs.exists(SYSFS.type1Module);
  const currentText = await fs.readText(SYSFS.dmaEntryLimit);
  const current = currentText !== undefined && /^\d+\s*$/.test(currentText) ? Number(currentText) : undefined;
  if (requested !== undefined && current === undefined) {
    problems.push(
      `vfio.dmaEntryLimit is ${requested}, but ${SYSFS.dmaEntryLimit} is missing on ${fs.name}: ` +
        "load vfio_iommu_type1 (modprobe vfio_iommu_type1) first",
    );
  }
  const used = requested ?? current;
  return {
    ...(current !== undefined ? { current } : {}),
    ...(requested !== undefined ? { requested } : {}),
    ...(used !== undefined ? { used } : {}),
    moduleLoaded,
  };
}

/** The DMA mapping budget of the guest's virtio-mem layout against the limit the run will use. */
export function predictBudget(input: PreflightInput, limit: VfioPreflight["dmaEntryLimit"]): DmaMappingBudget {
  const virtioMem = input.memory?.virtioMem ?? [];
  const base = input.arch === "x86_64" ? x86DeviceMemoryBase(input.memoryBytes) : 0;
  return predictDmaMappingBudget({
    sections: virtioMemSections(
      virtioMem.map((v) => ({ id: v.id, sizeBytes: v.sizeBytes, blockBytes: v.blockBytes })),
      base,
    ),
    maxMemslots: maxMemslots(input.accel, input.arch),
    limit: limit.used,
    limitUnknownReason: limit.moduleLoaded
      ? `${SYSFS.dmaEntryLimit} is unreadable`
      : `vfio_iommu_type1 is not loaded yet; its default would be ${DEFAULT_DMA_ENTRY_LIMIT}`,
  });
}

/** RLIMIT_MEMLOCK against what VFIO pins now; a note when virtio-mem could grow past it later. */
async function checkLockedMemory(
  fs: HostFs,
  input: PreflightInput,
  uid: number,
  problems: string[],
  notes: string[],
): Promise<VfioPreflight["lockedMemory"]> {
  const virtioMem = input.memory?.virtioMem ?? [];
  // VFIO pins every page it maps: guest RAM, plus whatever virtio-mem plugs (at most its size).
  const pinnedBytes = input.memoryBytes + virtioMem.reduce((n, v) => n + v.requestedBytes, 0);
  const limitBytes = parseLockedLimit(await fs.readText("/proc/self/limits"));
  const enough = lockedMemoryEnough(uid, limitBytes, pinnedBytes);
  if (enough === false) {
    problems.push(
      `locked-memory limit is ${formatSize(limitBytes as number)} ` +
        `but VFIO pins the guest's ${formatSize(pinnedBytes)}: ` +
        `raise it (ulimit -l ${Math.ceil(pinnedBytes / 1024)}, or memlock in /etc/security/limits.conf) ` +
        "or run as root",
    );
  }
  const growth = virtioMem.reduce((n, v) => n + v.sizeBytes - v.requestedBytes, 0);
  if (enough === true && limitBytes !== "unlimited" && growth > 0 && (limitBytes as number) < pinnedBytes + growth) {
    notes.push(
      `locked-memory limit ${formatSize(limitBytes as number)} covers the guest now, ` +
        `not once virtio-mem plugs all ${formatSize(pinnedBytes + growth)}`,
    );
  }
  return { limitBytes, pinnedBytes, enough };
}

/** Whether the locked-memory limit covers `pinnedBytes`. */
export function lockedMemoryEnough(
  uid: number,
  limitBytes: VfioPreflight["lockedMemory"]["limitBytes"],
  pinnedBytes: number,
): VfioPreflight["lockedMemory"]["enough"] {
  if (uid === 0) return "root"; // CAP_IPC_LOCK: type1 does not count against RLIMIT_MEMLOCK
  if (limitBytes === undefined) return "unknown";
  return limitBytes === "unlimited" || limitBytes >= pinnedBytes;
}

/** A file memory backend on fs-DAX: VFIO cannot pin its pages. */
async function checkMemoryBackend(
  fs: HostFs,
  backend: GuestMemorySpec["backend"],
  problems: string[],
  notes: string[],
): Promise<VfioPreflight["memoryBackend"]> {
  if (backend?.kind !== "file") return undefined;
  const mount = findMount(await fs.readText("/proc/self/mountinfo"), backend.path);
  const dax = !mount ? "unknown" : daxOf(mount.options);
  if (dax === "yes") {
    problems.push(
      `memory.backend file:${backend.path} is on a filesystem-DAX mount (${mount!.mountPoint}, ${mount!.options}): ` +
        "VFIO cannot pin fs-DAX pages long term (vfio_iommu_type1 returns EOPNOTSUPP), " +
        "so passthrough would fail; use memfd or a non-DAX file",
    );
  } else if (dax === "per-file") {
    notes.push(
      `memory.backend file:${backend.path} is on a dax=inode mount (${mount!.mountPoint}): ` +
        "if the file has the DAX attribute, VFIO cannot pin it",
    );
  }
  return { path: backend.path, dax, ...(mount ? { mount: mount.mountPoint, options: mount.options } : {}) };
}

/** What the run would change on the host, in words; empty when it changes nothing (and needs no root). */
export function changesNeedingRoot(
  vfio: VfioSpec,
  needsBinding: boolean,
  limit: Pick<VfioPreflight["dmaEntryLimit"], "current" | "requested">,
): string[] {
  const { current, requested } = limit;
  return [
    needsBinding ? "binding devices to vfio-pci" : "",
    requested !== undefined && requested !== current ? `setting dma_entry_limit to ${requested}` : "",
    vfio.devices.some((d) => d.kind === "mdev") ? "creating mediated devices" : "",
  ].filter(Boolean);
}

async function pciDevice(fs: HostFs, bdf: string, named: Set<string>, problems: string[]): Promise<DevicePreflight> {
  const dir = SYSFS.pciDevice(bdf);
  const base: DevicePreflight = { device: { kind: "pci", host: bdf }, label: bdf, exists: false, members: [] };
  if (!(await fs.exists(dir))) {
    const present = (await fs.list("/sys/bus/pci/devices")) ?? [];
    problems.push(
      `PCI device ${bdf} does not exist on ${fs.name} (no ${dir}; ${present.length} devices present` +
        `${present.length ? `, e.g. ${present.slice(0, 4).join(", ")}` : ""})`,
    );
    return base;
  }
  const driverOf = async (b: string) => basename(await fs.readLink(`${SYSFS.pciDevice(b)}/driver`));
  const groupLink = await fs.readLink(`${dir}/iommu_group`);
  const group = groupLink !== undefined ? Number(basename(groupLink)) : undefined;
  const out: DevicePreflight = {
    ...base,
    exists: true,
    ...optional("vendor", (await fs.readText(`${dir}/vendor`))?.trim()),
    ...optional("deviceId", (await fs.readText(`${dir}/device`))?.trim()),
    ...optional("driver", await driverOf(bdf)),
    ...(group !== undefined && Number.isInteger(group) ? { iommuGroup: group } : {}),
  };
  if (out.iommuGroup === undefined) {
    problems.push(`PCI device ${bdf} has no IOMMU group on ${fs.name}: the IOMMU is off or does not cover it`);
    return out;
  }
  const memberBdfs = (await fs.list(`${SYSFS.iommuGroups}/${out.iommuGroup}/devices`)) ?? [bdf];
  for (const m of memberBdfs) {
    const driver = await driverOf(m);
    const bridge = isBridgeClass(await fs.readText(`${SYSFS.pciDevice(m)}/class`));
    const isNamed = named.has(m);
    let action: GroupMember["action"];
    if (isNamed) action = driver === "vfio-pci" ? "already vfio-pci" : "bind to vfio-pci";
    else if (driver === undefined || IDLE_DRIVERS.has(driver)) action = "leave (idle)";
    else if (bridge) action = "leave (bridge)";
    else action = "blocks the group";
    out.members.push({ bdf: m, ...(driver ? { driver } : {}), named: isNamed, bridge, action });
  }
  const blocking = out.members.filter((m) => m.action === "blocks the group");
  if (blocking.length) {
    problems.push(
      `IOMMU group ${out.iommuGroup} of ${bdf} also holds ` +
        `${blocking.map((m) => `${m.bdf} (${m.driver}, in use)`).join(", ")}: ` +
        `VFIO needs the whole group; name ${blocking.length > 1 ? "them" : "it"} in vfio.devices too, ` +
        `or unbind ${blocking.length > 1 ? "them" : "it"} yourself ` +
        "(vmrig never touches a device the scenario does not name)",
    );
  }
  return out;
}

async function mdevDevice(
  fs: HostFs,
  d: Extract<VfioDeviceSpec, { kind: "mdev" }>,
  problems: string[],
): Promise<DevicePreflight> {
  const label = `mdev ${d.type} on ${d.parent}`;
  const base: DevicePreflight = { device: d, label, exists: false, members: [] };
  if (!(await fs.exists(SYSFS.mdevParent(d.parent)))) {
    const parents = (await fs.list("/sys/class/mdev_bus")) ?? [];
    const known = parents.length
      ? `parents: ${parents.join(", ")}`
      : "no mdev parents: load the vendor driver, e.g. the mtty sample";
    problems.push(`mdev parent ${d.parent} does not exist on ${fs.name} (${known})`);
    return base;
  }
  const typeDir = SYSFS.mdevType(d.parent, d.type);
  const parentTypes = (await fs.list(`${SYSFS.mdevParent(d.parent)}/mdev_supported_types`)) ?? [];
  if (!(await fs.exists(typeDir))) {
    problems.push(
      `mdev type ${d.type} is not offered by ${d.parent} on ${fs.name} (types: ${parentTypes.join(", ") || "none"})`,
    );
    return { ...base, parentTypes };
  }
  const available = Number((await fs.readText(`${typeDir}/available_instances`))?.trim());
  if (Number.isFinite(available) && available < 1)
    problems.push(`mdev type ${d.type} on ${d.parent} has no instances left to create`);
  return {
    ...base,
    exists: true,
    parentTypes,
    ...(Number.isFinite(available) ? { availableInstances: available } : {}),
  };
}

// ---- pure helpers --------------------------------------------------------------------------

const basename = (p: string | undefined) => (p ? path.posix.basename(p.trim()) : undefined);
const optional = <K extends string, V>(k: K, v: V | undefined) =>
  v === undefined || v === "" ? {} : ({ [k]: v } as Record<K, V>);

/** RLIMIT_MEMLOCK's soft limit from /proc/<pid>/limits. */
export function parseLockedLimit(limits: string | undefined): number | "unlimited" | undefined {
  const m = limits ? /^Max locked memory\s+(\S+)\s+\S+\s+bytes/m.exec(limits) : null;
  if (!m) return undefined;
  return m[1] === "unlimited" ? "unlimited" : Number(m[1]);
}

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  /** Per-mount and per-superblock options, joined. */
  options: string;
}

const BDF_IN_PATH = /\b[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\b/g;

/**
 * PCI devices the host itself depends on, with what for: the NIC of the default route and the
 * disk of the root filesystem, found through the sysfs links of the interface and the block
 * device (each path through the PCI tree names every device on the way, bridges included).
 */
export async function hostCriticalDevices(fs: HostFs): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const add = (link: string | undefined, role: string) => {
    for (const bdf of link?.match(BDF_IN_PATH) ?? []) if (!out.has(bdf)) out.set(bdf, role);
  };
  for (const iface of defaultRouteInterfaces(await fs.readText("/proc/net/route")))
    add(await fs.readLink(`/sys/class/net/${iface}`), `the default route (${iface})`);
  const root = rootDevice(await fs.readText("/proc/self/mountinfo"));
  if (root) add(await fs.readLink(`/sys/dev/block/${root}`), `the root filesystem (block ${root})`);
  return out;
}

/** Pure: interfaces of /proc/net/route's default routes (destination 0, the route up). */
export function defaultRouteInterfaces(route: string | undefined): string[] {
  return (route ?? "")
    .split("\n")
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === "00000000" && (parseInt(f[3] ?? "0", 16) & 1) === 1)
    .map((f) => f[0]!);
}

/** Pure: major:minor of the filesystem mounted at / in a mountinfo. */
export function rootDevice(mountinfo: string | undefined): string | undefined {
  const line = (mountinfo ?? "").split("\n").find((l) => l.split(" ")[4] === "/");
  return line?.split(" ")[2];
}

/** The mount that holds `file` (the longest mount point that is a prefix of it), from /proc/self/mountinfo. */
export function findMount(mountinfo: string | undefined, file: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const line of (mountinfo ?? "").split("\n")) {
    // id parent major:minor root mount-point mount-options [optional...] - fstype source super-options
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const f = left.split(" ");
    const r = right.split(" ");
    const mountPoint = unescapeMount(f[4] ?? "");
    const inside =
      mountPoint === "/" ||
      file === mountPoint ||
      file.startsWith(mountPoint.endsWith("/") ? mountPoint : `${mountPoint}/`);
    if (!inside || (best && best.mountPoint.length > mountPoint.length)) continue;
    best = { mountPoint, fsType: r[0] ?? "", options: `${f[5] ?? ""},${r[2] ?? ""}` };
  }
  return best;
}

const unescapeMount = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** fs-DAX from mount options: dax / dax=always for every file, dax=inode per file. */
export function daxOf(options: string): "yes" | "per-file" | "no" {
  const opts = options.split(",");
  if (opts.includes("dax") || opts.includes("dax=always")) return "yes";
  if (opts.includes("dax=inode")) return "per-file";
  return "no";
}

/** One device of the preflight, as lines. */
function deviceLines(d: DevicePreflight): string[] {
  if (!d.exists) return [`  ${d.label}: missing`];
  if (d.device.kind === "mdev") {
    // An mdev has no driver or group until vmrig creates it: what its parent offers is the fact.
    const left = d.availableInstances !== undefined ? `${d.availableInstances} instances available` : "";
    const offers = `${d.device.parent} offers ${d.parentTypes?.join(", ") || "no types"}`;
    return [`  ${d.label}: ${[left, offers].filter(Boolean).join("; ")}`];
  }
  const id = d.vendor && d.deviceId ? ` [${d.vendor.replace(/^0x/, "")}:${d.deviceId.replace(/^0x/, "")}]` : "";
  const group = d.iommuGroup !== undefined ? `, IOMMU group ${d.iommuGroup}` : "";
  return [
    `  ${d.label}${id}: driver ${d.driver ?? "none"}${group}`,
    ...d.members.map((m) => `    group member ${m.bdf}: driver ${m.driver ?? "none"} -> ${m.action}`),
  ];
}

/** The preflight as lines for the terminal and the results. */
export function formatPreflight(p: VfioPreflight): string[] {
  const lines = [`VFIO preflight on ${p.host}:`];
  lines.push(
    `  IOMMU: ${p.iommu.groups ? `${p.iommu.groups} groups` : "no groups"}` +
      `${p.iommu.units.length ? ` (${p.iommu.units.join(", ")})` : ""}`,
  );
  for (const d of p.devices) lines.push(...deviceLines(d));
  const lm = p.lockedMemory;
  const limit =
    lm.limitBytes === undefined ? "unknown" : lm.limitBytes === "unlimited" ? "unlimited" : formatSize(lm.limitBytes);
  const enough =
    lm.enough === "root"
      ? "root (not limited)"
      : lm.enough === true
        ? "enough"
        : lm.enough === false
          ? "NOT enough"
          : "unknown";
  lines.push(`  locked memory: limit ${limit}, guest pins ${formatSize(lm.pinnedBytes)}: ${enough}`);
  const l = p.dmaEntryLimit;
  lines.push(
    `  dma_entry_limit: ${l.current ?? (l.moduleLoaded ? "unreadable" : "vfio_iommu_type1 not loaded")}` +
      `${l.requested !== undefined ? ` -> ${l.requested} for the run` : ""}`,
  );
  lines.push(`  DMA mappings: ${p.budget.summary}`);
  if (p.memoryBackend)
    lines.push(
      `  memory backend ${p.memoryBackend.path}: fs-DAX ${p.memoryBackend.dax}` +
        `${p.memoryBackend.mount ? ` (mount ${p.memoryBackend.mount})` : ""}`,
    );
  for (const n of p.notes) lines.push(`  note: ${n}`);
  for (const x of p.problems) lines.push(`  REFUSED: ${x}`);
  return lines;
}
