// Per-row architecture and page size in the scenario, and the pure parts of the arm64 guest
// userland (Debian .deb dependency closure, ELF DT_NEEDED, busybox applets, links in a tree).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseScenario } from "../../harness/scenario/load.ts";
import { kernelArch, kernelPageSize, scenarioArches } from "../../harness/scenario/platform.ts";
import { SpecError } from "../../harness/util/errors.ts";
import { busyboxAppletNames, elfNeeded } from "../../harness/image/elf-dynamic.ts";
import { resolveInTree } from "../../harness/image/foreign-binaries.ts";
import { parseLdd } from "../../harness/image/binaries.ts";
import { resolveWithDependencies } from "../../harness/debian/archive.ts";
import { withEnv } from "../helpers/env.ts";

const load = (text: string) => parseScenario(text, "/s/t.yaml");
const errors = (text: string): string[] => {
  try {
    load(text);
  } catch (e) {
    if (e instanceof SpecError) return e.message.split("\n");
    throw e;
  }
  throw new Error("loaded");
};

const scenario = (kernels: string, machine = "machine: { arch: aarch64 }") => `name: t
${machine}
kernels:
${kernels}
shares: [{ tag: share, log: debug }]
workloads:
  - { id: overlay, overlayReaddir: { share: share, entries: 6000 } }
expect: { default: [PASS, SHORT] }
`;

describe("kernels.X.arch and kernels.X.pageSize", () => {
  it("a row may name its own arch and page size; the rest default to the machine", () => {
    const s = load(
      scenario(
        `  a16k: { debian: { version: "7.3", flavour: arm64-16k }, pageSize: 16K }
  x86: { debian: { version: "7.3", flavour: cloud-amd64 }, arch: x86_64, pageSize: 4K }
  plain: { debian: { version: "7.3", flavour: arm64 } }`,
        "machine: { arch: aarch64, pageSize: 4K }",
      ),
    );
    const [a16k, x86, plain] = s.kernels;
    expect([kernelArch(s, a16k!), kernelPageSize(s, a16k!)]).toEqual(["aarch64", "16K"]);
    expect([kernelArch(s, x86!), kernelPageSize(s, x86!)]).toEqual(["x86_64", "4K"]);
    expect([kernelArch(s, plain!), kernelPageSize(s, plain!)]).toEqual(["aarch64", "4K"]);
    expect(scenarioArches(s)).toEqual(["aarch64", "x86_64"]);
    expect(s.workloads[0]).toEqual({
      id: "overlay",
      kind: "overlayReaddir",
      share: "share",
      entries: 6000,
      bufferBytes: 32768,
      lister: "getdents",
    });
    expect(s.shares[0]!.logLevel).toBe("debug");
    expect(s.expectDefault).toEqual(["PASS", "SHORT"]);
  });

  it("without a Debian flavour, the row's arch and page size pick Debian's image; 64K has none", () => {
    const s = load(
      scenario(`  a4k: { debian: { version: "7.3" } }
  a16k: { debian: { version: "7.3" }, pageSize: 16K }
  x86: { debian: { version: "7.3" }, arch: x86_64 }
  named: { debian: { version: "7.3", flavour: cloud-arm64 }, pageSize: 4K }`),
    );
    expect(s.kernels.map((k) => (k.source.kind === "debian" ? k.source.flavour : ""))).toEqual([
      "arm64",
      "arm64-16k",
      "cloud-amd64",
      "cloud-arm64",
    ]);
    expect(errors(scenario(`  k: { debian: { version: "7.3" }, pageSize: 64K }`))).toEqual([
      "/s/t.yaml:4:8 kernels.k.debian: Debian has no aarch64 kernel with 64K pages: name a flavour, or build one " +
        '(build: { source: "debian:linux-source-7.3", config: [kernels/guest-arm64-64k.config] })',
    ]);
  });

  it("refuses a page size the row's architecture does not have, at the key that says it", () => {
    expect(
      errors(scenario(`  k: { debian: { version: "7.3", flavour: cloud-amd64 }, arch: x86_64, pageSize: 64K }`)),
    ).toEqual(['/s/t.yaml:4:82 kernels.k.pageSize: x86_64 only has 4K pages, got "64K"']);
    expect(
      errors(
        scenario(
          `  k: { debian: { version: "7.3", flavour: cloud-amd64 }, arch: x86_64 }`,
          "machine: { arch: aarch64, pageSize: 16K }",
        ),
      ),
    ).toEqual([
      '/s/t.yaml:4:64 kernels.k.arch: x86_64 only has 4K pages, got "16K" (machine.pageSize): ' +
        "give this kernel its own pageSize",
    ]);
    expect(
      errors(
        scenario(`  k: { debian: { version: "7.3", flavour: arm64 }, pageSize: 16K }`, "machine: { arch: x86_64 }"),
      ),
    ).toEqual(['/s/t.yaml:4:62 kernels.k.pageSize: x86_64 (machine.arch) only has 4K pages, got "16K"']);
    expect(errors(scenario(`  k: { debian: { version: "7.3", flavour: arm64 }, pageSize: 8K }`))).toEqual([
      '/s/t.yaml:4:62 kernels.k.pageSize: expected one of 4K, 16K, 64K, got "8K" (did you mean 4K?)',
    ]);
  });
});

