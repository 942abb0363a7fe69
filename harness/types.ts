// The data that flows between vmrig's stages. Stages are functions from one of these to the
// next; only adapters (qemu/, virtiofs/, guest/, kernels/*-provider, image/build) touch
// processes, sockets and files.
import type { SourceLocation } from "./util/errors.ts";

export type Arch = "x86_64" | "aarch64";
export type AccelName = "kvm" | "tcg";
export type PageSize = "4K" | "16K" | "64K";

// ---- scenario (validated spec) -------------------------------------------------------------

export interface Scenario {
  name: string;
  /** Free text from the file, for reports. */
  description?: string;
  /** Absolute path of the YAML file it came from (for messages and artifacts). */
  file: string;
  machine: MachineSpec;
  /** Insertion order is row order in the table. */
  kernels: KernelEntry[];
  shares: ShareSpec[];
  workloads: WorkloadSpec[];
  /** Expectation for every cell not named more precisely in a kernel's `expect`. */
  expectDefault: Expectation;
  timeouts: TimeoutSpec;
  /** Planned faults, each timed against one workload (harness/run/faults.ts). */
  faults?: FaultStep[];
  /** The memory layout of the VM that gets the VFIO devices. */
  memory?: GuestMemorySpec;
  /** Devices passed through with VFIO, and the run's DMA mapping limit. */
  vfio?: VfioSpec;
}

// ---- VFIO and guest memory (harness/vfio/) ----------------------------------------

export interface VirtioMemSpec {
  id: string;
  sizeBytes: number;
  blockBytes: number;
  requestedBytes: number;
}

export interface GuestMemorySpec {
  /** Guest RAM backend; absent: vmrig's default (memfd when a share needs shared memory). */
  backend?: { kind: "memfd" } | { kind: "file"; path: string };
  virtioMem: VirtioMemSpec[];
}

export type VfioDeviceSpec =
  /** A PCI device of the VFIO host, by full BDF ("0000:01:00.0"). */
  | { kind: "pci"; host: string; /** Bind it though it carries the host's default route or root fs. */ force?: boolean }
  /** A mediated device vmrig creates: `type` under /sys/class/mdev_bus/<parent>/mdev_supported_types. */
  | { kind: "mdev"; type: string; parent: string };

export interface VfioSpec {
  devices: VfioDeviceSpec[];
  /** vfio_iommu_type1's dma_entry_limit for the run (restored afterwards). */
  dmaEntryLimit?: number;
  /**
   * Hardware-free: the VFIO host is a level-1 guest vmrig boots per kernel row, with an emulated
   * intel-iommu and `device` at NESTED_DEVICE_BDF; `nestedQemu` workloads start the level-2 QEMU.
   */
  nested?: { device: string; memoryBytes: number };
}

export type FaultAction =
  "virtiofsd-stop" | "virtiofsd-cont" | "virtiofsd-kill" | "virtiofsd-restart" | "guest-sysrq-crash" | "network-cut";

export interface FaultStep {
  /** The workload whose command the fault is timed against. */
  during: string;
  /** Wall-clock milliseconds after that command started (not scaled for TCG). */
  afterMs: number;
  action: FaultAction;
  /** The share whose virtiofsd the action hits (virtiofsd-* only). */
  share?: string;
  /** Where the step is written, for messages ("faults[1]"). */
  where: string;
}

export interface MachineSpec {
  arch: Arch;
  memoryBytes: number;
  cpus: number;
  accel: "auto" | AccelName;
  /** Extra kernel command line words, e.g. ["swiotlb=force"]. */
  cmdline: string[];
  pageSize?: PageSize;
  /** false: no init_on_alloc=1 under TCG, so the kernel's own config decides; absent: true. */
  tcgPageZeroing?: boolean;
}

/** Timeouts are in accelerator-neutral "KVM seconds"; the accelerator's timeScale multiplies them. */
export interface TimeoutSpec {
  bootSeconds: number;
  stepSeconds: number;
  livenessSeconds: number;
}

export interface KernelEntry {
  label: string;
  source: KernelSource;
  cmdline: string[];
  /** workload id -> expectation, overriding the scenario default for this row. */
  expect: Record<string, Expectation>;
  /** The guest architecture of this row; default: the scenario's machine.arch. */
  arch?: Arch;
  /** The base page size this row's kernel must run with; default: machine.pageSize (checked in the guest). */
  pageSize?: PageSize;
  /** The QEMU this row runs (level 2 for vfio.nested); default: the host's. */
  qemu?: QemuChoice;
}

