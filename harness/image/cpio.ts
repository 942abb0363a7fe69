// Packs a staging directory into a compressed newc cpio the kernel unpacks as its initramfs.

import { execa } from "execa";
import { listTree } from "./walk.ts";

export type InitrdCompression = "zstd" | "gzip";

/**
 * zstd when the kernel config says the kernel can unpack it (a smaller image, as fast to unpack);
 * gzip otherwise, which every kernel vmrig boots supports.
 */
export function initrdCompression(kernelConfig: string | undefined): InitrdCompression {
  return kernelConfig && /^CONFIG_RD_ZSTD=y$/m.test(kernelConfig) ? "zstd" : "gzip";
}

export function initrdFileName(compression: InitrdCompression): string {
  return compression === "zstd" ? "initrd.cpio.zst" : "initrd.cpio.gz";
}

const COMPRESSOR: Record<InitrdCompression, [string, string[]]> = {
  // -12 comes within ~15% of -19's size at a tenth of its time; measured guest unpack times
  // were alike. No --long: the kernel's unpacker allocates the whole window.
  zstd: ["zstd", ["-q", "-12", "-T0", "-c"]],
  gzip: ["gzip", ["-9", "-n", "-c"]],
};

// -R 0:0 so the guest's files belong to root whoever builds; --reproducible drops the host's
// device and inode numbers.
const CPIO_ARGS = ["--quiet", "-o", "-H", "newc", "--null", "--reproducible", "-R", "0:0"];

/** How an archive is packed, for cache keys: another compressor setting is another image. */
export function packingDescription(compression: InitrdCompression): string {
  return JSON.stringify([CPIO_ARGS, COMPRESSOR[compression]]);
}

export async function packInitramfs(
  stagingDir: string,
  outFile: string,
  compression: InitrdCompression,
  signal: AbortSignal,
): Promise<void> {
  const names = await listTree(stagingDir); // parents first, sorted: a stable archive
  const [compressor, args] = COMPRESSOR[compression];
  await execa("cpio", CPIO_ARGS, {
    cwd: stagingDir,
    input: names.map((n) => `${n}\0`).join(""),
    cancelSignal: signal,
  }).pipe(compressor, args, { stdout: { file: outFile }, cancelSignal: signal });
}
