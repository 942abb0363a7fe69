// What `read` and `write` share: a stream of `size` bytes in `blockSize` requests through the
// share, checked with the probe's FNV-1a 64 against the host's copy.
import { createReadStream } from "node:fs";
import { z } from "zod";
import { formatSize } from "../util/size.ts";
import { Fnv1a64 } from "./fnv.ts";
import { hostFileSize, shareName, size } from "./fields.ts";

const DEFAULT_BLOCK_BYTES = 1024 ** 2;

export const streamFields = {
  share: shareName(),
  size: hostFileSize(),
  blockSize: size().optional().meta({ description: "Bytes per request; default 1M, or size when that is smaller." }),
  direct: z.boolean().default(false).meta({ description: "O_DIRECT." }),
};

type Stream = { size: number; blockSize?: number | undefined };

export function blockSizeWithinSize(stream: Stream, ctx: z.RefinementCtx): void {
  if (stream.blockSize !== undefined && stream.blockSize > stream.size) {
    ctx.addIssue({
      code: "custom",
      path: ["blockSize"],
      input: stream.blockSize,
      message: `must not exceed size (${formatSize(stream.size)}), got ${formatSize(stream.blockSize)}`,
    });
  }
}

/** A small `size` with no blockSize means "in one request", not an error about a default. */
export const blockBytesOf = (stream: Stream) => stream.blockSize ?? Math.min(DEFAULT_BLOCK_BYTES, stream.size);

export async function hashFile(file: string): Promise<{ hash: string; bytes: number }> {
  const h = new Fnv1a64();
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hash: h.hex(), bytes };
}