// Debian bookworm's arm64 Packages stanzas of the guest userland's closure, as vmrig cached them
// (Breaks left out: the closure never reads it).
type Relations = { Depends?: string; Provides?: string };
const stanza = (Package: string, Version: string, pool: string, more: Relations = {}) => ({
  Package,
  Version,
  Architecture: "arm64",
  Filename: `pool/main/${pool}_arm64.deb`,
  Size: "1000",
  SHA256: "0".repeat(64),
  ...more,
});
const bookwormArm64 = [
  stanza("busybox-static", "1:1.35.0-4+deb12u1+b1", "b/busybox/busybox-static_1.35.0-4+deb12u1+b1", {
    Provides: "busybox",
  }),
  stanza("dropbear-bin", "2022.83-1+deb12u3", "d/dropbear/dropbear-bin_2022.83-1+deb12u3", {
    Depends:
      "libc6 (>= 2.34), libcrypt1 (>= 1:4.1.0), libtomcrypt1 (>= 1.18.2), libtommath1 (>= 1.2.0), zlib1g (>= 1:1.1.4)",
    Provides: "ssh-server",
  }),
  stanza("gcc-12-base", "12.2.0-14+deb12u1", "g/gcc-12/gcc-12-base_12.2.0-14+deb12u1"),
  stanza("libgcc-s1", "12.2.0-14+deb12u1", "g/gcc-12/libgcc-s1_12.2.0-14+deb12u1", {
    Depends: "gcc-12-base (= 12.2.0-14+deb12u1), libc6 (>= 2.35)",
    Provides: "libgcc1 (= 1:12.2.0-14+deb12u1)",
  }),
  stanza("libc6", "2.36-9+deb12u14", "g/glibc/libc6_2.36-9+deb12u14", { Depends: "libgcc-s1" }),
  stanza("libgmp10", "2:6.2.1+dfsg1-1.1", "g/gmp/libgmp10_6.2.1+dfsg1-1.1", { Depends: "libc6 (>= 2.17)" }),
  stanza("libtomcrypt1", "1.18.2-6", "libt/libtomcrypt/libtomcrypt1_1.18.2-6", {
    Depends: "libc6 (>= 2.17), libgmp10 (>= 2:6.2.1+dfsg1), libtommath1 (>= 1.1.0)",
  }),
  stanza("libtommath1", "1.2.0-6+deb12u1", "libt/libtommath/libtommath1_1.2.0-6+deb12u1", {
    Depends: "libc6 (>= 2.25)",
  }),
  stanza("libcrypt1", "1:4.4.33-2", "libx/libxcrypt/libcrypt1_4.4.33-2", { Depends: "libc6 (>= 2.36)" }),
  stanza("zlib1g", "1:1.2.13.dfsg-1", "z/zlib/zlib1g_1.2.13.dfsg-1", { Depends: "libc6 (>= 2.17)", Provides: "libz1" }),
  // Another ssh-server in the index: dropbear-bin's closure must not pull it in.
  stanza("openssh-server", "1:9.2p1-2+deb12u7", "o/openssh/openssh-server_9.2p1-2+deb12u7", {
    Depends: "adduser, libc6 (>= 2.36)",
    Provides: "ssh-server",
  }),
];

