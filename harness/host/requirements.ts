// What vmrig and its tests need on the host, one row each. Setup installs the packages of every
// row; runs, builds and `vmrig doctor` check the rows of what they are about to do with the same
// probes, so a machine setup prepared is a machine the preflights accept.
import type { Arch } from "../types.ts";
import { ARCHES, archRecord, hostArchOf } from "../arch.ts";

/** What a group of rows makes possible. */
export type Capability = `guests-${Arch}` | `build-${Arch}` | "tests";

const allGuests = ARCHES.map((a): Capability => `guests-${a}`);
const allBuilds = ARCHES.map((a): Capability => `build-${a}`);

export const capabilities: Capability[] = [...allGuests, ...allBuilds, "tests"];

export const capabilityTitle = Object.fromEntries([
  ...ARCHES.map((a) => [`guests-${a}`, `run ${archRecord(a).displayName} guests`]),
  ...ARCHES.map((a) => [`build-${a}`, `build ${archRecord(a).displayName} kernels`]),
  ["tests", "run vmrig's test suite"],
]) as Record<Capability, string>;

export type Probe =
  /** The command runs and exits 0. */
  | { kind: "command"; argv: string[] }
  /** One of these files exists. */
  | { kind: "file"; paths: string[] }
  /** A one-line C program compiles and links: headers and libraries are there, not just the compiler. */
  | { kind: "compile"; compiler: string; source: string; flags: string[] };

export interface Requirement {
  /** What a user reads in a report: a program, header or file. */
  what: string;
  /** The Debian package that provides it. */
  package: string;
  /** On bookworm this package comes from bookworm-backports (QEMU 10 instead of 7.2). */
  backports?: boolean;
  probe: Probe;
  for: Capability[];
}

const command = (...argv: string[]): Probe => ({ kind: "command", argv });
const compile = (compiler: string, source: string, ...flags: string[]): Probe => ({
  kind: "compile",
  compiler,
  source,
  flags,
});

/** The C compiler for `arch` on this host: gcc natively, Debian's cross gcc otherwise. */
export function compilerFor(arch: Arch, hostArch: string = process.arch): { prefix: string; gcc: string } {
  const prefix = hostArchOf(hostArch) === arch ? "" : `${archRecord(arch).gnuTriplet}-`;
  return { prefix, gcc: `${prefix}gcc` };
}

/** Rows that depend on the target architecture: its QEMU, its (cross) compiler and static libc. */
function archRows(arch: Arch, hostArch: string): Requirement[] {
  const { prefix, gcc } = compilerFor(arch, hostArch);
  const guests: Capability = `guests-${arch}`;
  const build: Capability = `build-${arch}`;
  const a = archRecord(arch);
  const gccPackage = prefix ? `gcc-${a.crossPackageSuffix}` : "gcc";
  return [
    {
      what: a.qemu.binary,
      package: a.qemu.debianPackage,
      backports: true,
      probe: command(a.qemu.binary, "--version"),
      for: [guests],
    },
    { what: gcc, package: gccPackage, probe: command(gcc, "--version"), for: [guests, build] },
    {
      what: `${prefix}ld`,
      package: prefix ? `binutils-${a.crossPackageSuffix}` : "binutils",
      probe: command(`${prefix}ld`, "--version"),
      for: [build],
    },
    // The guest probe is a static program (no libc in the initramfs).
    {
      what: `static libc for ${arch}`,
      package: prefix ? a.crossLibcPackage : "libc6-dev",
      probe: compile(gcc, "int main(void) { return 0; }", "-static"),
      for: [guests],
    },
  ];
}

