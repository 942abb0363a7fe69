// Builds the guest initramfs (busybox init + dropbear + vmrig-probe + the kernel's modules),
// cached under cachePaths.images()/<hash>/ by a hash of everything that goes into it: planning
// (which files, from where) and hashing are cheap, so a cache hit costs no staging or packing.

import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { Arch, GuestImage, KernelArtifact } from "../types.ts";
import { VmrigError } from "../util/errors.ts";
import { cachePaths } from "../util/paths.ts";
import { guestBinaries } from "./binaries.ts";
import { initrdCompression, packingDescription, type InitrdCompression } from "./cpio.ts";
import { FUSE_LIE_PROGRAM, GUEST_PROBE_PATH } from "./guest-protocol.ts";
import { readImage, writeImage, type ImageEntry, type ImageRecord } from "./image-dir.ts";
import { GUEST_DROPBEAR, GUEST_MODULES_DIR, guestInitFiles } from "./init-files.ts";
import { planModules } from "./module-files.ts";
import { GUEST_MODULES } from "./modules.ts";
import { buildProbe, buildStaticProgram, sha256File } from "./probe.ts";
import { buildKselftests, kselftestGuestPath, type KselftestName } from "./kselftest.ts";
import { repoRoot } from "../util/paths.ts";

const FUSE_LIE_SOURCE = path.join(repoRoot, "images", "repro", "vmrig-fuse-lie.c");

export interface BuildGuestImageOptions {
  arch: Arch;
  kernel: KernelArtifact;
  signal: AbortSignal;
  log?: (message: string) => void;
  /** Modules wanted beyond GUEST_MODULES (e.g. vfio_pci for a VFIO scenario). */
  extraModules?: string[];
  /** Kernel selftests the scenario runs (ktap workloads), built and put under KSELFTEST_GUEST_DIR. */
  kselftests?: readonly KselftestName[];
}

/** Bump when the image layout changes in a way the hashed inputs do not show. */
const IMAGE_FORMAT = 1;

interface ImagePlan {
  entries: ImageEntry[];
  /** Modules the init script loads, in order. */
  modules: string[];
  builtinModules: string[];
  missingModules: string[];
  compression: InitrdCompression;
}

export async function buildGuestImage(options: BuildGuestImageOptions): Promise<GuestImage> {
  const { arch, kernel, signal } = options;
  const log = options.log ?? (() => {});
  if (kernel.arch !== arch) {
    throw new VmrigError(`kernel ${kernel.label} is ${kernel.arch}, but the guest image asked for is ${arch}`);
  }
  const wanted = [...GUEST_MODULES, ...(options.extraModules ?? [])];
  const selftests = await buildKselftests(arch, options.kselftests ?? [], signal, log);
  const plan = await planImage(arch, kernel, wanted, signal);
  for (const t of selftests) {
    plan.entries.push({
      guestPath: kselftestGuestPath(t.name),
      kind: "copy",
      hostPath: t.path,
      mode: 0o755,
      sha256: t.sha256,
    });
  }
  const identity = imageIdentity(arch, plan);
  const dir = path.join(cachePaths.images(), identity);

  const cached = await readImage(dir);
  if (cached) {
    log(`guest image ${identity} (cached)`);
    return cached;
  }
  const started = Date.now();
  if (kernel.modulesDir) {
    log(
      `modules: load ${plan.modules.join(" ") || "none"}; built in: ${plan.builtinModules.join(" ") || "none"}; ` +
        `not in this kernel: ${plan.missingModules.join(" ") || "none"}`,
    );
  }
  const record: Omit<ImageRecord, "initrd" | "hostKeyPublic"> = {
    identity,
    arch,
    modules: plan.modules,
    builtAt: new Date().toISOString(),
    builtFor: { kernel: kernel.label, release: kernel.release, identity: kernel.identity },
    missingModules: plan.missingModules,
    builtinModules: plan.builtinModules,
  };
  await writeImage(dir, plan, record, signal);
  const image = await readImage(dir);
  if (!image) throw new Error(`guest image ${dir} vanished right after it was built`);
  log(`guest image ${identity} built in ${Date.now() - started} ms (${plan.modules.length} modules)`);
  return image;
}

