// Pure: turn a boot plan into QEMU's argv. Nothing here touches the host, so every line of the
// command can be unit-tested and stored verbatim with the run's artifacts.
import type { AccelName, Arch } from "../types.ts";
import { archRecord, TCG_PAGE_ZEROING } from "../arch.ts";

export interface VirtioFsDevice {
  tag: string;
  /** vhost-user socket QEMU connects to (virtiofsd's, or the ACCESS_PLATFORM relay's). */
  socketPath: string;
  queueSize: number;
  /** Ask for VIRTIO_F_ACCESS_PLATFORM so the guest maps buffers through the DMA API (swiotlb). */
  iommuPlatform: boolean;
}

export interface BootPlan {
  arch: Arch;
  accel: AccelName;
  memoryBytes: number;
  cpus: number;
  kernelImage: string;
  initrd: string;
  cmdline: string[];
  virtioFs: VirtioFsDevice[];
  /** Host port forwarded to the guest's sshd; 0 lets QEMU pick one (read back through QMP). */
  sshHostPort: number;
  qmpSocket: string;
  /** Where QEMU itself writes every byte of the serial console (console.log). */
  consoleLog: string;
  /** Guest RAM backend; default: a shared memfd when virtio-fs needs one, else anonymous RAM. */
  memoryBackend?: MemoryBackendPlan;
  /** virtio-mem devices on top of `memoryBytes`. */
  virtioMem?: VirtioMemDevice[];
  /** Devices passed through with VFIO. */
  vfio?: VfioDevicePlan[];
  /** An emulated IOMMU in front of the PCI devices (a level-1 guest that is itself a VFIO host). */
  viommu?: "intel";
  /** Extra `-device` values as written (e.g. the emulated NIC a level-1 guest passes on). */
  extraDevices?: string[];
  /** The QEMU build that runs it (a row's `qemu:`); default: the host's qemu-system-<arch>. */
  qemu?: QemuCommand;
  /**
   * A guest panic (pvpanic) ends QEMU ("exit", default) or pauses it for a debugger ("pause",
   * `--keep-failed`): then `eventsSocket` is a second QMP monitor that tells vmrig of the panic.
   */
  onPanic?: { action: "exit" } | { action: "pause"; eventsSocket: string };
}

export type MemoryBackendPlan = { kind: "memfd" } | { kind: "file"; path: string };
export interface VirtioMemDevice {
  id: string;
  sizeBytes: number;
  blockBytes: number;
  requestedBytes: number;
}
/** A PCI device by host address, or a mediated device by its sysfs path. */
export type VfioDevicePlan = { host: string } | { sysfsdev: string };

/** How to start one QEMU build. */
export interface QemuCommand {
  /** What is executed: QEMU itself, or the private loader that runs it. */
  argv0: string;
  /** Arguments before QEMU's own: the loader's options, QEMU's path and its -L firmware directories. */
  prefixArgs: string[];
  /** Environment it needs (QEMU_MODULE_DIR for a private build). */
  env: Record<string, string>;
  /** "11.1.3 (Debian 1:11.1.3+ds-1~bpo13+1)", as `--version` says it. */
  version: string;
  /** "host", or "debian trixie-backports qemu-system-x86 1:11.1.3+ds-1~bpo13+1". */
  source: string;
}

/** Pure: the command line as a shell runs it ("env K=V loader ... qemu ARGS"). */
export function qemuInvocation(cmd: QemuCommand, args: readonly string[]): { binary: string; args: string[] } {
  const env = Object.entries(cmd.env).map(([k, v]) => `${k}=${v}`);
  return env.length
    ? { binary: "env", args: [...env, cmd.argv0, ...cmd.prefixArgs, ...args] }
    : { binary: cmd.argv0, args: [...cmd.prefixArgs, ...args] };
}

export function qemuBinary(arch: Arch): string {
  return archRecord(arch).qemu.binary;
}

