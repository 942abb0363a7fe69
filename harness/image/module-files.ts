// Reads a kernel's module tree (lib/modules/<release>) for the image builder: the dependency
// index, and module files decompressed for busybox insmod (which cannot read .ko.xz/.ko.zst).

import fs from "node:fs/promises";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { execa } from "execa";
import { moduleDependsOn } from "./elf.ts";
import { listTree } from "./walk.ts";
import { formatModulesDep, moduleLoadOrder, moduleName, type ModulePlan } from "./modules.ts";

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** The module's ELF bytes, whatever compression the kernel package used. */
export async function readModuleElf(file: string, signal: AbortSignal): Promise<Uint8Array> {
  const tool = file.endsWith(".xz") ? "xz" : file.endsWith(".zst") ? "zstd" : undefined;
  if (tool) {
    const { stdout } = await execa(tool, ["-dc", file], {
      encoding: "buffer",
      cancelSignal: signal,
      stripFinalNewline: false,
    });
    return stdout;
  }
  const raw = await fs.readFile(file);
  return file.endsWith(".gz") ? gunzipSync(raw) : raw;
}

/** Every module file under the tree, by normalised name -> path relative to modulesDir. */
async function moduleFilesByName(modulesDir: string): Promise<Map<string, string>> {
  const byName = new Map<string, string>();
  for (const rel of await listTree(modulesDir)) {
    if (/\.ko(\.(xz|zst|gz))?$/.test(rel)) byName.set(moduleName(rel), rel);
  }
  return byName;
}

/**
 * modules.dep for the part of the tree `wanted` reaches. Debian's kernel packages ship no
 * modules.dep (their postinst runs depmod) and hosts need not have kmod, so when the file is
 * missing the dependencies come from each module's own `depends=` modinfo field, which modpost
 * writes from the same symbol resolution depmod does.
 */
async function modulesDepFor(modulesDir: string, wanted: readonly string[], signal: AbortSignal): Promise<string> {
  const existing = await readIfExists(path.join(modulesDir, "modules.dep"));
  if (existing !== undefined) return existing;
  const files = await moduleFilesByName(modulesDir);
  const lines: Array<{ path: string; deps: string[] }> = [];
  const seen = new Set<string>();
  const queue = wanted.map(moduleName);
  while (queue.length > 0) {
    const name = queue.shift()!;
    const rel = files.get(name);
    if (seen.has(name) || !rel) continue;
    seen.add(name);
    const depNames = moduleDependsOn(await readModuleElf(path.join(modulesDir, rel), signal)).map(moduleName);
    lines.push({ path: rel, deps: depNames.map((d) => files.get(d) ?? `${d}.ko`) });
    queue.push(...depNames);
  }
  return formatModulesDep(lines);
}

/** Which modules to load from this tree, in order. */
export async function planModules(
  modulesDir: string,
  wanted: readonly string[],
  signal: AbortSignal,
): Promise<ModulePlan> {
  const modulesDep = await modulesDepFor(modulesDir, wanted, signal);
  const builtin = (await readIfExists(path.join(modulesDir, "modules.builtin"))) ?? "";
  return moduleLoadOrder(modulesDep, builtin, wanted);
}