// ---- inputs ------------------------------------------------------------------------------

async function planImage(
  arch: Arch,
  kernel: KernelArtifact,
  wanted: string[],
  signal: AbortSignal,
): Promise<ImagePlan> {
  const [binaries, probe, fuseLie] = await Promise.all([
    guestBinaries(arch, signal),
    buildProbe(arch, signal),
    buildStaticProgram(arch, FUSE_LIE_SOURCE, "vmrig-fuse-lie", signal),
  ]);
  const entries: ImageEntry[] = [];
  const copy = async (guestPath: string, hostPath: string, mode: number) =>
    entries.push({ guestPath, kind: "copy", hostPath, mode, sha256: await sha256File(hostPath) });

  await copy("/bin/busybox", binaries.busybox, 0o755);
  for (const applet of binaries.applets) {
    if (applet !== "/bin/busybox") entries.push({ guestPath: applet, kind: "symlink", target: "/bin/busybox" });
  }
  // The kernel runs /init; busybox picks its applet from the name, so this is busybox init.
  entries.push({ guestPath: "/init", kind: "symlink", target: "/bin/busybox" });
  entries.push({ guestPath: "/var/run", kind: "symlink", target: "/run" });
  await copy(GUEST_DROPBEAR, binaries.dropbear, 0o755);
  for (const lib of binaries.libraries) await copy(lib.guestPath, lib.hostPath, 0o755);
  entries.push({ guestPath: GUEST_PROBE_PATH, kind: "copy", hostPath: probe.path, mode: 0o755, sha256: probe.sha256 });
  // The lying FUSE server (harness/workloads/fuse-lies.ts).
  entries.push({
    guestPath: FUSE_LIE_PROGRAM,
    kind: "copy",
    hostPath: fuseLie.path,
    mode: 0o755,
    sha256: fuseLie.sha256,
  });

  // A kernel without a module tree has everything it has built in.
  const modulePlan = kernel.modulesDir
    ? await planModules(kernel.modulesDir, wanted, signal)
    : { load: [], builtin: [], missing: [] };
  const modules: string[] = [];
  for (const m of modulePlan.load) {
    const hostPath = path.join(kernel.modulesDir!, m.path);
    entries.push({
      guestPath: `${GUEST_MODULES_DIR}/${m.name}.ko`,
      kind: "module",
      hostPath,
      sha256: await sha256File(hostPath),
    });
    modules.push(m.name);
  }
  for (const [guestPath, file] of Object.entries(guestInitFiles(modules))) {
    entries.push({ guestPath, kind: "text", content: file.content, mode: file.mode });
  }
  const config = kernel.config ? await fs.readFile(kernel.config, "utf8") : undefined;
  // A later entry for the same path wins: real files over busybox applet links.
  const byPath = new Map(entries.map((e) => [e.guestPath, e]));
  return {
    entries: [...byPath.values()],
    modules,
    builtinModules: modulePlan.builtin,
    missingModules: modulePlan.missing,
    compression: initrdCompression(config),
  };
}

/** The cache key: every entry's path and content hash, the module order, how it is packed. */
function imageIdentity(arch: Arch, plan: ImagePlan): string {
  const described = plan.entries.map((e) => {
    switch (e.kind) {
      case "copy":
        return [e.guestPath, e.kind, e.mode, e.sha256];
      case "module":
        return [e.guestPath, e.kind, e.sha256];
      case "text":
        return [e.guestPath, e.kind, e.mode, createHash("sha256").update(e.content).digest("hex")];
      case "symlink":
        return [e.guestPath, e.kind, e.target];
    }
  });
  const packing = packingDescription(plan.compression);
  const manifest = JSON.stringify({ format: IMAGE_FORMAT, arch, packing, modules: plan.modules, entries: described });
  return createHash("sha256").update(manifest).digest("hex").slice(0, 32);
}
