import { describe, expect, it } from "vitest";
import {
  compareDebianVersions,
  nearestVersions,
  parseVersionSpec,
  upstreamVersion,
  versionMatches,
  type VersionSpec,
} from "../../harness/debian/version.ts";

const spec = (text: string): VersionSpec => {
  const s = parseVersionSpec(text);
  if (!s) throw new Error(`bad spec ${text}`);
  return s;
};

describe("compareDebianVersions", () => {
  it.each([
    // [smaller, larger]
    ["6.12.9-1", "6.12.10-1"],
    ["6.18.15-1~bpo13+1", "6.18.15-1"],
    ["6.12.117-1~deb12u1", "6.12.117-1"],
    ["7.3~rc7-1~exp1", "7.3-1"],
    ["7.3~rc7-1~exp1", "7.3.4-1~bpo13+1"],
    ["6.1.192-1", "6.1.192-2"],
    ["6.12.90-1~bpo12+1", "6.12.90-2~bpo12+1"],
    ["1.0", "1.0-1"],
    ["1.0", "1.0+b1"],
    ["1.0", "1.0a"],
    ["1.0~~", "1.0~"],
    ["9.9", "1:0.1"],
    ["2.41-12+deb13u3", "2.41-12+deb13u4"],
  ])("%s < %s", (a, b) => {
    expect(compareDebianVersions(a, b)).toBeLessThan(0);
    expect(compareDebianVersions(b, a)).toBeGreaterThan(0);
  });

  it("treats leading zeros and an explicit epoch 0 as equal", () => {
    expect(compareDebianVersions("6.012-1", "6.12-1")).toBe(0);
    expect(compareDebianVersions("0:6.12-1", "6.12-1")).toBe(0);
  });

  it("sorts a real mix of kernel versions", () => {
    const versions = [
      "7.3.4-1~bpo13+1",
      "6.12.117-1",
      "6.1.192-2",
      "7.3~rc7-1~exp1",
      "6.18.15-1~bpo13+1",
      "6.12.117-1~deb12u1",
      "7.2.13-1",
    ];
    expect([...versions].sort(compareDebianVersions)).toEqual([
      "6.1.192-2",
      "6.12.117-1~deb12u1",
      "6.12.117-1",
      "6.18.15-1~bpo13+1",
      "7.2.13-1",
      "7.3~rc7-1~exp1",
      "7.3.4-1~bpo13+1",
    ]);
  });
});

describe("upstreamVersion", () => {
  it("drops the epoch and the Debian revision", () => {
    expect(upstreamVersion("6.1.192-2")).toBe("6.1.192");
    expect(upstreamVersion("6.18.15-1~bpo13+1")).toBe("6.18.15");
    expect(upstreamVersion("1:7.3~rc7-1~exp1")).toBe("7.3~rc7");
    expect(upstreamVersion("6.12")).toBe("6.12");
  });
});

describe("parseVersionSpec", () => {
  it("tells series, upstream releases and Debian versions apart", () => {
    expect(parseVersionSpec("6.12")).toEqual({ kind: "series", text: "6.12" });
    expect(parseVersionSpec("6.18.15")).toEqual({ kind: "upstream", text: "6.18.15" });
    expect(parseVersionSpec("7.3~rc7")).toEqual({ kind: "upstream", text: "7.3~rc7" });
    expect(parseVersionSpec("6.18.15-1~bpo13+1")).toEqual({ kind: "debian", text: "6.18.15-1~bpo13+1" });
  });
  it.each(["latest", "6", "6.x", "6.12.", "v6.12", ""])("rejects %j", (t) => {
    expect(parseVersionSpec(t)).toBeUndefined();
  });
});

describe("versionMatches", () => {
  it("a series matches its releases and the .0 release, not neighbours or release candidates", () => {
    const s = spec("6.12");
    expect(versionMatches(s, "6.12.117-1")).toBe(true);
    expect(versionMatches(s, "6.12.43-1~bpo12+1")).toBe(true);
    expect(versionMatches(s, "6.12-1")).toBe(true);
    expect(versionMatches(s, "6.1.192-2")).toBe(false);
    expect(versionMatches(s, "6.120.1-1")).toBe(false);
    expect(versionMatches(spec("7.3"), "7.3~rc7-1~exp1")).toBe(false);
  });
  it("an upstream release matches any Debian revision of exactly it", () => {
    expect(versionMatches(spec("6.18.15"), "6.18.15-1~bpo13+1")).toBe(true);
    expect(versionMatches(spec("6.18.15"), "6.18.150-1")).toBe(false);
    expect(versionMatches(spec("6.18.1"), "6.18.15-1")).toBe(false);
    expect(versionMatches(spec("6.12.0"), "6.12-1")).toBe(true);
    expect(versionMatches(spec("7.3~rc7"), "7.3~rc7-1~exp1")).toBe(true);
  });
  it("a Debian version matches only itself", () => {
    expect(versionMatches(spec("6.18.15-1~bpo13+1"), "6.18.15-1~bpo13+1")).toBe(true);
    expect(versionMatches(spec("6.18.15-1~bpo13+1"), "6.18.15-1")).toBe(false);
  });
});

describe("nearestVersions", () => {
  const available = [
    "6.18.5-1~bpo13+1",
    "6.18.9-1~bpo13+1",
    "6.18.12-1~bpo13+1",
    "6.18.15-1~bpo13+1",
    "6.19.10-1~bpo13+1",
    "7.3.4-1~bpo13+1",
  ];
  const id = (v: string) => v;

  it("finds the closest release below and above a missing one", () => {
    expect(nearestVersions("6.18.14", available, id)).toEqual({
      below: "6.18.12-1~bpo13+1",
      above: "6.18.15-1~bpo13+1",
    });
  });
  it("skips the target itself", () => {
    expect(nearestVersions("6.18.15", available, id)).toEqual({
      below: "6.18.12-1~bpo13+1",
      above: "6.19.10-1~bpo13+1",
    });
  });
  it("places a series between its neighbours and handles the ends", () => {
    expect(nearestVersions("7.0", available, id)).toEqual({ below: "6.19.10-1~bpo13+1", above: "7.3.4-1~bpo13+1" });
    expect(nearestVersions("9.1", available, id)).toEqual({ below: "7.3.4-1~bpo13+1", above: undefined });
    expect(nearestVersions("5.10", available, id)).toEqual({ below: undefined, above: "6.18.5-1~bpo13+1" });
    expect(nearestVersions("6.18", [], id)).toEqual({ below: undefined, above: undefined });
  });
  it("keeps the first of equal upstream versions (callers sort newest revision first)", () => {
    expect(nearestVersions("6.12.118", ["6.12.117-1", "6.12.117-1~deb12u1"], id).below).toBe("6.12.117-1");
  });
});
