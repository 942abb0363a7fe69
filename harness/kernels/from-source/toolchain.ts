// The host side of a kernel build: which make variables build for an architecture, whether
// the compiler and tools are installed, and the compiler's identity for cache keys.
import os from "node:os";
import { execa } from "execa";
import type { Arch } from "../../types.ts";
import { archRecord } from "../../arch.ts";
import { requireCapabilities } from "../../host/check.ts";
import { compilerFor } from "../../host/requirements.ts";

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

/** Pure: the make variables for building `arch` on a host of `hostArch` (Node's process.arch). */
export function planToolchain(arch: Arch, hostArch: string = process.arch): Omit<Toolchain, "compilerIdentity"> {
  const k = archRecord(arch).kernel;
  const crossCompile = compilerFor(arch, hostArch).prefix;
  // ccache in front of the compiler: CC for the target; HOSTCC for kconfig, fixdep and friends.
  const makeVars = [`ARCH=${k.makeArch}`, `CC=ccache ${crossCompile}gcc`, "HOSTCC=ccache gcc"];
  if (crossCompile) makeVars.push(`CROSS_COMPILE=${crossCompile}`);
  return { arch, kernelArch: k.makeArch, crossCompile, target: k.target, imagePath: k.imagePath, makeVars };
}

async function firstLine(cmd: string, args: string[]): Promise<string | undefined> {
  const r = await execa(cmd, args, { reject: false });
  if (r.exitCode !== 0) return undefined;
  return String(r.stdout).split("\n")[0]!.trim();
}

/** Checks the host can build for `arch` (the same rows setup installs) and returns the toolchain. */
export async function requireToolchain(arch: Arch): Promise<Toolchain> {
  await requireCapabilities([`build-${arch}`]);
  const plan = planToolchain(arch);
  const [cc, ld] = await Promise.all([
    firstLine(`${plan.crossCompile}gcc`, ["--version"]),
    firstLine(`${plan.crossCompile}ld`, ["--version"]),
  ]);
  return { ...plan, compilerIdentity: `${cc} | ${ld}` };
}

/** -j for make: one job per core. */
export function makeJobs(): number {
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}
