import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { type DebPackage, parseControl, toDebPackage } from "../../harness/debian/control.ts";
import {
  chooseKernel,
  kernelCandidates,
  kernelFlavours,
  packageLookup,
  parseKernelPackageName,
  splitPartsOf,
} from "../../harness/kernels/debian-select.ts";
import { parseVersionSpec } from "../../harness/debian/version.ts";

function suite(name: string): DebPackage[] {
  const text = readFileSync(
    path.join(import.meta.dirname, "..", "fixtures", "debian", `${name}_amd64.Packages`),
    "utf8",
  );
  return parseControl(text).map((s) => toDebPackage(s, name, "http://deb.debian.org/debian")!);
}

const trixieBackports = suite("trixie-backports");
const bookwormSecurity = suite("bookworm-security");
const experimental = suite("experimental");
const spec = (t: string) => parseVersionSpec(t)!;
const names = (ps: DebPackage[]) => ps.map((p) => p.name);

describe("parseKernelPackageName", () => {
  it("reads all three naming schemes and the twins", () => {
    expect(parseKernelPackageName("linux-image-6.1.0-56-cloud-amd64")).toEqual({
      role: "image",
      abi: "6.1.0-56",
      flavour: "cloud-amd64",
      unsigned: false,
      dbg: false,
    });
    expect(parseKernelPackageName("linux-image-6.1.0-56-cloud-amd64-unsigned")).toMatchObject({
      abi: "6.1.0-56",
      flavour: "cloud-amd64",
      unsigned: true,
    });
    expect(parseKernelPackageName("linux-image-6.18.15+deb13-cloud-amd64")).toMatchObject({
      abi: "6.18.15+deb13",
      flavour: "cloud-amd64",
    });
    expect(parseKernelPackageName("linux-image-7.3.4+deb13-cloud-amd64-dbg")).toMatchObject({ dbg: true });
    expect(parseKernelPackageName("linux-binary-unsigned-7.3.4+deb13-cloud-amd64")).toMatchObject({
      role: "binary",
      unsigned: true,
      flavour: "cloud-amd64",
    });
    expect(parseKernelPackageName("linux-modules-7.3.4+deb13-arm64-16k")).toMatchObject({
      role: "modules",
      abi: "7.3.4+deb13",
      flavour: "arm64-16k",
    });
    expect(parseKernelPackageName("linux-image-6.12.90+deb13.1-cloud-amd64")).toMatchObject({
      abi: "6.12.90+deb13.1",
      flavour: "cloud-amd64",
    });
    expect(parseKernelPackageName("linux-image-cloud-amd64")).toBeUndefined();
    expect(parseKernelPackageName("linux-libc-dev")).toBeUndefined();
  });
});

