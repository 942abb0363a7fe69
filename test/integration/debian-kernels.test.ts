// Real downloads from Debian's archive into vmrig's cache (shared with the rest of the suite,
// so later tests and runs reuse them): kernel resolution for all three packaging schemes, the
// "gone version" message, signature checking, and virtiofsd provisioning.
import { readFileSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import type { KernelArtifact, KernelEntry } from "../../harness/types.ts";
import { HostError } from "../../harness/util/errors.ts";
import { resolveKernel } from "../../harness/kernels/provider.ts";
import { bzImageRelease } from "../../harness/kernels/path.ts";
import { downloadDeb, loadSuiteIndex, unpackDeb, verifyClearsigned } from "../../harness/debian/archive.ts";
import { compareDebianVersions } from "../../harness/debian/version.ts";
import { findVirtiofsd, provisionVirtiofsd } from "../../harness/virtiofs/provision.ts";
import { hostQemu, provideQemu } from "../../harness/qemu/provision.ts";
import { qemuInvocation } from "../../harness/qemu/argv.ts";
import { withEnv } from "../helpers/env.ts";

const minutes = (n: number) => n * 60_000;

function debian(version: string, flavour = "cloud-amd64", suite?: string): KernelEntry {
  return { label: `debian-${version}`, source: { kind: "debian", version, flavour, suite }, cmdline: [], expect: {} };
}

async function resolve(e: KernelEntry, lines: string[] = []): Promise<KernelArtifact> {
  return resolveKernel(e, { arch: "x86_64", signal: AbortSignal.timeout(minutes(9)), log: (l) => lines.push(l) });
}

/** What every Debian kernel artifact must offer the image builder and the report. */
async function expectUsableKernel(a: KernelArtifact, upstreamPrefix: string): Promise<void> {
  expect((await fs.stat(a.image)).size).toBeGreaterThan(4_000_000);
  expect(a.release?.startsWith(upstreamPrefix)).toBe(true);
  // The bzImage header agrees with the release the package tree is laid out for.
  expect(bzImageRelease(readFileSync(a.image).subarray(0, 0x10000))).toBe(a.release);
  expect(a.modulesDir && path.basename(a.modulesDir)).toBe(a.release);
  // Debian ships no modules.dep (postinst runs depmod, which hosts need not have); the image
  // builder derives module dependencies from modinfo. What the tree must have is this:
  const modules = await fs.readdir(a.modulesDir!);
  expect(modules).toEqual(expect.arrayContaining(["kernel", "modules.order", "modules.builtin"]));
  expect(readFileSync(path.join(a.modulesDir!, "modules.order"), "utf8")).toMatch(/virtio_net\.ko/);
  expect(readFileSync(a.config!, "utf8")).toMatch(/^CONFIG_VIRTIO_FS=[ym]$/m);
  expect(a.identity).toMatch(/^debian:linux-image-\S+=\S+$/);
}

describe("Debian kernels from the real archive", () => {
  it("resolves 6.12 to the newest 6.12.x cloud-amd64 kernel and unpacks it", { timeout: minutes(10) }, async () => {
    const started = Date.now();
    const a = await resolve(debian("6.12"));
    console.log(`6.12 -> ${a.description} in ${Date.now() - started} ms`);
    await expectUsableKernel(a, "6.12.");
    expect(a.description).toMatch(/^Debian 6\.12\.\d+-\S+ cloud-amd64 \(\S+\)$/);
  });

  it("resolves exactly 6.18.15 from trixie-backports", { timeout: minutes(10) }, async () => {
    const a = await resolve(debian("6.18.15"));
    await expectUsableKernel(a, "6.18.15+");
    expect(a.description).toBe("Debian 6.18.15-1~bpo13+1 cloud-amd64 (trixie-backports)");
    expect(a.identity).toBe("debian:linux-image-6.18.15+deb13-cloud-amd64=6.18.15-1~bpo13+1");
  });

  it("assembles a split 7.x kernel from its binary, modules and base packages", { timeout: minutes(10) }, async () => {
    const a = await resolve(debian("7.3", "cloud-amd64", "trixie-backports"));
    await expectUsableKernel(a, "7.3.");
    expect(path.basename(a.image)).toBe("vmlinuz");
    expect(a.description).toMatch(/^Debian 7\.3\.\d+-\S+ cloud-amd64 \(trixie-backports\)$/);
  });

  it("reuses the unpacked kernel, also with VMRIG_OFFLINE=1", { timeout: minutes(5) }, async () => {
    const first = await resolve(debian("6.18.15"));
    const lines: string[] = [];
    await withEnv({ VMRIG_OFFLINE: "1" }, async () => {
      const again = await resolve(debian("6.18.15"), lines);
      expect(again).toEqual(first);
      // Served from the cache: nothing downloaded or unpacked again.
      expect(lines.filter((l) => /download|unpacked/.test(l))).toEqual([]);
    });
    expect(lines.filter((l) => l.startsWith("downloading"))).toEqual([]);
  });

  it("says a pinned version is gone and names its real neighbours", { timeout: minutes(10) }, async () => {
    const err = await resolve(debian("6.18.14")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostError);
    const message = (err as Error).message;
    console.log(message);
    expect(message).toMatch(
      /^Debian kernel 6\.18\.14 \(cloud-amd64\) is no longer in Debian's archive \(searched: bookworm, .*\)\. Nearest available: /,
    );
    const near = [...message.matchAll(/(\d+\.\d+\.\d+) \(([a-z-]+(?:, [a-z-]+)*)\)/g)].map((m) => m[1]!);
    expect(near).toHaveLength(2);
    expect(compareDebianVersions(near[0]!, "6.18.14")).toBeLessThan(0);
    expect(compareDebianVersions(near[1]!, "6.18.14")).toBeGreaterThan(0);
  });

  it("names the flavours when one does not exist", { timeout: minutes(5) }, async () => {
    await expect(resolve(debian("6.12", "cloud-amd65"))).rejects.toThrow(
      /Debian has no cloud-amd65 kernels .* Flavours available: .*cloud-amd64/,
    );
  });
});

describe("InRelease signatures", () => {
  it("accepts Debian's signed InRelease and refuses an altered copy", { timeout: minutes(2) }, async () => {
    const res = await fetch("http://deb.debian.org/debian/dists/trixie-backports/InRelease");
    const signed = Buffer.from(await res.arrayBuffer());
    const text = await verifyClearsigned(signed, "trixie-backports InRelease");
    expect(text).toMatch(/^Codename: trixie-backports$/m);
    expect(text).not.toContain("BEGIN PGP");

    const altered = Buffer.from(
      signed.toString("utf8").replace(/^Codename: trixie-backports$/m, "Codename: trixie-backpwned"),
    );
    await expect(verifyClearsigned(altered, "altered InRelease")).rejects.toThrow(/signature is BAD/);
  });
});

describe(".deb downloads", () => {
  it("are checked against the signed index and never left half-written", { timeout: minutes(5) }, async () => {
    const cache = await fs.mkdtemp(path.join(os.tmpdir(), "vmrig-test-debs-"));
    await withEnv({ VMRIG_CACHE: cache }, async () => {
      const index = await loadSuiteIndex("trixie", "amd64", { signal: AbortSignal.timeout(minutes(4)) });
      const pkg = index.packages.find((p) => p.name === "libcap-ng0")!;
      const forged = { ...pkg, sha256: "0".repeat(64) };
      await expect(downloadDeb(forged)).rejects.toThrow(/does not match its index entry/);
      const debsDir = path.join(cache, "debian", "debs");
      expect(await fs.readdir(debsDir)).toEqual([]);

      const deb = await downloadDeb(pkg);
      expect(await downloadDeb(pkg)).toBe(deb); // valid cached copy reused
      const root = path.join(cache, "unpacked");
      await unpackDeb(deb, root);
      expect(
        (await fs.readdir(path.join(root, "usr/lib/x86_64-linux-gnu"))).some((n) => n.startsWith("libcap-ng.so.0")),
      ).toBe(true);
    }).finally(() => fs.rm(cache, { recursive: true, force: true }));
  });
});

describe("virtiofsd provisioning", () => {
  it(
    "provides a virtiofsd whose --version runs, and reuses it on the next call",
    { timeout: minutes(10) },
    async () => {
      const started = Date.now();
      const cmd = await provisionVirtiofsd(AbortSignal.timeout(minutes(9)));
      console.log(
        `virtiofsd ${cmd.version} (${cmd.source}) in ${Date.now() - started} ms: ` +
          `${[cmd.argv0, ...cmd.prefixArgs].join(" ")}`,
      );
      const r = await execa(cmd.argv0, [...cmd.prefixArgs, "--version"]);
      expect(r.stdout).toContain(cmd.version);
      expect(cmd.version).toMatch(/^\d+\.\d+\.\d+/);

      const provisioned = await fs.stat(cmd.argv0);
      expect(await provisionVirtiofsd(AbortSignal.timeout(minutes(1)))).toEqual(cmd);
      // Reused, not unpacked again: the same file, untouched.
      expect((await fs.stat(cmd.argv0)).mtimeMs).toBe(provisioned.mtimeMs);
      expect(await findVirtiofsd()).toEqual(cmd);
    },
  );
});

describe("QEMU builds from Debian's archive (rows with qemu:)", () => {
  const host = hostQemu("x86_64", "host");
  const qemu11 = { kind: "debian" as const, version: "11.1", suite: "trixie-backports" };
  it(
    "provisions Debian's QEMU 11.1 with its own libraries and firmware, and it runs here",
    { timeout: minutes(15) },
    async () => {
      const lines: string[] = [];
      const cmd = await provideQemu(qemu11, "x86_64", host, {
        signal: AbortSignal.timeout(minutes(14)),
        log: (l) => lines.push(l),
      });
      expect(cmd.version).toMatch(/^11\.1\.\d+ \(Debian /);
      expect(cmd.source).toMatch(/^debian trixie-backports qemu-system-x86 1:11\.1\.\d+\+ds-\S+~bpo13\+\d+$/);
      // It starts a machine with its own firmware (-L) and modules, not the host's 10.0 ones.
      const { binary, args } = qemuInvocation(cmd, [
        "-nodefaults",
        "-machine",
        "q35,accel=tcg",
        "-display",
        "none",
        "-monitor",
        "stdio",
        "-S",
      ]);
      const r = await execa(binary, args, { input: "info version\nquit\n", reject: false, timeout: 60_000 });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^11\.1\.\d+/m);
      // The second call reuses the unpacked build: no package is downloaded or unpacked again.
      const again: string[] = [];
      expect(await provideQemu(qemu11, "x86_64", host, { log: (l) => again.push(l) })).toEqual(cmd);
      expect(again.filter((l) => /^downloading |provisioned/.test(l))).toEqual([]);

      // Offline, the provisioned build is the answer; a version never provisioned is a clear refusal.
      await withEnv({ VMRIG_OFFLINE: "1" }, async () => {
        expect(await provideQemu(qemu11, "x86_64", host)).toEqual(cmd);
        await expect(provideQemu({ kind: "debian", version: "9.2" }, "x86_64", host)).rejects.toThrow(
          /^VMRIG_OFFLINE=1 but no QEMU 9\.2 was provisioned in /,
        );
      });
    },
  );

  it("says a QEMU version Debian does not have is gone, naming the nearest", { timeout: minutes(10) }, async () => {
    const err = await provideQemu({ kind: "debian", version: "10.2" }, "x86_64", host).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostError);
    expect((err as Error).message).toMatch(
      /^QEMU 10\.2 is not in Debian's archive \(searched bookworm, .*\); nearest available: 10\.\d+\.\d+ \(\S+\), 11\.\d+\.\d+ \(\S+\)$/,
    );
  });
});