export type QemuChoice = { kind: "host" } | { kind: "debian"; version: string; suite?: string };

export type KernelSource =
  | { kind: "debian"; version: string; flavour: string; suite?: string }
  | { kind: "path"; kernel: string; modules?: string; config?: string; writtenAt?: Record<string, SourceLocation> }
  | { kind: "build"; spec: BuildSpec };

/** A kernel's `build:` entry, validated by the scenario schema (harness/scenario/build.ts). */
export interface BuildSpec {
  label: string;
  source: BuildSource;
  arch: Arch;
  base: ConfigBase;
  /** Absolute paths of config fragments, merged in this order (later lines win). */
  fragments: string[];
  /** Absolute paths of patches, applied in this order with -p1. */
  patches: string[];
  /**
   * Where the scenario file wrote each path ("source", "source.git", "source.ref",
   * "source.tarball", "config", "config[0]", "patches[1]"), so a problem found at build time
   * (a missing file, a patch that does not apply, an unknown ref) is reported at its line.
   */
  writtenAt?: Record<string, SourceLocation>;
}

export type BuildSource =
  /** Debian's `linux-source-X.Y` package; `version` pins a Debian version, `suite` one suite. */
  | { kind: "debian"; package: string; version?: string; suite?: string }
  /** A local repository (clone or worktree) at a ref; exported, never checked out in place. */
  | { kind: "git"; repo: string; ref: string }
  /** A local .tar(.gz|.xz|.zst|.bz2) holding one kernel tree. */
  | { kind: "tarball"; file: string };

export type ConfigBase = "tinyconfig" | "defconfig";

export type CacheMode = "auto" | "always" | "never" | "metadata";

export type VirtiofsdSandbox = "auto" | "none" | "namespace" | "chroot";

export interface ShareSpec {
  tag: string;
  cache: CacheMode;
  queueSize: number;
  /** auto: chroot when vmrig runs as root, else none (virtiofsd cannot chroot without CAP_SYS_CHROOT). */
  sandbox: VirtiofsdSandbox;
  threadPoolSize?: number;
  extraArgs: string[];
  /** Offer VIRTIO_F_ACCESS_PLATFORM through the vhost-user relay. */
  accessPlatform: boolean;
  /** virtiofsd --log-level for this share; "debug" also puts its refused requests in each cell's evidence. */
  logLevel?: VirtiofsdLogLevel;
}

export type VirtiofsdLogLevel = "error" | "warn" | "info" | "debug" | "trace";

/**
 * A workload kind's own fields, by kind name. Each kind adds its entry from its definition
 * (harness/workloads/registry.ts derives them), so no kind is spelt out here.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- declaration merging fills it
export interface WorkloadSpecs {}

/** One workload of a scenario: its id, its kind, that kind's fields, and a parameter search if it has one. */
export type WorkloadSpec = {
  [K in keyof WorkloadSpecs]: { id: string; kind: K; search?: ParamSearchSpec } & WorkloadSpecs[K];
}[keyof WorkloadSpecs];

/** How a searchable parameter is written: a size in bytes ("4K") or a plain count. */
export type SearchUnit = "bytes" | "count";

/**
 * A workload's `search:`: the cell binary-searches the value of one numeric parameter where its
 * outcome flips, probing `from` and `to` first; each probe runs the workload with `field` set.
 */
export interface ParamSearchSpec {
  /** The parameter as the scenario names it ("bufferSize"). */
  param: string;
  /** The spec field the parameter sets ("bufferBytes"), or the guest's own parameter ("machine.memory"). */
  field: string;
  /**
   * What a probe changes: the workload (each probe runs in the row's guest while it stays
   * healthy) or the guest (each probe boots a guest of its own with the value).
   */
  on: "workload" | "guest";
  unit: SearchUnit;
  from: number;
  to: number;
  granularity: number;
  /** Runs per probed value, judged with bisect's thresholds. */
  repeat: number;
}

/**
 * What a cell is expected to be. "PASS", an errno ("ENOMEM"), or an outcome class.
 * A list means any of them.
 */
export type ExpectationWord =
  "PASS" | "FAIL" | "SKIP" | "SHORT" | "HANG" | "CRASH" | "BOOT-FAIL" | "INFRA" | "ERRNO" | "ANY" | `E${string}`;
export type Expectation = ExpectationWord[];

// ---- kernels and images --------------------------------------------------------------------