describe("kernelCandidates", () => {
  it("lists kernels newest first, without metapackages, -dbg or other flavours", () => {
    const c = kernelCandidates(trixieBackports, "cloud-amd64");
    expect(c.map((k) => `${k.image.name}=${k.image.version}`)).toEqual([
      "linux-image-7.3.4+deb13-cloud-amd64=7.3.4-1~bpo13+1",
      "linux-image-7.0.13+deb13-cloud-amd64=7.0.13-1~bpo13+1",
      "linux-image-6.18.15+deb13-cloud-amd64=6.18.15-1~bpo13+1",
      "linux-image-6.18.12+deb13-cloud-amd64=6.18.12-1~bpo13+1",
    ]);
    expect(kernelCandidates(trixieBackports, "amd64").map((k) => k.image.name)).toEqual([
      "linux-image-6.18.15+deb13-amd64",
    ]);
  });

  it("follows a 7.x metapackage to its same-version kernel, modules and base packages", () => {
    const k = kernelCandidates(trixieBackports, "cloud-amd64")[0]!;
    expect(names(k.parts)).toEqual([
      "linux-binary-7.3.4+deb13-cloud-amd64",
      "linux-modules-7.3.4+deb13-cloud-amd64",
      "linux-base-7.3.4+deb13-cloud-amd64",
    ]);
    expect(k.missing).toEqual([]);
  });

  it("uses the -unsigned kernel binary when the signed one is gone", () => {
    const withoutSigned = trixieBackports.filter((p) => p.name !== "linux-binary-7.3.4+deb13-cloud-amd64");
    expect(names(kernelCandidates(withoutSigned, "cloud-amd64")[0]!.parts)[0]).toBe(
      "linux-binary-unsigned-7.3.4+deb13-cloud-amd64",
    );
  });

  it("notices split parts Debian has removed (7.0.x in trixie-backports has no modules left)", () => {
    const k = kernelCandidates(trixieBackports, "cloud-amd64")[1]!;
    expect(names(k.parts)).toEqual(["linux-binary-7.0.13+deb13-cloud-amd64"]);
    expect(k.missing).toEqual(["linux-modules-7.0.13+deb13-cloud-amd64"]);
    expect(k.missingOptional).toEqual(["linux-base-7.0.13+deb13-cloud-amd64"]);
  });

  it("keeps a pre-split image whole; a missing linux-base only costs the config", () => {
    const k = kernelCandidates(trixieBackports, "cloud-amd64")[2]!;
    expect(names(k.parts)).toEqual(["linux-image-6.18.15+deb13-cloud-amd64"]);
    expect(k.missing).toEqual([]);
    expect(k.missingOptional).toEqual(["linux-base-6.18.15+deb13-cloud-amd64"]);
  });

  it("reads 6.1's ABI-style names, prefers signed images and skips the 6.12 series metapackage", () => {
    const c = kernelCandidates(bookwormSecurity, "cloud-amd64");
    expect(c.map((k) => `${k.image.name}=${k.image.version}`)).toEqual([
      "linux-image-6.12.117+deb12-cloud-amd64=6.12.117-1~deb12u1",
      "linux-image-6.1.0-56-cloud-amd64=6.1.192-2",
      "linux-image-6.1.0-55-cloud-amd64=6.1.192-1",
    ]);
    const unsignedOnly = bookwormSecurity.filter((p) => p.name !== "linux-image-6.1.0-56-cloud-amd64");
    expect(kernelCandidates(unsignedOnly, "cloud-amd64")[1]!.image.name).toBe(
      "linux-image-6.1.0-56-cloud-amd64-unsigned",
    );
  });

  it("accepts experimental's release-candidate naming (linux-image-7.3-cloud-amd64 at 7.3~rc7)", () => {
    const [k] = kernelCandidates(experimental, "cloud-amd64");
    expect(k!.image.version).toBe("7.3~rc7-1~exp1");
    expect(names(k!.parts)).toEqual(["linux-binary-7.3-cloud-amd64"]);
  });

  it("names the flavours that exist", () => {
    expect(kernelFlavours([...trixieBackports, ...bookwormSecurity])).toEqual(["amd64", "cloud-amd64"]);
  });
});

describe("packageLookup and splitPartsOf across suites", () => {
  it("keeps the first suite's copy of a package listed twice", () => {
    const copy = trixieBackports.map((p) => ({ ...p, suite: "mirror-copy" }));
    const lookup = packageLookup([...trixieBackports, ...copy]);
    const meta = trixieBackports.find((p) => p.name === "linux-image-7.3.4+deb13-cloud-amd64")!;
    expect(splitPartsOf(meta, lookup).parts.every((p) => p.suite === "trixie-backports")).toBe(true);
  });
});

describe("chooseKernel", () => {
  const all = kernelCandidates([...bookwormSecurity, ...trixieBackports, ...experimental], "cloud-amd64");

  it("picks exactly the pinned release", () => {
    const c = chooseKernel(all, spec("6.18.15"));
    expect(c.kind === "found" && c.candidate.image.name).toBe("linux-image-6.18.15+deb13-cloud-amd64");
  });

  it("picks the newest of a series, a release over a release candidate", () => {
    const c = chooseKernel(all, spec("7.3"));
    expect(c.kind === "found" && c.candidate.image.version).toBe("7.3.4-1~bpo13+1");
    const six = chooseKernel(all, spec("6.1"));
    expect(six.kind === "found" && six.candidate.image.name).toBe("linux-image-6.1.0-56-cloud-amd64");
  });

  it("names the nearest usable releases when a pinned one is gone", () => {
    const c = chooseKernel(all, spec("6.18.14"));
    expect(c.kind).toBe("none");
    if (c.kind !== "none") return;
    expect(c.incomplete).toBeUndefined();
    expect(c.below?.image.version).toBe("6.18.12-1~bpo13+1");
    expect(c.above?.image.version).toBe("6.18.15-1~bpo13+1");
  });

  it("reports a match whose parts are gone and suggests usable neighbours instead", () => {
    const c = chooseKernel(all, spec("7.0"));
    expect(c.kind).toBe("none");
    if (c.kind !== "none") return;
    expect(c.incomplete?.image.version).toBe("7.0.13-1~bpo13+1");
    expect(c.below?.image.version).toBe("6.18.15-1~bpo13+1");
    expect(c.above?.image.version).toBe("7.3.4-1~bpo13+1");
  });

  it("matches a full Debian version exactly", () => {
    const c = chooseKernel(all, spec("6.1.192-1"));
    expect(c.kind === "found" && c.candidate.image.name).toBe("linux-image-6.1.0-55-cloud-amd64");
  });
});
