// Which kernel modules the guest loads, and in what order. Pure: works on the text of
// modules.dep and modules.builtin so it can be tested on captured excerpts.

/**
 * What every guest wants: virtio transport, network, disks, virtio-fs, FUSE, overlay, pvpanic
 * (so QEMU can tell a panic from a poweroff) and virtio vsock. Kernels that build some of them
 * in simply skip those; kernels that lack one skip it too.
 */
export const GUEST_MODULES = [
  "virtio_pci",
  "virtio_net",
  "virtio_blk",
  "virtio_console",
  "fuse",
  "virtiofs",
  "overlay",
  "pvpanic_pci",
  "vmw_vsock_virtio_transport",
] as const;

export interface ModuleFile {
  /** Normalised module name (underscores), as the kernel reports it in /proc/modules. */
  name: string;
  /** Path relative to lib/modules/<release>, as modules.dep spells it (may end .ko.xz/.ko.zst). */
  path: string;
}

export interface ModulePlan {
  /** Modules to insmod, dependencies first. */
  load: ModuleFile[];
  /** Wanted modules the kernel has built in. */
  builtin: string[];
  /** Wanted modules the kernel has neither built in nor as a module. */
  missing: string[];
}

/** "kernel/fs/fuse/virtio-fs.ko.xz" or "virtio-fs" -> "virtio_fs" (module names treat - and _ alike). */
export function moduleName(pathOrName: string): string {
  const base = pathOrName.slice(pathOrName.lastIndexOf("/") + 1);
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, "").replace(/-/g, "_");
}

interface DepEntry {
  path: string;
  deps: string[];
}

/** modules.dep lines are `path: dep-path dep-path ...`; later deps must be loaded earlier. */
export function parseModulesDep(modulesDep: string): Map<string, DepEntry> {
  const entries = new Map<string, DepEntry>();
  for (const line of modulesDep.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    entries.set(moduleName(path), { path, deps });
  }
  return entries;
}

export function parseModulesBuiltin(builtin: string): Set<string> {
  return new Set(
    builtin
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean)
      .map(moduleName),
  );
}

/**
 * The modules to load for `wanted`, each after its dependencies, in a stable order: wanted
 * order, with each module's dependencies walked depth-first (in the reverse of the order
 * modules.dep lists them, which is the order modprobe loads them).
 */
export function moduleLoadOrder(modulesDep: string, builtin: string, wanted: readonly string[]): ModulePlan {
  const deps = parseModulesDep(modulesDep);
  const builtins = parseModulesBuiltin(builtin);
  const plan: ModulePlan = { load: [], builtin: [], missing: [] };
  const done = new Set<string>();
  const inProgress = new Set<string>();

  const visit = (name: string, path: string): void => {
    if (done.has(name) || inProgress.has(name)) return; // a cycle cannot be ordered: depmod warns about it
    inProgress.add(name);
    const entry = deps.get(name);
    for (const depPath of [...(entry?.deps ?? [])].reverse()) {
      const depName = moduleName(depPath);
      if (!builtins.has(depName)) visit(depName, deps.get(depName)?.path ?? depPath);
    }
    inProgress.delete(name);
    done.add(name);
    plan.load.push({ name, path });
  };

  for (const name of new Set(wanted.map(moduleName))) {
    if (builtins.has(name)) plan.builtin.push(name);
    else {
      const entry = deps.get(name);
      if (entry) visit(name, entry.path);
      else plan.missing.push(name);
    }
  }
  return plan;
}

/** Renders modules.dep lines, for kernels that ship none (built from each module's modinfo). */
export function formatModulesDep(entries: Array<{ path: string; deps: string[] }>): string {
  return entries.map((e) => `${e.path}:${e.deps.map((d) => ` ${d}`).join("")}\n`).join("");
}
