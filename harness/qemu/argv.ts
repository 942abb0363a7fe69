// Pure: turn a boot plan into QEMU's argv. Nothing here touches the host, so every line of the
// command can be unit-tested and stored verbatim with the run's artifacts.
import type { AccelName, Arch } from "../types.ts";

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
}

interface ArchTraits {
  binary: string;
  machine: (accel: AccelName) => string;
  cpu: (accel: AccelName) => string;
  console: string;
  /** pvpanic makes a guest panic exit QEMU with status 1, so a panic differs from a poweroff. */
  panicDevice: string[];
}

const archTraits: Record<Arch, ArchTraits> = {
  x86_64: {
    binary: "qemu-system-x86_64",
    machine: (accel) => `q35,accel=${accel}`,
    cpu: (accel) => (accel === "kvm" ? "host" : "max"),
    console: "ttyS0",
    panicDevice: ["-device", "pvpanic-pci"],
  },
  aarch64: {
    binary: "qemu-system-aarch64",
    machine: (accel) => `virt,accel=${accel}${accel === "kvm" ? ",gic-version=host" : ""}`,
    cpu: (accel) => (accel === "kvm" ? "host" : "max"),
    console: "ttyAMA0",
    panicDevice: ["-device", "pvpanic-pci"],
  },
};

export function qemuBinary(arch: Arch): string {
  return archTraits[arch].binary;
}

export function guestConsole(arch: Arch): string {
  return archTraits[arch].console;
}

/** The kernel command line vmrig always gives: console, and end the VM at once on a panic. */
export function baseCmdline(arch: Arch): string[] {
  return [`console=${archTraits[arch].console}`, "panic=-1"];
}

export function buildQemuArgv(plan: BootPlan): { binary: string; args: string[] } {
  const t = archTraits[plan.arch];
  const memMiB = Math.ceil(plan.memoryBytes / (1024 * 1024));
  const args: string[] = [
    "-nodefaults",
    "-machine", t.machine(plan.accel),
    "-cpu", t.cpu(plan.accel),
    "-m", `${memMiB}M`,
    "-smp", String(plan.cpus),
    "-display", "none",
    "-no-reboot",
    // The console goes to QEMU's stdout: vmrig tees it into console.log and scans it live.
    "-chardev", "stdio,id=con0,signal=off",
    "-serial", "chardev:con0",
    "-qmp", `unix:${plan.qmpSocket},server=on,wait=off`,
    ...t.panicDevice,
    "-action", "panic=exit-failure",
    "-kernel", plan.kernelImage,
    "-initrd", plan.initrd,
    "-append", plan.cmdline.join(" "),
    "-netdev", `user,id=n0,hostfwd=tcp:127.0.0.1:${plan.sshHostPort}-:22`,
    "-device", "virtio-net-pci,netdev=n0,romfile=",
  ];
  if (plan.virtioFs.length > 0) {
    // vhost-user needs guest RAM the backend can map: a shared memfd backend as the only NUMA node.
    args.push(
      "-object", `memory-backend-memfd,id=mem,size=${memMiB}M,share=on`,
      "-numa", "node,memdev=mem",
    );
  }
  plan.virtioFs.forEach((fs, i) => {
    const props = [`chardev=vfs${i}`, `tag=${fs.tag}`, `queue-size=${fs.queueSize}`];
    if (fs.iommuPlatform) props.push("iommu_platform=on");
    args.push("-chardev", `socket,id=vfs${i},path=${fs.socketPath}`, "-device", `vhost-user-fs-pci,${props.join(",")}`);
  });
  return { binary: t.binary, args };
}

/** Shell-quoted one-line form of the command, as stored in qemu-cmdline.txt. */
export function formatCommandLine(binary: string, args: string[]): string {
  const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [binary, ...args].map(quote).join(" ");
}
