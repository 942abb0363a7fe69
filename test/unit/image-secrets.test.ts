// The guest image holds the guest's private SSH host key: the image and the key are the owner's
// alone, as ssh keeps its keys; an image made before that becomes private when it is next used.
import { chmodSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readImage, writeImage } from "../../harness/image/image-dir.ts";
import { freshCachePerTest } from "../helpers/env.ts";

const mode = (file: string) => statSync(file).mode & 0o777;

describe("guest image secrets", () => {
  const dir = freshCachePerTest("vmrig-image-secrets-");

  it("writes the initramfs and the host key 0600, and makes an older 0644 image private on read", async () => {
    const image = path.join(dir(), "images", "x");
    const record = {
      identity: "x",
      arch: "x86_64" as const,
      modules: [],
      builtAt: new Date().toISOString(),
      builtFor: { kernel: "k", identity: "k" },
      missingModules: [],
      builtinModules: [],
    };
    await writeImage(image, { entries: [], compression: "gzip" }, record, new AbortController().signal);
    const read = await readImage(image);
    expect(mode(read!.initrd)).toBe(0o600);
    expect(mode(path.join(image, "hostkey"))).toBe(0o600);
    chmodSync(read!.initrd, 0o644);
    await readImage(image);
    expect(mode(read!.initrd)).toBe(0o600);
  });
});