/** The machine and CPU options for an accelerator: `-machine ... -cpu ...`. */
export function machineArgs(arch: Arch, accel: AccelName): string[] {
  const { qemu } = archRecord(arch);
  return ["-machine", qemu.machine(accel), "-cpu", qemu.cpu(accel)];
}

export function guestConsole(arch: Arch): string {
  return archRecord(arch).console;
}

/**
 * The kernel command line vmrig always gives: console, end the VM at once on a panic, the TCG words, and under TCG
 * page zeroing unless the scenario turned it off to see what the kernel's own config does.
 */
export function baseCmdline(arch: Arch, accel: AccelName, tcgPageZeroing = true): string[] {
  const a = archRecord(arch);
  const tcg = accel === "tcg" ? [...a.tcgCmdline, ...(tcgPageZeroing ? [TCG_PAGE_ZEROING] : [])] : [];
  return [`console=${a.console}`, "panic=-1", ...tcg];
}

export function buildQemuArgv(plan: BootPlan): { binary: string; args: string[] } {
  const a = archRecord(plan.arch);
  const t = a.qemu;
  const memMiB = Math.ceil(plan.memoryBytes / (1024 * 1024));
  const args: string[] = [
    "-nodefaults",
    // An emulated intel-iommu wants the split irqchip (interrupt remapping); TCG accepts it as well.
    "-machine",
    plan.viommu === "intel" ? `${t.machine(plan.accel)},kernel-irqchip=split` : t.machine(plan.accel),
    "-cpu",
    t.cpu(plan.accel),
    "-m",
    memoryOption(plan.memoryBytes, plan.virtioMem),
    "-smp",
    String(plan.cpus),
    "-display",
    "none",
    "-no-reboot",
    // QEMU logs every console byte to console.log itself; vmrig tails that file. The 16550
    // drops a byte its chardev write refuses (EAGAIN: a Node stdio socketpair fills after ~280
    // one-byte writes), so stdout is /dev/null, which never refuses one. stdin: writeConsole.
    "-chardev",
    `stdio,id=con0,signal=off,logfile=${qemuOptionValue(plan.consoleLog)},logappend=off`,
    "-serial",
    "chardev:con0",
    "-qmp",
    `unix:${plan.qmpSocket},server=on,wait=off`,
    // A vIOMMU covers only the PCI devices created after it.
    ...(plan.viommu === "intel" ? ["-device", "intel-iommu,intremap=on,caching-mode=on"] : []),
    ...a.panicDevice,
    ...panicArgs(plan.onPanic),
    "-kernel",
    plan.kernelImage,
    "-initrd",
    plan.initrd,
    "-append",
    plan.cmdline.join(" "),
    "-netdev",
    `user,id=n0,hostfwd=tcp:127.0.0.1:${plan.sshHostPort}-:22`,
    "-device",
    "virtio-net-pci,netdev=n0,romfile=",
  ];
  // vhost-user needs guest RAM the backend can map: a shared memfd backend as the only NUMA node.
  const backend = plan.memoryBackend ?? (plan.virtioFs.length > 0 ? { kind: "memfd" as const } : undefined);
  if (backend) args.push("-object", memoryBackendObject("mem", backend, `${memMiB}M`), "-numa", "node,memdev=mem");
  args.push(...virtioMemArgs(plan.virtioMem ?? [], backend !== undefined), ...vfioArgs(plan.vfio ?? []));
  for (const d of plan.extraDevices ?? []) args.push("-device", d);
  plan.virtioFs.forEach((fs, i) => {
    const props = [`chardev=vfs${i}`, `tag=${fs.tag}`, `queue-size=${fs.queueSize}`];
    if (fs.iommuPlatform) props.push("iommu_platform=on");
    args.push("-chardev", `socket,id=vfs${i},path=${fs.socketPath}`, "-device", `vhost-user-fs-pci,${props.join(",")}`);
  });
  return plan.qemu ? qemuInvocation(plan.qemu, args) : { binary: t.binary, args };
}