describe("Debian dependency closure for the arm64 userland", () => {
  it("resolves busybox-static and dropbear-bin to the packages the guest userland unpacks", async () => {
    const cache = mkdtempSync(path.join(os.tmpdir(), "vmrig-closure-"));
    try {
      mkdirSync(path.join(cache, "debian", "index"), { recursive: true });
      const index = {
        format: 1,
        suite: "bookworm",
        arch: "arm64",
        archiveUrl: "http://deb.debian.org/debian",
        fetchedAt: new Date().toISOString(),
        packagesSha256: "0",
        extraPackages: bookwormArm64.map((s) => s.Package),
        stanzas: bookwormArm64,
      };
      writeFileSync(path.join(cache, "debian", "index", "bookworm_arm64.json"), JSON.stringify(index));
      const packages = await withEnv({ VMRIG_CACHE: cache, VMRIG_OFFLINE: "1" }, () =>
        resolveWithDependencies(["bookworm"], "arm64", ["busybox-static", "dropbear-bin"]),
      );
      expect(packages.map((p) => `${p.name}=${p.version}`).sort()).toEqual([
        "busybox-static=1:1.35.0-4+deb12u1+b1",
        "dropbear-bin=2022.83-1+deb12u3",
        "gcc-12-base=12.2.0-14+deb12u1",
        "libc6=2.36-9+deb12u14",
        "libcrypt1=1:4.4.33-2",
        "libgcc-s1=12.2.0-14+deb12u1",
        "libgmp10=2:6.2.1+dfsg1-1.1",
        "libtomcrypt1=1.18.2-6",
        "libtommath1=1.2.0-6+deb12u1",
        "zlib1g=1:1.2.13.dfsg-1",
      ]);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});

describe("ELF and busybox, read without running them", () => {
  it("DT_NEEDED of the host's dropbear names the libraries ldd resolves", () => {
    if (!existsSync("/usr/sbin/dropbear")) return;
    const needed = elfNeeded(readFileSync("/usr/sbin/dropbear"));
    const ldd = parseLdd(execFileSync("ldd", ["/usr/sbin/dropbear"]).toString()).map((p) => path.basename(p));
    expect(needed.length).toBeGreaterThan(2);
    for (const n of needed) expect(ldd).toContain(n);
    expect(needed).toContain("libc.so.6");
  });

  it("busybox's applet table lists what `busybox --list` lists", () => {
    if (!existsSync("/bin/busybox")) return;
    const names = busyboxAppletNames(readFileSync("/bin/busybox"));
    const listed = execFileSync("/bin/busybox", ["--list"]).toString().trim().split("\n");
    expect([...names].sort()).toEqual([...listed].sort());
    expect(names).toContain("sh");
  });

  it("elfNeeded of a static program is empty", () => {
    if (!existsSync("/bin/busybox")) return;
    expect(elfNeeded(readFileSync("/bin/busybox"))).toEqual([]);
  });
});

describe("resolveInTree: links followed inside an unpacked tree, never out of it", () => {
  const root = mkdtempSync(path.join(os.tmpdir(), "vmrig-tree-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(path.join(root, "lib/aarch64-linux-gnu"), { recursive: true });
  writeFileSync(path.join(root, "lib/aarch64-linux-gnu/ld-linux-aarch64.so.1"), "loader");
  writeFileSync(path.join(root, "lib/aarch64-linux-gnu/libz.so.1.2.13"), "z");
  // Debian's loader link is absolute: outside the tree it would be the host's file.
  symlinkSync("/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", path.join(root, "lib/ld-linux-aarch64.so.1"));
  symlinkSync("libz.so.1.2.13", path.join(root, "lib/aarch64-linux-gnu/libz.so.1"));
  symlinkSync("../../etc/passwd", path.join(root, "lib/escape"));

  it("resolves absolute and relative links against the tree", async () => {
    expect(await resolveInTree(root, "/lib/ld-linux-aarch64.so.1")).toBe("lib/aarch64-linux-gnu/ld-linux-aarch64.so.1");
    expect(await resolveInTree(root, "/lib/aarch64-linux-gnu/libz.so.1")).toBe("lib/aarch64-linux-gnu/libz.so.1.2.13");
    expect(await resolveInTree(root, "/lib/missing.so")).toBeUndefined();
    // ".." stops at the tree's root.
    expect(await resolveInTree(root, "/lib/escape")).toBeUndefined();
  });
});
