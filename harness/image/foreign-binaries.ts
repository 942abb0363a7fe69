// Guest userland for an architecture the host cannot run natively (an arm64 guest on an x86
// host): Debian bookworm's busybox-static and dropbear-bin of the guest architecture, with the
// shared libraries dropbear needs and the loader, all from the same suite's .debs, unpacked
// once into the cache. Nothing of the host's own libraries goes into such an image.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import type { Arch } from "../types.ts";
import { archRecord } from "../arch.ts";
import { HostError } from "../util/errors.ts";
import { cachePaths } from "../util/paths.ts";
import { debianArch, resolveWithDependencies } from "../debian/archive.ts";
import { provisionUnpacked, reusableEntry } from "../debian/private-program.ts";
import { busyboxAppletNames, elfNeeded } from "./elf-dynamic.ts";
import { elfInterpreter } from "./elf.ts";
import type { GuestBinaries } from "./binaries-types.ts";

/** The suite the guest userland comes from (the host's own busybox and dropbear are bookworm's). */
export const GUEST_USERLAND_SUITE = "bookworm";
const ROOT_PACKAGES = ["busybox-static", "dropbear-bin"] as const;
const MANIFEST = "vmrig-userland.json";
const FORMAT = 1;

interface UserlandManifest {
  format: number;
  arch: Arch;
  suite: string;
  packages: Array<{ name: string; version: string; sha256: string }>;
  /** Paths relative to the entry's root/ directory. */
  busybox: string;
  dropbear: string;
  libraries: Array<{ guestPath: string; file: string }>;
  applets: string[];
}

/**
 * `guestPath` inside the unpacked tree at `root`, with every symlink followed inside the tree
 * (Debian's links may be absolute: /lib/ld-linux-aarch64.so.1 -> /lib/aarch64-linux-gnu/...,
 * which outside the tree would name the host's files). Returns the tree-relative real path.
 */
export async function resolveInTree(root: string, guestPath: string): Promise<string | undefined> {
  let pending = guestPath.split("/").filter(Boolean);
  let resolved: string[] = [];
  for (let hops = 0; pending.length > 0;) {
    const part = pending.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const rel = [...resolved, part].join("/");
    const st = await fs.lstat(path.join(root, rel)).catch(() => undefined);
    if (!st) return undefined;
    if (st.isSymbolicLink()) {
      if (++hops > 40) return undefined;
      const target = await fs.readlink(path.join(root, rel));
      if (target.startsWith("/")) resolved = [];
      pending = [...target.split("/").filter(Boolean), ...pending];
      continue;
    }
    resolved.push(part);
  }
  return resolved.join("/");
}

/** Where busybox installs each applet, from a busybox the host can run; else /bin. */
async function appletPaths(names: string[]): Promise<string[]> {
  const where = new Map<string, string>();
  for (const host of ["/bin/busybox", "/usr/bin/busybox"]) {
    const r = await execa(host, ["--list-full"], { reject: false });
    if (r.exitCode !== 0) continue;
    for (const line of String(r.stdout).split("\n")) if (line) where.set(path.basename(line), `/${line}`);
    break;
  }
  return names.map((n) => where.get(n) ?? `/bin/${n}`);
}

async function libraryClosure(root: string, arch: Arch, program: string): Promise<UserlandManifest["libraries"]> {
  const triplet = archRecord(arch).gnuTriplet;
  const dirs = [`/lib/${triplet}`, `/usr/lib/${triplet}`, "/lib", "/usr/lib"];
  const bytes = await fs.readFile(path.join(root, program));
  const libraries: UserlandManifest["libraries"] = [];
  const interp = elfInterpreter(bytes);
  if (interp) {
    const file = await resolveInTree(root, interp);
    if (!file) throw new HostError(`the unpacked ${arch} packages have no ${interp} (dropbear's loader)`);
    libraries.push({ guestPath: interp, file });
  }
  const seen = new Set<string>();
  const queue = elfNeeded(bytes);
  while (queue.length) {
    const name = queue.shift()!;
    if (seen.has(name)) continue;
    seen.add(name);
    let found: { guestPath: string; file: string } | undefined;
    for (const d of dirs) {
      const file = await resolveInTree(root, `${d}/${name}`);
      if (file) {
        found = { guestPath: `${d}/${name}`, file };
        break;
      }
    }
    if (!found)
      throw new HostError(`dropbear (${arch}) needs ${name}, which none of the unpacked Debian packages provides`);
    if (!libraries.some((l) => l.guestPath === found.guestPath)) libraries.push(found);
    queue.push(...elfNeeded(await fs.readFile(path.join(root, found.file))));
  }
  return libraries;
}

/** busybox, dropbear, dropbear's libraries and loader for `arch`, from Debian's .debs (cached). */
export async function debianGuestUserland(
  arch: Arch,
  signal: AbortSignal,
  log: (l: string) => void = () => undefined,
): Promise<GuestBinaries> {
  const debArch = debianArch(arch);
  const resolved = await resolveWithDependencies([GUEST_USERLAND_SUITE], debArch, ROOT_PACKAGES, { signal, log });
  // Sorted by name: the cache key below does not depend on the order the closure was found in.
  const packages = resolved.sort((a, b) => a.name.localeCompare(b.name));
  const key = createHash("sha256")
    .update(JSON.stringify([FORMAT, arch, packages.map((p) => [p.name, p.version, p.sha256])]))
    .digest("hex")
    .slice(0, 16);
  const dir = path.join(cachePaths.tools(), "guest-userland", `${debArch}-${key}`);
  // The key names the packages and the format: an entry there is always the one wanted.
  let m = await reusableEntry<UserlandManifest>(dir, MANIFEST, () => true, { what: "guest userland", log });
  if (!m) {
    m = await provisionUnpacked<UserlandManifest>(
      {
        dir,
        manifestName: MANIFEST,
        packages,
        treeDir: "root",
        describe: async ({ tree: root }) => {
          const busybox = await resolveInTree(root, "/bin/busybox");
          const dropbear = await resolveInTree(root, "/usr/sbin/dropbear");
          if (!busybox || !dropbear) {
            const what = `Debian's ${debArch} busybox-static / dropbear-bin`;
            throw new HostError(`${what} did not unpack bin/busybox and usr/sbin/dropbear`);
          }
          const names = busyboxAppletNames(await fs.readFile(path.join(root, busybox)));
          if (names.length < 50) {
            throw new HostError(`found only ${names.length} applet names in Debian's ${debArch} busybox`);
          }
          return {
            format: FORMAT,
            arch,
            suite: GUEST_USERLAND_SUITE,
            packages: packages.map((p) => ({ name: p.name, version: p.version, sha256: p.sha256 })),
            busybox,
            dropbear,
            libraries: await libraryClosure(root, arch, dropbear),
            applets: await appletPaths(names),
          };
        },
      },
      { signal, log },
    );
    log(`guest userland for ${arch} unpacked from Debian ${GUEST_USERLAND_SUITE} into ${dir}`);
  }
  const root = path.join(dir, "root");
  return {
    busybox: path.join(root, m.busybox),
    applets: m.applets,
    dropbear: path.join(root, m.dropbear),
    libraries: m.libraries.map((l) => ({ guestPath: l.guestPath, hostPath: path.join(root, l.file) })),
  };
}