/** What a guest panic does to QEMU; a paused guest's panic arrives as a GUEST_PANICKED event. */
export function panicArgs(onPanic: BootPlan["onPanic"]): string[] {
  if (onPanic?.action !== "pause") return ["-action", "panic=exit-failure"];
  // A second monitor only for events: the first serves short-lived connections one at a time.
  return ["-action", "panic=pause", "-qmp", `unix:${onPanic.eventsSocket},server=on,wait=off`];
}

function memoryBackendObject(id: string, b: MemoryBackendPlan, size: string): string {
  return b.kind === "memfd"
    ? `memory-backend-memfd,id=${id},size=${size},share=on`
    : `memory-backend-file,id=${id},mem-path=${b.path},size=${size},share=on`;
}

/** `-m`: RAM in MiB, with maxmem room for virtio-mem devices. */
export function memoryOption(memoryBytes: number, virtioMem: readonly VirtioMemDevice[] = []): string {
  const MiB = 1024 * 1024;
  const ram = Math.ceil(memoryBytes / MiB);
  if (virtioMem.length === 0) return `${ram}M`;
  return `${ram}M,maxmem=${ram + Math.ceil(virtioMem.reduce((n, d) => n + d.sizeBytes, 0) / MiB)}M`;
}

/** virtio-mem devices, each on its own backend; `shared` when guest RAM must be mappable by a vhost-user backend. */
export function virtioMemArgs(devices: readonly VirtioMemDevice[], shared: boolean): string[] {
  // reserve=off: unplugged blocks cost no swap/commit reservation (virtio-mem's own advice).
  return devices.flatMap((d) => [
    "-object",
    `memory-backend-${shared ? "memfd" : "ram"},id=${d.id}-mem,size=${qemuSize(d.sizeBytes)},` +
      `reserve=off${shared ? ",share=on" : ""}`,
    "-device",
    `virtio-mem-pci,id=${d.id},memdev=${d.id}-mem,block-size=${qemuSize(d.blockBytes)},` +
      `requested-size=${qemuSize(d.requestedBytes)}`,
  ]);
}

/**
 * vfio-pci devices, each with id=hostdevN so `info pci` names it whatever its IDs (an mdev has
 * no sysfs config to read them from).
 */
export function vfioArgs(devices: readonly VfioDevicePlan[]): string[] {
  return devices.flatMap((v, i) => [
    "-device",
    `${"host" in v ? `vfio-pci,host=${v.host}` : `vfio-pci,sysfsdev=${v.sysfsdev}`},id=${vfioDeviceId(i)}`,
  ]);
}

export const vfioDeviceId = (i: number): string => `hostdev${i}`;

/** Bytes as QEMU's size syntax: the largest exact unit ("2M", "1G"), else plain bytes. */
export function qemuSize(bytes: number): string {
  for (const [unit, f] of [
    ["T", 1024 ** 4],
    ["G", 1024 ** 3],
    ["M", 1024 ** 2],
    ["K", 1024],
  ] as const) {
    if (bytes >= f && bytes % f === 0) return `${bytes / f}${unit}`;
  }
  return String(bytes);
}

/** Pure: a value inside a QEMU option list, where a comma is written twice. */
export function qemuOptionValue(value: string): string {
  return value.replaceAll(",", ",,");
}

/** Shell-quoted one-line form of the command, as stored in qemu-cmdline.txt. */
export function formatCommandLine(binary: string, args: string[]): string {
  const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [binary, ...args].map(quote).join(" ");
}

/** Pure: the words of a line formatCommandLine wrote (bare words and '...' with '\'' inside), for qemu-cmdline.txt. */
export function parseCommandLine(line: string): string[] {
  const words: string[] = [];
  const re = /\s*((?:[^\s'\\]+|'[^']*'|\\')+)/y;
  let at = 0;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    at = re.lastIndex;
    words.push(m[1]!.replace(/'([^']*)'|\\(')/g, (_all, quoted: string | undefined, esc: string) => quoted ?? esc));
  }
  if (line.slice(at).trim())
    throw new Error(`not a command line vmrig wrote: ${JSON.stringify(line.slice(at, at + 40))}`);
  return words;
}
