// Where the guest's userland binaries come from, per architecture. The guest gets busybox
// (static) and dropbear (dynamic, with the exact libraries and loader it links against).

import fs from "node:fs/promises";
import { execa } from "execa";
import type { Arch } from "../types.ts";
import { archRecord } from "../arch.ts";
import { HostError } from "../util/errors.ts";
import { elfInterpreter, elfMachine } from "./elf.ts";
import { debianGuestUserland } from "./foreign-binaries.ts";
import type { GuestBinaries } from "./binaries-types.ts";

/** The one place that decides where an architecture's guest binaries come from. */
export async function guestBinaries(arch: Arch, signal: AbortSignal): Promise<GuestBinaries> {
  const binaries =
    process.arch === archRecord(arch).nodeArch
      ? await hostPackageBinaries(signal)
      : await debianGuestUserland(arch, signal);
  await checkArchitecture(binaries, arch);
  return binaries;
}

/** The host's own busybox-static and dropbear-bin packages (same architecture as the guest). */
async function hostPackageBinaries(signal: AbortSignal): Promise<GuestBinaries> {
  const busybox = await firstExisting(["/bin/busybox", "/usr/bin/busybox"], "busybox-static");
  const dropbear = await firstExisting(["/usr/sbin/dropbear", "/sbin/dropbear"], "dropbear-bin");
  const { stdout } = await execa("ldd", [dropbear], { cancelSignal: signal });
  const libraries = parseLdd(stdout).map((p) => ({ guestPath: p, hostPath: p }));
  const loader = elfInterpreter(await fs.readFile(dropbear));
  if (loader && !libraries.some((l) => l.guestPath === loader)) libraries.push({ guestPath: loader, hostPath: loader });
  // Native: the binary can list its own applets.
  const applets = (await execa(busybox, ["--list-full"], { cancelSignal: signal })).stdout;
  return {
    busybox,
    applets: applets
      .split("\n")
      .filter(Boolean)
      .map((p) => `/${p}`),
    dropbear,
    libraries,
  };
}

async function firstExisting(candidates: string[], debianPackage: string): Promise<string> {
  for (const file of candidates) {
    try {
      await fs.access(file);
      return file;
    } catch {
      // try the next one
    }
  }
  throw new HostError(`none of ${candidates.join(", ")} exists: install the Debian package ${debianPackage}`);
}

async function checkArchitecture(binaries: GuestBinaries, arch: Arch): Promise<void> {
  const busybox = await fs.readFile(binaries.busybox);
  if (elfInterpreter(busybox) !== undefined) {
    throw new HostError(`${binaries.busybox} is dynamically linked: the guest needs busybox-static, not busybox`);
  }
  for (const file of [binaries.busybox, binaries.dropbear]) {
    const machine = elfMachine(file === binaries.busybox ? busybox : await fs.readFile(file));
    if (machine !== archRecord(arch).elfMachine) {
      throw new HostError(`${file} is not an ${arch} executable (ELF machine ${machine})`);
    }
  }
}

/**
 * The files a program needs from `ldd` output: "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1
 * (0x...)" and the loader line "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has no file.
 */
export function parseLdd(output: string): string[] {
  const files: string[] = [];
  for (const raw of output.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("linux-vdso") || line.startsWith("linux-gate")) continue;
    if (line.includes("not found")) throw new HostError(`missing shared library: ${line}`);
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^(\/\S+)/.exec(line);
    if (m) files.push(m[1]!);
  }
  return files;
}