/** Every requirement on a host of `hostArch` (Node's process.arch). */
export function hostRequirements(hostArch: string = process.arch): Requirement[] {
  return [
    ...ARCHES.flatMap((arch) => archRows(arch, hostArch)),
    {
      what: "qemu-img",
      package: "qemu-utils",
      backports: true,
      probe: command("qemu-img", "--version"),
      for: allGuests,
    },
    {
      what: "busybox (static)",
      package: "busybox-static",
      probe: { kind: "file", paths: ["/bin/busybox", "/usr/bin/busybox"] },
      for: allGuests,
    },
    {
      what: "dropbear",
      package: "dropbear-bin",
      probe: { kind: "file", paths: ["/usr/sbin/dropbear", "/sbin/dropbear"] },
      for: allGuests,
    },
    { what: "cpio", package: "cpio", probe: command("cpio", "--version"), for: allGuests },
    { what: "gzip", package: "gzip", probe: command("gzip", "--version"), for: allGuests },
    { what: "xz", package: "xz-utils", probe: command("xz", "--version"), for: [...allGuests, ...allBuilds] },
    { what: "zstd", package: "zstd", probe: command("zstd", "--version"), for: [...allGuests, ...allBuilds] },
    { what: "gpgv", package: "gpgv", probe: command("gpgv", "--version"), for: [...allGuests, ...allBuilds] },
    {
      what: "Debian archive keyring",
      package: "debian-archive-keyring",
      probe: { kind: "file", paths: ["/usr/share/keyrings/debian-archive-keyring.gpg"] },
      for: [...allGuests, ...allBuilds],
    },
    { what: "dpkg-deb", package: "dpkg", probe: command("dpkg-deb", "--version"), for: [...allGuests, ...allBuilds] },
    // The vhost-user relay is a small C program built on first use.
    {
      what: "C headers",
      package: "libc6-dev",
      probe: compile("gcc", "#include <stdio.h>\nint main(void) { return 0; }"),
      for: allGuests,
    },
    { what: "make", package: "make", probe: command("make", "--version"), for: allBuilds },
    { what: "ccache", package: "ccache", probe: command("ccache", "--version"), for: allBuilds },
    { what: "bison", package: "bison", probe: command("bison", "--version"), for: allBuilds },
    { what: "flex", package: "flex", probe: command("flex", "--version"), for: allBuilds },
    { what: "bc", package: "bc", probe: command("bc", "--version"), for: allBuilds },
    { what: "perl", package: "perl", probe: command("perl", "-MFile::Basename", "-e", "1"), for: allBuilds },
    { what: "patch", package: "patch", probe: command("patch", "--version"), for: allBuilds },
    { what: "git", package: "git", probe: command("git", "--version"), for: [...allBuilds, "tests"] },
    // objtool and the host tools link libelf; certificate tools link libcrypto.
    {
      what: "gelf.h",
      package: "libelf-dev",
      probe: compile(
        "gcc",
        "#include <gelf.h>\nint main(void) { return elf_version(EV_CURRENT) == EV_NONE; }",
        "-lelf",
      ),
      for: allBuilds,
    },
    {
      what: "openssl/evp.h",
      package: "libssl-dev",
      probe: compile("gcc", "#include <openssl/evp.h>\nint main(void) { return EVP_MD_CTX_new() == 0; }", "-lcrypto"),
      for: allBuilds,
    },
    {
      what: "chromium",
      package: "chromium",
      probe: { kind: "file", paths: ["/usr/bin/chromium", "/usr/bin/chromium-browser"] },
      for: ["tests"],
    },
    // `vmrig run --keep-failed` prints a gdb command for the kept guest; the keep-failed test runs it.
    { what: "gdb", package: "gdb", probe: command("gdb", "--version"), for: ["tests"] },
    { what: "mmdebstrap", package: "mmdebstrap", probe: command("mmdebstrap", "--version"), for: ["tests"] },
    // The vmrig shell test drives a session through a real pty with util-linux's script (essential in Debian).
    { what: "script", package: "bsdutils", probe: command("script", "--version"), for: ["tests"] },
    // The repro bundle test runs repro.sh with the repository and the cache hidden in a mount namespace.
    { what: "unshare", package: "util-linux", probe: command("unshare", "--version"), for: ["tests"] },
    // virtme-ng, the boot bench's second reference, finds a kernel's modules with modprobe.
    {
      what: "modprobe",
      package: "kmod",
      probe: { kind: "file", paths: ["/usr/sbin/modprobe", "/sbin/modprobe"] },
      for: ["tests"],
    },
  ];
}

/** The rows a capability needs. */
export function requirementsFor(wanted: Capability[], hostArch: string = process.arch): Requirement[] {
  return hostRequirements(hostArch).filter((r) => r.for.some((c) => wanted.includes(c)));
}

/** Every Debian package setup installs, each once, with whether it comes from backports. */
export function setupPackages(hostArch: string = process.arch): { name: string; backports: boolean }[] {
  const byName = new Map<string, boolean>();
  for (const r of hostRequirements(hostArch)) byName.set(r.package, (byName.get(r.package) ?? false) || !!r.backports);
  return [...byName].map(([name, backports]) => ({ name, backports }));
}

/** The exact command that installs `missing` (bookworm takes QEMU from backports). */
export function installCommand(missing: Requirement[], codename: string): string {
  const plain = [...new Set(missing.filter((r) => !(r.backports && codename === "bookworm")).map((r) => r.package))];
  const backported = [...new Set(missing.filter((r) => r.backports && codename === "bookworm").map((r) => r.package))];
  return [
    plain.length ? `apt-get install ${plain.join(" ")}` : "",
    backported.length ? `apt-get install -t bookworm-backports ${backported.join(" ")}` : "",
  ]
    .filter(Boolean)
    .join(" && ");
}
