// The path provider, the provider registry, and the local (no network) parts of the Debian
// archive client: signature refusal, error classification, atomic cache entries.
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { KernelEntry, KernelSource } from "../../harness/types.ts";
import { HostError, VmrigError } from "../../harness/util/errors.ts";
import { buildDirAtomic, writeFileAtomic } from "../../harness/util/atomic-fs.ts";
import { resolveKernel } from "../../harness/kernels/provider.ts";
import { debianSourceBuild } from "../../harness/kernels/from-source/spec.ts";
import { bzImageRelease, releaseFromModulesDir } from "../../harness/kernels/path.ts";
import { debianArch, isTransient, loadSuiteIndex, verifyClearsigned } from "../../harness/debian/archive.ts";

const tmp = mkdtempSync(path.join(os.tmpdir(), "vmrig-test-kernels-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const entry = (source: KernelSource): KernelEntry => ({ label: "k", source, cmdline: [], expect: {} });
const ctx = { arch: "x86_64" as const, signal: new AbortController().signal, log: () => undefined, baseDir: tmp };

/** A bzImage-shaped header: "HdrS" at 0x202 and the kernel_version pointer at 0x20E. */
function bzImageHead(version: string, at = 0x4300): Buffer {
  const b = Buffer.alloc(at + 0x200 + version.length + 16);
  b.write("HdrS", 0x202, "latin1");
  b.writeUInt16LE(at, 0x20e);
  b.write(`${version}\0`, at + 0x200, "latin1");
  return b;
}

describe("bzImageRelease", () => {
  it("reads the release from the boot protocol header", () => {
    expect(bzImageRelease(bzImageHead("6.12.117+deb13-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP"))).toBe(
      "6.12.117+deb13-cloud-amd64",
    );
  });
  it("gives up on images without that header", () => {
    expect(bzImageRelease(Buffer.alloc(0x1000))).toBeUndefined();
    expect(bzImageRelease(Buffer.from("ARMd"))).toBeUndefined();
  });
});

describe("releaseFromModulesDir", () => {
  it("takes lib/modules/<release>", () => {
    expect(releaseFromModulesDir("/x/lib/modules/6.12.0-vmrig")).toBe("6.12.0-vmrig");
    expect(releaseFromModulesDir("/x/modules")).toBeUndefined();
  });
});

describe("path kernels", () => {
  const image = path.join(tmp, "bzImage");
  writeFileSync(image, bzImageHead("6.12.0-vmrig (me@host) #1"));
  mkdirSync(path.join(tmp, "lib", "modules", "6.12.0-custom"), { recursive: true });
  writeFileSync(path.join(tmp, "config"), "CONFIG_VIRTIO_FS=y\n");

  it("checks and identifies the files, resolving relative paths against baseDir", async () => {
    const a = await resolveKernel(
      entry({ kind: "path", kernel: "bzImage", modules: "lib/modules/6.12.0-custom", config: "config" }),
      ctx,
    );
    const sha = createHash("sha256")
      .update(await fs.readFile(image))
      .digest("hex");
    expect(a).toMatchObject({
      label: "k",
      arch: "x86_64",
      image,
      release: "6.12.0-custom", // the modules directory names the release the modules were built for
      modulesDir: path.join(tmp, "lib", "modules", "6.12.0-custom"),
      config: path.join(tmp, "config"),
      identity: `sha256:${sha}`,
    });
  });

  it("falls back to the image's own release string", async () => {
    const a = await resolveKernel(entry({ kind: "path", kernel: image }), ctx);
    expect(a.release).toBe("6.12.0-vmrig");
    expect(a.modulesDir).toBeUndefined();
  });

  it("names the missing or wrong path", async () => {
    await expect(resolveKernel(entry({ kind: "path", kernel: "nope/bzImage" }), ctx)).rejects.toThrow(
      new VmrigError(`Kernel "k": kernel ${path.join(tmp, "nope", "bzImage")} does not exist.`),
    );
    await expect(resolveKernel(entry({ kind: "path", kernel: image, modules: "config" }), ctx)).rejects.toThrow(
      /modules .*config is not a directory/,
    );
  });
});

describe("resolveKernel", () => {
  it("hands build kernels to the builder, which checks the spec's files before anything else", async () => {
    const missing = path.join(tmp, "no-such.config");
    const spec = debianSourceBuild("k", "linux-source-7.3", "x86_64", [missing]);
    const p = resolveKernel(entry({ kind: "build", spec }), ctx);
    await expect(p).rejects.toBeInstanceOf(VmrigError);
    await expect(p).rejects.toThrow(`Kernel "k": build.config[0]: ${missing} does not exist`);
  });
  it("rejects a debian version it cannot interpret before touching the network", async () => {
    await expect(
      resolveKernel(entry({ kind: "debian", version: "latest", flavour: "cloud-amd64" }), ctx),
    ).rejects.toThrow(/version "latest" is not a Debian kernel version/);
  });
});

describe("verifyClearsigned", () => {
  const saved = process.env.VMRIG_DEBIAN_KEYRING;
  afterEach(() => {
    if (saved === undefined) delete process.env.VMRIG_DEBIAN_KEYRING;
    else process.env.VMRIG_DEBIAN_KEYRING = saved;
  });

  it("says what to install when the keyring is missing", async () => {
    process.env.VMRIG_DEBIAN_KEYRING = path.join(tmp, "no-such-keyring.gpg");
    const p = verifyClearsigned(Buffer.from("x"), "test");
    await expect(p).rejects.toBeInstanceOf(HostError);
    await expect(p).rejects.toThrow(/keyring .* is missing: install the debian-archive-keyring package/);
  });

  it("refuses unsigned data", async () => {
    const text =
      "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSuite: stable\n" +
      "-----BEGIN PGP SIGNATURE-----\n\niQ==\n-----END PGP SIGNATURE-----\n";
    await expect(verifyClearsigned(Buffer.from(text), "test")).rejects.toThrow(/Signature check of test failed/);
  });
});

describe("loadSuiteIndex", () => {
  it("stops at once when aborted, without touching the cache", async () => {
    const saved = process.env.VMRIG_CACHE;
    process.env.VMRIG_CACHE = path.join(tmp, "abort-cache");
    try {
      await expect(loadSuiteIndex("sid", "amd64", { signal: AbortSignal.abort() })).rejects.toThrow(/abort/i);
      expect(readdirSync(tmp)).not.toContain("abort-cache");
    } finally {
      if (saved === undefined) delete process.env.VMRIG_CACHE;
      else process.env.VMRIG_CACHE = saved;
    }
  });
});

describe("isTransient", () => {
  it("retries network failures, not answers", () => {
    expect(isTransient(new TypeError("fetch failed"))).toBe(true);
    expect(isTransient(Object.assign(new Error("reset"), { code: "ECONNRESET" }))).toBe(true);
    expect(isTransient(new HostError("sha256 mismatch"))).toBe(false);
    expect(isTransient(new DOMException("aborted", "AbortError"))).toBe(false);
  });
});

describe("debianArch", () => {
  it("maps vmrig and Node architecture names", () => {
    expect(debianArch("x86_64")).toBe("amd64");
    expect(debianArch("x64")).toBe("amd64");
    expect(debianArch("aarch64")).toBe("arm64");
    expect(() => debianArch("riscv64")).toThrow(HostError);
  });
});

describe("atomic cache entries", () => {
  it("leave nothing behind when the build fails", async () => {
    const dest = path.join(tmp, "atomic", "entry");
    await expect(
      buildDirAtomic(dest, async (t) => {
        writeFileSync(path.join(t, "half"), "x");
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(readdirSync(path.dirname(dest))).toEqual([]);
  });

  it("appear complete, and a second builder defers to the first", async () => {
    const dest = path.join(tmp, "atomic", "entry2");
    await buildDirAtomic(dest, async (t) => writeFileSync(path.join(t, "who"), "first"));
    await buildDirAtomic(dest, async (t) => writeFileSync(path.join(t, "who"), "second"));
    expect(await fs.readFile(path.join(dest, "who"), "utf8")).toBe("first");
    expect(readdirSync(path.dirname(dest)).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("write files whole", async () => {
    const f = path.join(tmp, "atomic", "deep", "file.json");
    await writeFileAtomic(f, "{}");
    expect(await fs.readFile(f, "utf8")).toBe("{}");
  });
});
