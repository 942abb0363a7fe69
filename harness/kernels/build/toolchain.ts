// The host side of a kernel build: which make variables build for an architecture, whether
// the compiler and tools are installed, and the compiler's identity for cache keys.
import os from "node:os";
import { execa } from "execa";
import type { Arch } from "../../types.ts";
import { HostError } from "../../util/errors.ts";

/**
 * Debian packages a kernel build needs on the host (setup installs them): make and gcc, the
 * kconfig and objtool build dependencies, ccache, patch for patches, xz for Debian's source
 * tarballs, git for git sources, and the arm64 cross compiler.
 */
export const kernelBuildPackages = [
  "make",
  "gcc",
  "libc6-dev",
  "bc",
  "bison",
  "flex",
  "libelf-dev",
  "libssl-dev",
  "ccache",
  "patch",
  "xz-utils",
  "zstd",
  "git",
  "gcc-aarch64-linux-gnu",
] as const;

export interface Toolchain {
  arch: Arch;
  /** The kernel's ARCH= ("x86_64", "arm64"). */
  kernelArch: string;
  /** CROSS_COMPILE= prefix ("" for a native build). */
  crossCompile: string;
  /** make target producing the boot image, and where it lands relative to the build dir. */
  target: string;
  imagePath: string;
  /** `gcc --version` first line and `ld --version` first line: part of every cache key. */
  compilerIdentity: string;
  /** make variables for every invocation. */
  makeVars: string[];
}

const KERNEL_ARCH: Record<Arch, { kernelArch: string; target: string; imagePath: string; crossPrefix: string; crossPackage: string }> = {
  x86_64: { kernelArch: "x86_64", target: "bzImage", imagePath: "arch/x86/boot/bzImage", crossPrefix: "x86_64-linux-gnu-", crossPackage: "gcc-x86-64-linux-gnu" },
  aarch64: { kernelArch: "arm64", target: "Image", imagePath: "arch/arm64/boot/Image", crossPrefix: "aarch64-linux-gnu-", crossPackage: "gcc-aarch64-linux-gnu" },
};

const HOST_ARCH: Record<string, Arch | undefined> = { x64: "x86_64", arm64: "aarch64" };

/** Pure: the make variables for building `arch` on a host of `hostArch` (Node's process.arch). */
export function planToolchain(arch: Arch, hostArch: string = process.arch): Omit<Toolchain, "compilerIdentity"> & { crossPackage?: string } {
  const k = KERNEL_ARCH[arch];
  const native = HOST_ARCH[hostArch] === arch;
  const crossCompile = native ? "" : k.crossPrefix;
  // ccache in front of the compiler: CC for the target; HOSTCC for kconfig, fixdep and friends.
  const makeVars = [`ARCH=${k.kernelArch}`, `CC=ccache ${crossCompile}gcc`, "HOSTCC=ccache gcc"];
  if (crossCompile) makeVars.push(`CROSS_COMPILE=${crossCompile}`);
  return {
    arch,
    kernelArch: k.kernelArch,
    crossCompile,
    target: k.target,
    imagePath: k.imagePath,
    makeVars,
    ...(native ? {} : { crossPackage: k.crossPackage }),
  };
}

async function firstLine(cmd: string, args: string[]): Promise<string | undefined> {
  const r = await execa(cmd, args, { reject: false });
  if (r.exitCode !== 0) return undefined;
  return String(r.stdout).split("\n")[0]!.trim();
}

/** Checks the host can build for `arch` and returns the toolchain; a missing tool names its package. */
export async function requireToolchain(arch: Arch): Promise<Toolchain> {
  const plan = planToolchain(arch);
  const missing: string[] = [];
  const need = async (cmd: string, args: string[], pkg: string) => {
    const line = await firstLine(cmd, args);
    if (line === undefined) missing.push(`${cmd} (Debian package ${pkg})`);
    return line;
  };
  const [cc, ld] = await Promise.all([
    need(`${plan.crossCompile}gcc`, ["--version"], plan.crossPackage ?? "gcc"),
    need(`${plan.crossCompile}ld`, ["--version"], plan.crossPackage ? `binutils-${plan.crossCompile.slice(0, -1)}` : "binutils"),
    need("gcc", ["--version"], "gcc"),
    need("make", ["--version"], "make"),
    need("ccache", ["--version"], "ccache"),
    need("bison", ["--version"], "bison"),
    need("flex", ["--version"], "flex"),
    need("bc", ["--version"], "bc"),
    need("patch", ["--version"], "patch"),
    need("xz", ["--version"], "xz-utils"),
    // The shipped fragments compress the kernel with zstd (CONFIG_KERNEL_ZSTD).
    need("zstd", ["--version"], "zstd"),
  ]);
  if (missing.length) {
    const cross = plan.crossCompile ? ` (cross compiling for ${arch} with ${plan.crossCompile}gcc)` : "";
    throw new HostError(`Cannot build kernels${cross}: missing ${missing.join(", ")}. Run \`npm run setup\` or apt-get install them.`);
  }
  const { crossPackage: _unused, ...rest } = plan;
  return { ...rest, compilerIdentity: `${cc} | ${ld}` };
}

/** -j for make: one job per core. */
export function makeJobs(): number {
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}
