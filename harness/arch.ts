// One record per guest architecture: everything vmrig must know that differs between x86_64
// and aarch64 (QEMU, console, kernel build, Debian names, toolchain, page sizes). Like kunit's
// qemu_configs or virtme's architectures: adding an architecture means adding a record here,
// not hunting ternaries across harness/.
import type { AccelName, Arch, PageSize } from "./types.ts";

export interface ArchRecord {
  arch: Arch;
  /** What people call it in messages ("run arm64 guests"). */
  displayName: string;
  /** Node's process.arch on a host of this architecture. */
  nodeArch: string;
  /** Debian's architecture name (Packages indexes, .deb file names). */
  debianArch: string;
  /** GNU triplet: cross-compiler prefix without the dash, and Debian's multiarch library directory. */
  gnuTriplet: string;
  /** Debian names cross packages with dashes: gcc-<this>, binutils-<this>. */
  crossPackageSuffix: string;
  /** The static libc a cross-built guest probe links against. */
  crossLibcPackage: string;
  /** glibc's dynamic loader file name, as Debian's libc6 ships it. */
  dynamicLoader: string;
  /** e_machine in an ELF header. */
  elfMachine: number;
  qemu: {
    binary: string;
    /** Debian's package holding `binary`. */
    debianPackage: string;
    machine: (accel: AccelName) => string;
    cpu: (accel: AccelName) => string;
  };
  /** The serial console the kernel writes to (console= on the command line). */
  console: string;
  /** Kernel command line words vmrig adds when the guest runs under TCG (a software CPU). */
  tcgCmdline: readonly string[];
  /** pvpanic makes a guest panic exit QEMU with status 1, so a panic differs from a poweroff. */
  panicDevice: string[];
  kernel: {
    /** The kernel's ARCH= for make. */
    makeArch: string;
    /** make target producing the boot image, and where it lands relative to the build dir. */
    target: string;
    imagePath: string;
  };
  /** Base page sizes kernels of this architecture can be built with. */
  pageSizes: readonly PageSize[];
  /** Debian's kernel flavour per page size; a missing size has no Debian kernel. */
  debianFlavours: Partial<Record<PageSize, string>>;
  /** KVM_CAP_NR_MEMSLOTS on current kernels: SHRT_MAX less the architecture's internal slots. */
  kvmMaxMemslots: number;
  /** Other spellings people write in a build spec (Debian's and the kernel's names). */
  aliases: readonly string[];
}

/**
 * TCG keeps the code it translated from a guest page until the guest CPU writes that page, and a vhost-user
 * backend (virtiofsd, the relay) writes file data into guest RAM behind its back: a page-cache page refilled
 * from virtio-fs into a frame that held code runs the old code. A kernel that zeroes pages it allocates writes
 * every frame first (Debian's kernels do by default), so every kernel vmrig runs under TCG is told to, unless
 * the scenario asks what the kernel's own config does (machine.tcgPageZeroing: false).
 */
export const TCG_PAGE_ZEROING = "init_on_alloc=1";

const ARCH_RECORDS: Record<Arch, ArchRecord> = {
  x86_64: {
    arch: "x86_64",
    displayName: "x86_64",
    nodeArch: "x64",
    debianArch: "amd64",
    gnuTriplet: "x86_64-linux-gnu",
    crossPackageSuffix: "x86-64-linux-gnu",
    crossLibcPackage: "libc6-dev-amd64-cross",
    dynamicLoader: "ld-linux-x86-64.so.2",
    elfMachine: 62,
    qemu: {
      binary: "qemu-system-x86_64",
      debianPackage: "qemu-system-x86",
      machine: (accel) => `q35,accel=${accel}`,
      cpu: (accel) => (accel === "kvm" ? "host" : "max"),
    },
    console: "ttyS0",
    // TCG derives every vCPU's TSC from one host clock, so it cannot skew; and 7.x's clocksource
    // watchdog can deadlock a TCG boot checking it (watchdog_check_skew waits with interrupts off
    // on a clock that only its own tick advances while the other vCPU cannot take the IPI).
    tcgCmdline: ["tsc=nowatchdog"],
    panicDevice: ["-device", "pvpanic-pci"],
    kernel: { makeArch: "x86_64", target: "bzImage", imagePath: "arch/x86/boot/bzImage" },
    pageSizes: ["4K"],
    debianFlavours: { "4K": "cloud-amd64" },
    kvmMaxMemslots: 32764,
    aliases: ["amd64"],
  },
  aarch64: {
    arch: "aarch64",
    displayName: "arm64",
    nodeArch: "arm64",
    debianArch: "arm64",
    gnuTriplet: "aarch64-linux-gnu",
    crossPackageSuffix: "aarch64-linux-gnu",
    crossLibcPackage: "libc6-dev-arm64-cross",
    dynamicLoader: "ld-linux-aarch64.so.1",
    elfMachine: 183,
    qemu: {
      binary: "qemu-system-aarch64",
      debianPackage: "qemu-system-arm",
      machine: (accel) => `virt,accel=${accel}${accel === "kvm" ? ",gic-version=host" : ""}`,
      cpu: (accel) => (accel === "kvm" ? "host" : "max"),
    },
    console: "ttyAMA0",
    tcgCmdline: [],
    panicDevice: ["-device", "pvpanic-pci"],
    kernel: { makeArch: "arm64", target: "Image", imagePath: "arch/arm64/boot/Image" },
    pageSizes: ["4K", "16K", "64K"],
    debianFlavours: { "4K": "arm64", "16K": "arm64-16k" },
    kvmMaxMemslots: 32767,
    aliases: ["arm64"],
  },
};

/** Every guest architecture vmrig supports, in the order tables and messages list them. */
export const ARCHES = ["x86_64", "aarch64"] as const satisfies readonly Arch[];

export function archRecord(arch: Arch): ArchRecord {
  return ARCH_RECORDS[arch];
}

/** vmrig's name for an architecture written as vmrig, Debian or the kernel name it ("arm64", "amd64"). */
export function archNamed(name: string): Arch | undefined {
  return ARCHES.find((a) => a === name || ARCH_RECORDS[a].aliases.includes(name));
}

/** The architecture of a host whose Node reports `nodeArch`, when vmrig supports it. */
export function hostArchOf(nodeArch: string = process.arch): Arch | undefined {
  return ARCHES.find((a) => ARCH_RECORDS[a].nodeArch === nodeArch);
}
