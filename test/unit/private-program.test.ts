// The private-program provisioner on a real .deb: the host's own loader, libc and `true`,
// packed the way Debian lays them out (real files under usr/lib/<triplet>, an absolute loader
// link in lib64), served from the .deb cache so that nothing touches the network.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { archRecord } from "../../harness/arch.ts";
import { debCachePath, type DebPackage } from "../../harness/debian/archive.ts";
import {
  locateLoader,
  loaderCommand,
  newestPackages,
  privateHostArch,
  provisionUnpacked,
  readManifest,
  reusableEntry,
} from "../../harness/debian/private-program.ts";
import { HostError } from "../../harness/util/errors.ts";
import { freshCachePerTest } from "../helpers/env.ts";

const pkg = (name: string, version: string, extra: Partial<DebPackage> = {}): DebPackage => ({
  name,
  version,
  architecture: "amd64",
  suite: "trixie",
  archiveUrl: "",
  filename: `pool/${name}_${version}.deb`,
  size: 0,
  sha256: "",
  depends: "",
  fields: {},
  ...extra,
});

describe("newestPackages and loaderCommand (pure)", () => {
  it("picks the newest version of each name by Debian's ordering, in the order asked", () => {
    const packages = [
      pkg("libc6", "2.41-12"),
      pkg("virtiofsd", "1.13.2-1"),
      pkg("libc6", "2.41-12+deb13u1"),
      pkg("libc6", "2.41-9"),
    ];
    expect(newestPackages(packages, ["virtiofsd", "libc6"], "trixie").map((p) => `${p.name} ${p.version}`)).toEqual([
      "virtiofsd 1.13.2-1",
      "libc6 2.41-12+deb13u1",
    ]);
    expect(() => newestPackages(packages, ["libseccomp2"], "trixie (amd64)")).toThrow(
      /trixie \(amd64\) has no libseccomp2/,
    );
  });

  it("runs a program through its loader with the private library path", () => {
    const rt = {
      loader: "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
      libraryPath: ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"],
    };
    expect(loaderCommand("/c/virtiofsd", rt, "usr/libexec/virtiofsd")).toEqual({
      argv0: "/c/virtiofsd/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
      prefixArgs: [
        "--library-path",
        "/c/virtiofsd/usr/lib/x86_64-linux-gnu:/c/virtiofsd/lib/x86_64-linux-gnu",
        "/c/virtiofsd/usr/libexec/virtiofsd",
      ],
    });
  });
});

describe("provisionUnpacked: a real .deb into one cache entry", () => {
  const cache = freshCachePerTest("vmrig-private-program-");
  const arch = privateHostArch();
  const { gnuTriplet, dynamicLoader, debianArch } = archRecord(arch);
  const hostLib = [`/usr/lib/${gnuTriplet}`, `/lib/${gnuTriplet}`].find((d) => existsSync(`${d}/${dynamicLoader}`))!;

  /** Builds the .deb and puts it where downloadDeb looks first, as if it had been downloaded. */
  function cachedDeb(): DebPackage {
    const src = path.join(cache(), "src");
    const lib = path.join(src, "usr/lib", gnuTriplet);
    mkdirSync(path.join(src, "DEBIAN"), { recursive: true });
    mkdirSync(lib, { recursive: true });
    mkdirSync(path.join(src, "usr/bin"), { recursive: true });
    mkdirSync(path.join(src, "lib64"), { recursive: true });
    for (const f of [dynamicLoader, "libc.so.6"]) copyFileSync(path.join(hostLib, f), path.join(lib, f));
    copyFileSync("/bin/true", path.join(src, "usr/bin/true"));
    // Debian's own loader link: absolute, so outside the tree it names the host's loader.
    symlinkSync(`/usr/lib/${gnuTriplet}/${dynamicLoader}`, path.join(src, "lib64", dynamicLoader));
    writeFileSync(
      path.join(src, "DEBIAN/control"),
      `Package: vmrig-test-true\nVersion: 1.0-1\nArchitecture: ${debianArch}\nMaintainer: vmrig\nDescription: test\n`,
    );
    const built = path.join(cache(), "vmrig-test-true.deb");
    execFileSync("dpkg-deb", ["--root-owner-group", "-Zgzip", "--build", src, built], { stdio: "ignore" });
    const bytes = readFileSync(built);
    const p = pkg("vmrig-test-true", "1.0-1", {
      architecture: debianArch,
      filename: "pool/main/v/vmrig-test-true_1.0-1.deb",
      size: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
    });
    mkdirSync(path.dirname(debCachePath(p)), { recursive: true });
    writeFileSync(debCachePath(p), bytes);
    return p;
  }

  it("unpacks, finds the real loader (not the absolute link), runs the program, publishes the manifest", async () => {
    const p = cachedDeb();
    const dir = path.join(cache(), "tools", "true");
    const manifest = await provisionUnpacked(
      {
        dir,
        manifestName: "vmrig-true.json",
        packages: [p],
        describe: async ({ tree }) => {
          const rt = await locateLoader(tree, arch);
          const cmd = loaderCommand(tree, rt, "usr/bin/true");
          execFileSync(cmd.argv0, [...cmd.prefixArgs]);
          return { ...rt, binary: "usr/bin/true" };
        },
      },
      {},
    );
    expect(manifest).toEqual({
      loader: `usr/lib/${gnuTriplet}/${dynamicLoader}`,
      libraryPath: [`usr/lib/${gnuTriplet}`],
      binary: "usr/bin/true",
    });
    expect(await readManifest(dir, "vmrig-true.json")).toEqual(manifest);
    const cmd = loaderCommand(dir, manifest, manifest.binary);
    expect(() => execFileSync(cmd.argv0, cmd.prefixArgs)).not.toThrow();
    expect(await fs.readdir(path.dirname(dir))).toEqual(["true"]);
  });

  it("leaves nothing behind when the entry is refused, and removes an entry without a manifest", async () => {
    const p = cachedDeb();
    const dir = path.join(cache(), "tools", "refused");
    const refuse = async () => {
      throw new HostError("does not run here");
    };
    await expect(provisionUnpacked({ dir, manifestName: "m.json", packages: [p], describe: refuse })).rejects.toThrow(
      /does not run here/,
    );
    expect(await fs.readdir(path.dirname(dir))).toEqual([]);

    await fs.mkdir(path.join(dir, "usr"), { recursive: true });
    const lines: string[] = [];
    expect(
      await reusableEntry(dir, "m.json", () => true, { what: "test program", log: (l) => lines.push(l) }),
    ).toBeUndefined();
    expect(existsSync(dir)).toBe(false);
    expect(lines).toEqual([`removing unusable test program at ${dir}`]);
  });
});
