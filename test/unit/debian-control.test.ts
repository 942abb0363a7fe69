import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { releaseTrustProblem } from "../../harness/debian/archive.ts";
import {
  StanzaCollector,
  parseControl,
  parseDepends,
  parseRelease,
  parseStanza,
  toDebPackage,
} from "../../harness/debian/control.ts";

const fixture = (name: string) =>
  readFileSync(path.join(import.meta.dirname, "..", "fixtures", "debian", name), "utf8");

describe("parseControl on a real Packages excerpt", () => {
  const stanzas = parseControl(fixture("trixie-backports_amd64.Packages"));

  it("reads every stanza and its fields", () => {
    expect(stanzas.map((s) => s["Package"])).toContain("linux-image-7.3.4+deb13-cloud-amd64");
    expect(stanzas).toHaveLength(12);
    const binary = stanzas.find((s) => s["Package"] === "linux-binary-7.3.4+deb13-cloud-amd64")!;
    expect(binary["Version"]).toBe("7.3.4-1~bpo13+1");
    expect(binary["Size"]).toBe("13604064");
    expect(binary["SHA256"]).toBe("c4fbc8e404958693b28825474c20742d70594d65ca58aea7be6a279c81eb6fa0");
    expect(binary["Filename"]).toBe(
      "pool/main/l/linux-signed-amd64/linux-binary-7.3.4+deb13-cloud-amd64_7.3.4-1~bpo13+1_amd64.deb",
    );
  });

  it("builds download records from stanzas", () => {
    const s = stanzas.find((x) => x["Package"] === "linux-base-7.3.4+deb13-cloud-amd64")!;
    const p = toDebPackage(s, "trixie-backports", "http://deb.debian.org/debian")!;
    expect(p).toMatchObject({
      name: "linux-base-7.3.4+deb13-cloud-amd64",
      version: "7.3.4-1~bpo13+1",
      size: 1025208,
      suite: "trixie-backports",
      depends: "",
    });
    expect(toDebPackage({ Package: "x", Version: "1" }, "sid", "u")).toBeUndefined();
  });
});

describe("StanzaCollector", () => {
  it("keeps only accepted packages and is not confused by the skipped ones", () => {
    const c = new StanzaCollector((name) => name.startsWith("linux-binary-"));
    for (const line of fixture("trixie-backports_amd64.Packages").split("\n")) c.push(line);
    const kept = c.finish();
    expect(kept.map((s) => s["Package"])).toEqual([
      "linux-binary-7.0.13+deb13-cloud-amd64",
      "linux-binary-7.3.4+deb13-cloud-amd64",
      "linux-binary-unsigned-7.3.4+deb13-cloud-amd64",
    ]);
    expect(kept.every((s) => s["SHA256"]?.length === 64)).toBe(true);
  });

  it("handles a last stanza without a trailing blank line and CRLF endings", () => {
    const c = new StanzaCollector();
    for (const line of ["Package: a\r", "Version: 1\r", "", "Package: b", "Version: 2"]) c.push(line);
    expect(c.finish()).toEqual([
      { Package: "a", Version: "1" },
      { Package: "b", Version: "2" },
    ]);
  });
});

describe("parseStanza", () => {
  it("joins continuation lines", () => {
    const s = parseStanza(["Description: short", " long line one", " .", " line two", "Size: 3"]);
    expect(s["Description"]).toBe("short\nlong line one\n.\nline two");
    expect(s["Size"]).toBe("3");
  });
});

describe("parseRelease", () => {
  it("reads the fields and the SHA256 list of a real (verified) InRelease", () => {
    const r = parseRelease(fixture("trixie-backports.Release"));
    expect(r.fields["Codename"]).toBe("trixie-backports");
    expect(r.fields["Suite"]).toBe("stable-backports");
    expect(r.fields["Valid-Until"]).toBe("Fri, 27 Nov 2026 02:11:10 UTC");
    expect(r.sha256.get("main/binary-amd64/Packages.xz")).toEqual({
      sha256: "19952bdcb8924c741c30bf936e7f59bd0dadac5acf919e9e2bb97b8e8e9a7704",
      size: 311352,
    });
    expect(r.sha256.size).toBe(4);
  });
});

describe("parseDepends", () => {
  it("splits a 7.x metapackage's Depends into alternatives and versioned relations", () => {
    const meta = parseControl(fixture("trixie-backports_amd64.Packages")).find(
      (s) => s["Package"] === "linux-image-7.3.4+deb13-cloud-amd64",
    )!;
    const deps = parseDepends(meta["Depends"]);
    expect(deps[0]!.map((r) => r.name)).toEqual(["dracut", "initramfs-tools", "linux-initramfs-tool"]);
    expect(deps[0]![1]).toEqual({ name: "initramfs-tools", op: ">=", version: "0.120+deb8u2" });
    expect(deps.slice(1)).toEqual([
      [{ name: "linux-base-7.3.4+deb13-cloud-amd64", op: "=", version: "7.3.4-1~bpo13+1" }],
      [{ name: "linux-binary-7.3.4+deb13-cloud-amd64", op: "=", version: "7.3.4-1~bpo13+1" }],
      [{ name: "linux-modules-7.3.4+deb13-cloud-amd64", op: "=", version: "7.3.4-1~bpo13+1" }],
    ]);
  });
  it("drops architecture qualifiers and handles empty fields", () => {
    expect(parseDepends("python3:any (>= 3.9), libc6")).toEqual([
      [{ name: "python3", op: ">=", version: "3.9" }],
      [{ name: "libc6" }],
    ]);
    expect(parseDepends("")).toEqual([]);
    expect(parseDepends(undefined)).toEqual([]);
  });
});

describe("InRelease trust beyond its signature", () => {
  const { fields } = parseRelease(fixture("trixie-backports.Release"));
  const date = Date.parse("Fri, 20 Nov 2026 02:11:10 UTC");
  const day = 24 * 3600 * 1000;

  it("takes the real trixie-backports InRelease while it is valid and newer than the cached one", () => {
    const cached = { releaseDate: "Thu, 19 Nov 2026 02:11:10 UTC" };
    expect(releaseTrustProblem(fields, "trixie-backports", cached, date + day, [])).toBeUndefined();
  });

  it("warns once it expired, unless the user said that suite is expected to be", () => {
    const problem = releaseTrustProblem(fields, "trixie-backports", undefined, date + 8 * day, []);
    expect(problem?.kind).toBe("expired");
    expect(problem?.message).toBe(
      "expired on Fri, 27 Nov 2026 02:11:10 UTC (a stale or replayed mirror; apt would refuse it). Its signature " +
        "is good, so vmrig uses it; VMRIG_ALLOW_EXPIRED_SUITES=trixie-backports says that is expected",
    );
    expect(releaseTrustProblem(fields, "trixie-backports", undefined, date + 8 * day, ["trixie-backports"])).toBe(
      undefined,
    );
    expect(releaseTrustProblem(fields, "trixie-backports", undefined, date + 8 * day, ["sid"])?.message).toMatch(
      /^expired/,
    );
  });

  it("refuses an InRelease older than the one vmrig already used (a rollback)", () => {
    const cached = { releaseDate: "Sat, 21 Nov 2026 02:11:10 UTC" };
    expect(releaseTrustProblem(fields, "trixie-backports", cached, date + day, [])).toEqual({
      kind: "rolled-back",
      message:
        "is dated Fri, 20 Nov 2026 02:11:10 UTC, older than the Sat, 21 Nov 2026 02:11:10 UTC one vmrig already used: " +
        "the mirror went back in time",
    });
  });
});
