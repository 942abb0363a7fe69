// The on-disk form of a built image: cachePaths.images()/<identity>/ with the initrd, the host
// key pair and image.json. Written into a temporary sibling and renamed into place, so the
// cache never holds half an image.

import fs from "node:fs/promises";
import path from "node:path";
import type { Arch, GuestImage } from "../types.ts";
import { buildDirAtomic, isTempSibling } from "../util/atomic-fs.ts";
import { initrdFileName, packInitramfs, type InitrdCompression } from "./cpio.ts";
import { generateHostKey } from "./host-key.ts";
import { GUEST_DIRECTORIES, GUEST_HOST_KEY } from "./init-files.ts";
import { readModuleElf } from "./module-files.ts";

/** One thing placed in the image: a host file copied, a module decompressed, generated text, a link. */
export type ImageEntry =
  | { guestPath: string; kind: "copy"; hostPath: string; mode: number; sha256: string }
  | { guestPath: string; kind: "module"; hostPath: string; sha256: string }
  | { guestPath: string; kind: "text"; content: string; mode: number }
  | { guestPath: string; kind: "symlink"; target: string };

/** image.json: what the image holds and what it was first built for (informational). */
export interface ImageRecord {
  identity: string;
  arch: Arch;
  initrd: string;
  hostKeyPublic: string;
  modules: string[];
  builtAt: string;
  builtFor: { kernel: string; release?: string; identity: string };
  missingModules: string[];
  builtinModules: string[];
}

const PRIVATE_FILE_MODE = 0o600;

export async function readImage(dir: string): Promise<GuestImage | undefined> {
  let record: ImageRecord;
  try {
    record = JSON.parse(await fs.readFile(path.join(dir, "image.json"), "utf8")) as ImageRecord;
    await fs.access(path.join(dir, record.initrd));
  } catch {
    return undefined;
  }
  // Images built before their key was kept private become private on first use.
  await fs.chmod(path.join(dir, record.initrd), PRIVATE_FILE_MODE).catch(() => undefined);
  return {
    initrd: path.join(dir, record.initrd),
    hostKeyPublic: record.hostKeyPublic,
    modules: record.modules,
    identity: record.identity,
  };
}

/** Stages, packs and installs the image at `dir`; if another build installed it first, keeps that one. */
export async function writeImage(
  dir: string,
  content: { entries: ImageEntry[]; compression: InitrdCompression },
  record: Omit<ImageRecord, "initrd" | "hostKeyPublic">,
  signal: AbortSignal,
): Promise<void> {
  await fs.mkdir(path.dirname(dir), { recursive: true });
  await removeAbandonedBuilds(path.dirname(dir));
  // Another build of the same inputs may finish first; its image is as good as ours.
  await buildDirAtomic(dir, async (tmp) => {
    const staging = path.join(tmp, "root");
    await stage(staging, content.entries, signal);
    const hostKeyFile = path.join(tmp, "hostkey");
    const hostKeyPublic = await generateHostKey(hostKeyFile, signal);
    await fs.copyFile(hostKeyFile, path.join(staging, GUEST_HOST_KEY));
    await fs.chmod(path.join(staging, GUEST_HOST_KEY), 0o600);
    const initrd = initrdFileName(content.compression);
    await packInitramfs(staging, path.join(tmp, initrd), content.compression, signal);
    // The initramfs holds the guest's private host key: readable by its owner only, like the key itself.
    await fs.chmod(path.join(tmp, initrd), PRIVATE_FILE_MODE);
    await fs.chmod(hostKeyFile, PRIVATE_FILE_MODE);
    await fs.rm(staging, { recursive: true });
    await fs.writeFile(path.join(tmp, "hostkey.pub"), `${hostKeyPublic}\n`);
    const full: ImageRecord = { ...record, initrd, hostKeyPublic };
    await fs.writeFile(path.join(tmp, "image.json"), `${JSON.stringify(full, null, 2)}\n`);
  });
}

/** Builds killed half-way (SIGKILL, power loss) leave their temporary directory behind. */
async function removeAbandonedBuilds(imagesDir: string): Promise<void> {
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for (const name of await fs.readdir(imagesDir)) {
    if (!isTempSibling(name)) continue;
    const stat = await fs.stat(path.join(imagesDir, name)).catch(() => undefined);
    if (stat && stat.mtimeMs < dayAgo) await fs.rm(path.join(imagesDir, name), { recursive: true, force: true });
  }
}

async function stage(root: string, entries: ImageEntry[], signal: AbortSignal): Promise<void> {
  const at = (guestPath: string) => path.join(root, guestPath);
  for (const d of GUEST_DIRECTORIES) await fs.mkdir(at(d), { recursive: true });
  await fs.chmod(at("/root"), 0o700);
  await fs.chmod(at("/tmp"), 0o1777);
  for (const e of entries) {
    await fs.mkdir(path.dirname(at(e.guestPath)), { recursive: true });
    switch (e.kind) {
      case "copy":
        await fs.copyFile(e.hostPath, at(e.guestPath));
        await fs.chmod(at(e.guestPath), e.mode);
        break;
      case "module":
        await fs.writeFile(at(e.guestPath), await readModuleElf(e.hostPath, signal), { mode: 0o644 });
        break;
      case "text":
        await fs.writeFile(at(e.guestPath), e.content, { mode: e.mode });
        await fs.chmod(at(e.guestPath), e.mode);
        break;
      case "symlink":
        await fs.symlink(e.target, at(e.guestPath));
        break;
    }
  }
}
