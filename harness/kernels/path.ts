// Kernel provider for `source: {kind: path, kernel, modules?, config?}`: a kernel the user
// built or fetched themselves. Nothing is copied; the files are checked and identified by hash.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { constants as zlibConstants, gunzipSync } from "node:zlib";
import type { Arch, KernelArtifact, KernelEntry } from "../types.ts";
import { SpecError, VmrigError } from "../util/errors.ts";
import type { KernelContext, KernelProvider } from "./provider-types.ts";

export const pathKernelProvider: KernelProvider = { kind: "path", resolve: resolvePathKernel };

export async function resolvePathKernel(entry: KernelEntry, ctx: KernelContext): Promise<KernelArtifact> {
  const source = entry.source;
  if (source.kind !== "path") throw new VmrigError(`Kernel "${entry.label}" is not a path kernel.`);
  const base = ctx.baseDir ?? process.cwd();
  const image = path.resolve(base, source.kernel);
  await expectKind(entry, "kernel", image, "file");
  const modulesDir = source.modules === undefined ? undefined : path.resolve(base, source.modules);
  if (modulesDir) await expectKind(entry, "modules", modulesDir, "directory");
  const config = source.config === undefined ? undefined : path.resolve(base, source.config);
  if (config) await expectKind(entry, "config", config, "file");

  const release = (modulesDir && releaseFromModulesDir(modulesDir)) ?? bzImageRelease(await readHead(image, 0x10000));
  const identity = `sha256:${await sha256File(image)}`;
  return {
    label: entry.label,
    arch: ctx.arch,
    image,
    release,
    modulesDir,
    config,
    description: `${release ? `Linux ${release}` : "kernel"} from ${image}`,
    identity,
  };
}

async function expectKind(entry: KernelEntry, key: string, file: string, kind: "file" | "directory"): Promise<void> {
  const st = await fs.stat(file).catch(() => undefined);
  if (!st) throw pathProblem(entry, key, `${file} does not exist`);
  if (kind === "file" ? !st.isFile() : !st.isDirectory()) throw pathProblem(entry, key, `${file} is not a ${kind}`);
}

/** Where the scenario wrote the path, when it did (a `--kernel-path` has no file to name). */
function pathProblem(entry: KernelEntry, key: string, message: string): VmrigError {
  const at = entry.source.kind === "path" ? entry.source.writtenAt?.[key] : undefined;
  return at ? new SpecError([{ ...at, message }]) : new VmrigError(`Kernel "${entry.label}": ${key} ${message}.`);
}

/**
 * Every path kernel's files, before any kernel is fetched or built: they exist, are what they are
 * named, and the image is a kernel of the row's architecture (a typo must not cost a download).
 */
export async function checkPathKernels(entries: Array<{ entry: KernelEntry; arch: Arch }>): Promise<void> {
  for (const { entry, arch } of entries) {
    const source = entry.source;
    if (source.kind !== "path") continue;
    await expectKind(entry, "kernel", source.kernel, "file");
    if (source.modules !== undefined) await expectKind(entry, "modules", source.modules, "directory");
    if (source.config !== undefined) await expectKind(entry, "config", source.config, "file");
    const head = await readHead(source.kernel, 0x10000);
    const found =
      imageArch(head) ?? (Buffer.from(head.subarray(0, 4)).toString("latin1") === "\x7fELF" ? arch : undefined);
    if (!found)
      throw pathProblem(
        entry,
        "kernel",
        `${source.kernel} is not a kernel image (no bzImage, arm64 Image or ELF header)`,
      );
    if (found !== arch)
      throw pathProblem(entry, "kernel", `${source.kernel} is an ${found} kernel; the row is ${arch}`);
  }
}

/** lib/modules/<release>: the directory name is the release when it looks like one. */
export function releaseFromModulesDir(modulesDir: string): string | undefined {
  const name = path.basename(modulesDir);
  return /^\d+\.\d+/.test(name) ? name : undefined;
}

/**
 * The release an x86 bzImage announces: the boot protocol header ("HdrS" at 0x202) holds at
 * 0x20E a pointer (relative to 0x200) to "6.12.0-foo (user@host) #1 SMP ...". Other formats
 * (arm64 Image, vmlinux) carry no such header: undefined.
 */
export function bzImageRelease(head: Uint8Array): string | undefined {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length < 0x210 || b.toString("latin1", 0x202, 0x206) !== "HdrS") return undefined;
  const at = b.readUInt16LE(0x20e) + 0x200;
  if (at >= b.length) return undefined;
  const end = b.indexOf(0, at);
  const text = b.toString("latin1", at, end < 0 ? b.length : end);
  const release = text.split(" ")[0];
  return release && /^\d+\.\d+/.test(release) ? release : undefined;
}

/**
 * Pure: the architecture a kernel image's header names. An x86 bzImage has the boot protocol's
 * "HdrS" at 0x202; an arm64 Image has "ARM\x64" at 0x38 (also inside a gzip, as Debian ships
 * arm64's vmlinuz); an EFI zboot image is a PE file whose COFF machine says it. Else undefined.
 */
export function imageArch(head: Uint8Array): Arch | undefined {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 0x206 && b.toString("latin1", 0x202, 0x206) === "HdrS") return "x86_64";
  if (b.length >= 0x3c && b.toString("latin1", 0x38, 0x3c) === "ARM\x64") return "aarch64";
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return imageArch(gunzipHead(b));
  if (b.length < 0x40 || b.toString("latin1", 0, 2) !== "MZ") return undefined;
  const pe = b.readUInt32LE(0x3c);
  if (pe + 6 > b.length || b.toString("latin1", pe, pe + 4) !== "PE\0\0") return undefined;
  const machine = b.readUInt16LE(pe + 4);
  return machine === 0xaa64 ? "aarch64" : machine === 0x8664 ? "x86_64" : undefined;
}

/** What the start of a gzip stream inflates to (a truncated stream is fine: only its head is wanted). */
function gunzipHead(b: Buffer): Buffer {
  try {
    return gunzipSync(b, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: 0x10000 });
  } catch {
    return Buffer.alloc(0);
  }
}

/** The first `bytes` of a file (an image's header). */
export async function readHead(file: string, bytes: number): Promise<Uint8Array> {
  const fh = await fs.open(file, "r");
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), hash);
  return hash.digest("hex");
}