export interface KernelArtifact {
  label: string;
  arch: Arch;
  /** Path to bzImage / Image. */
  image: string;
  /** `uname -r` of the kernel, when known. */
  release?: string;
  /** Path of the unpacked lib/modules/<release> directory, when the kernel has modules. */
  modulesDir?: string;
  /** Path of the kernel's .config, when known. */
  config?: string;
  /** Path of the ELF vmlinux with symbols (kernels vmrig built), for a debugger. */
  vmlinux?: string;
  /** Human description for the table ("Debian 6.18.15-1~bpo13+1 cloud-amd64, trixie-backports"). */
  description: string;
  /** Stable identity of the binary (hash of the image, or package version): used in cache keys and history. */
  identity: string;
}

export interface GuestImage {
  initrd: string;
  /** OpenSSH-format public host key the guest's dropbear presents; vmrig pins it. */
  hostKeyPublic: string;
  /** Modules the init script loads, in order (empty for all-built-in kernels). */
  modules: string[];
  identity: string;
}

// ---- outcomes ------------------------------------------------------------------------------

export type CellOutcome = (
  | { kind: "pass"; detail?: string }
  /** The syscall failed with an errno; the liveness probe says whether the mount still answers. */
  | {
      kind: "errno";
      errno: string;
      mountHealthy: boolean | "unknown";
      detail?: string;
      /** e.g. "512K" for a sweep */ at?: string;
    }
  /** The workload ran but its result was wrong (count, checksum, exit code). */
  | { kind: "fail"; detail: string }
  /** The test said it did not apply here (a KTAP `# SKIP`: a feature this kernel lacks). */
  | { kind: "skip"; reason: string }
  /** A listing ended without an error but saw fewer entries than the host has: silent loss, never PASS. */
  | { kind: "short"; seen: number; expected: number; detail?: string }
  | { kind: "hang"; what: string; wedged: boolean }
  /** signature: title plus normalised top frames, equal across runs of the same bug. */
  | { kind: "crash"; title: string; excerpt: string; signature?: string }
  | { kind: "boot-fail"; reason: string }
  | { kind: "infra"; reason: string }
  | { kind: "not-run"; reason: string }
) & {
  /** A parameter search's finding, which is the cell's label ("PASS up to 256K, -ENOMEM from 260K (11 probes)"). */
  searchLabel?: string;
};

export interface CellResult {
  kernel: string;
  workload: string;
  outcome: CellOutcome;
  expected: Expectation;
  met: boolean;
  durationMs: number;
  /** Probe JSON, kernel messages during the step, liveness result: the evidence. */
  evidence: Record<string, unknown>;
  /** Witnesses from outside the guest, shown beside the outcome ("virtiofsd refused READDIRPLUS (-12) x 1"). */
  notes?: string[];
  /** For a test case of a workload's KTAP output (`fs-selftests/<test>`): the workload's id. */
  partOf?: string;
}

/** A boot milestone on the host's clock: ms since vmrig started the guest. */
export interface BootPhase {
  phase: "daemons" | "qemu" | "kernel" | "init" | "sshd" | "command";
  ms: number;
}

export interface KernelRowResult {
  label: string;
  description: string;
  accel?: AccelName;
  /**
   * The guest's architecture and the page size its kernel really ran with ("16K"; "64K?" when
   * declared but never seen, e.g. no boot).
   */
  arch?: Arch;
  pageSize?: string;
  bootMs?: number;
  /** Where the first boot's seconds went (harness/guest/boot-phases.ts). */
  bootPhases?: BootPhase[];
  /** Artifact paths relative to the run directory. */
  artifacts: Record<string, string>;
  cells: CellResult[];
  evidence: Record<string, unknown>;
  /** In a merged run: the host of the shard that ran this row, and that shard's number. */
  host?: HostFacts;
  shard?: number;
}

/** The host a run (or, in a merged run, a row) ran on: a regression on one runner kind is an infrastructure fact. */
export interface HostFacts {
  qemu?: string;
  virtiofsd?: string;
  accel?: AccelName;
  accelNote?: string;
  hostname: string;
  /** The host CPU's model name. */
  cpu?: string;
}

export interface RunResult {
  scenario: string;
  scenarioFile: string;
  startedAt: string;
  finishedAt?: string;
  /** False when the run was interrupted or aborted: the rows hold what was gathered. */
  complete: boolean;
  host: HostFacts;
  /** A run merged from shards (`vmrig merge`): how many, and the run directory each came from. */
  shards?: { count: number; dirs: string[] };
  /** Column order: the scenario's workloads, each followed by the test cases it reported (`<id>/<test>`). */
  workloads: string[];
  rows: KernelRowResult[];
  /** VFIO on this host: preflight, what was changed, what was restored. */
  vfio?: Record<string, unknown>;
}
