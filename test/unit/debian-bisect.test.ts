// The pure side of `vmrig bisect --debian-kernel/--debian-qemu`, on excerpts of Debian's real
// archive indexes and changelogs (test/fixtures/debian/bisect/README.md says where each came from).
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { type DebPackage, parseControl, toDebPackage } from "../../harness/debian/control.ts";
import { entriesBetween, formatEntry, parseChangelog } from "../../harness/debian/changelog.ts";
import { kernelCandidates } from "../../harness/kernels/debian-select.ts";
import {
  continueCommand,
  listSteps,
  nextInList,
  parseVersionRange,
  sourceRange,
  upstreamTag,
  versionsBetween,
} from "../../harness/bisect/debian-range.ts";
import type { Verdict } from "../../harness/bisect/verdict.ts";
import { VmrigError } from "../../harness/util/errors.ts";
import { bisectCommand } from "../../harness/commands/bisect.ts";

const fixture = (name: string) =>
  readFileSync(path.join(import.meta.dirname, "..", "fixtures", "debian", "bisect", name), "utf8");

function suite(name: string): DebPackage[] {
  return parseControl(fixture(`${name}_amd64.Packages`)).map((s) =>
    toDebPackage(s, name, "http://deb.debian.org/debian")!,
  );
}

const suites = ["trixie", "trixie-security", "trixie-backports", "sid", "bookworm-backports"];
const packages = suites.flatMap(suite);
const byVersion = (x: { version: string; suite: string }) => x;

describe("versions between two ends across suites", () => {
  it("lists the cloud-amd64 kernels from 6.12.118 to 6.18.15 in Debian order, one per version", () => {
    const kernels = suites.flatMap((s) =>
      kernelCandidates(
        packages.filter((p) => p.suite === s),
        "cloud-amd64",
      ),
    );
    const range = versionsBetween(
      kernels,
      (c) => ({ version: c.image.version, suite: c.image.suite }),
      "6.12.118-1",
      "6.18.15-1~bpo13+1",
    );
    expect(range.map((r) => r.version)).toEqual([
      "6.12.118-1",
      "6.16.3-1~bpo13+1",
      "6.16.12-1~bpo13+1",
      "6.17.8-1~bpo13+1",
      "6.17.13-1~bpo13+1",
      "6.18.5-1~bpo13+1",
      "6.18.9-1~bpo13+1",
      "6.18.12-1~bpo13+1",
      "6.18.15-1~bpo13+1",
    ]);
    expect(range[0]!.suites).toEqual(["trixie-security"]);
  });

  it("orders the QEMU builds by epoch and revision: sid's 11.1.3+ds-1 before the backport 11.1.3+ds-2~bpo13+1", () => {
    const qemu = packages.filter((p) => p.name === "qemu-system-x86");
    const range = versionsBetween(qemu, byVersion, "1:10.0.2+ds-2+deb13u1", "1:11.1.3+ds-2~bpo13+1");
    expect(range.map((r) => `${r.version} ${r.suites.join(",")}`)).toEqual([
      "1:10.0.2+ds-2+deb13u1 trixie-security",
      "1:10.0.13+ds-0+deb13u1 trixie",
      "1:11.1.3+ds-1 sid",
      "1:11.1.3+ds-2~bpo13+1 trixie-backports",
    ]);
    // bookworm-backports' rebuild of 10.0.2 sorts below trixie-security's (~bpo12+1): outside the range.
    expect(qemu.find((p) => p.suite === "bookworm-backports")!.version).toBe("1:10.0.2+ds-2+deb13u1~bpo12+1");
  });
});

describe("GOOD..BAD", () => {
  it("splits at the two dots; anything else is a usage error (exit 2)", () => {
    expect(parseVersionRange("--debian-kernel", "6.12..6.18.15")).toEqual({ good: "6.12", bad: "6.18.15" });
    expect(parseVersionRange("--debian-qemu", "1:10.0.13+ds-0+deb13u1..11.1")).toEqual({
      good: "1:10.0.13+ds-0+deb13u1",
      bad: "11.1",
    });
    for (const bad of ["6.12", "6.12...6.18", "..6.18", "6.12.."]) {
      const e = (() => {
        try {
          parseVersionRange("--debian-kernel", bad);
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(VmrigError);
      expect((e as VmrigError).exitCode).toBe(2);
      expect((e as Error).message).toContain(`--debian-kernel ${bad}: expected GOOD..BAD`);
    }
  });
});

describe("bisecting a list", () => {
  const run = (count: number, firstBad: number, skip: number[] = []) => {
    const verdicts = new Map<number, Verdict>([
      [0, "good"],
      [count - 1, "bad"],
    ]);
    const tried: number[] = [];
    for (;;) {
      const s = nextInList(count, verdicts);
      if (s.kind !== "next") return { s, tried };
      tried.push(s.index);
      verdicts.set(s.index, skip.includes(s.index) ? "skip" : s.index >= firstBad ? "bad" : "good");
    }
  };

  it("finds the first bad of 9 in at most ceil(log2(8)) = 3 steps", () => {
    for (let firstBad = 1; firstBad <= 8; firstBad++) {
      const { s, tried } = run(9, firstBad);
      expect(s).toEqual({ kind: "found", lastGood: firstBad - 1, firstBad });
      expect(tried.length).toBeLessThanOrEqual(listSteps(9));
    }
    expect(listSteps(9)).toBe(3);
    expect(listSteps(4)).toBe(2);
    expect(listSteps(2)).toBe(0);
  });

  it("steps around a skipped version, and names the candidates when skips hide the answer", () => {
    expect(run(9, 1, [4]).s).toEqual({ kind: "found", lastGood: 0, firstBad: 1 });
    expect(run(5, 2, [1]).s).toEqual({ kind: "ambiguous", lastGood: 0, candidates: [1, 2] });
  });
});

describe("upstream tags and the source bisect that continues", () => {
  it("maps Debian versions to upstream tags", () => {
    expect(upstreamTag("6.16.3-1~bpo13+1")).toBe("v6.16.3");
    expect(upstreamTag("6.12.118-1")).toBe("v6.12.118");
    expect(upstreamTag("7.3~rc7-1~exp1")).toBe("v7.3-rc7");
    expect(upstreamTag("6.16-1~exp1")).toBe("v6.16");
    expect(upstreamTag("1:11.1.3+ds-1")).toBe("v11.1.3");
    expect(upstreamTag("1:7.2+dfsg-7+deb12u18+b3")).toBe("v7.2");
    expect(upstreamTag("1:10.0.0~rc3+ds-2")).toBe("v10.0.0-rc3");
    expect(upstreamTag("1.21.1+git20250501.dad20602+dfsg-1")).toBeUndefined();
  });

  it("takes the good end back to its mainline release when the ends are on different stable branches", () => {
    expect(sourceRange("v6.12.118", "v6.16.3")).toEqual({
      good: "v6.12",
      bad: "v6.16.3",
      note: "v6.12.118 is on the 6.12 stable branch, which forks from v6.12: git bisect needs an ancestor",
    });
    expect(sourceRange("v6.18.12", "v6.18.15")).toEqual({ good: "v6.18.12", bad: "v6.18.15" });
    expect(sourceRange("v7.3-rc7", "v7.3.4")).toEqual({ good: "v7.3-rc7", bad: "v7.3.4" });
    expect(sourceRange("v6.16", "v6.18.5")).toEqual({ good: "v6.16", bad: "v6.18.5" });
  });

  it("prints the command", () => {
    const q = { scenario: "scenarios/default.yaml", kernel: "mine", workload: "getdents-1M", repeat: 3 };
    expect(continueCommand({ good: "v6.12", bad: "v6.16.3" }, q)).toBe(
      "vmrig bisect --tree PATH/TO/linux-stable --good v6.12 --bad v6.16.3 " +
        "--scenario scenarios/default.yaml --kernel mine --workload getdents-1M --repeat 3",
    );
  });
});

describe("Debian changelogs", () => {
  const kernel = parseChangelog(fixture("linux-base-7.3.4.changelog.Debian"));
  const qemu = parseChangelog(fixture("qemu-10.0.13.changelog.Debian"));

  it("parses every entry: version, distribution, body, trailer", () => {
    expect(kernel.map((e) => e.version)).toEqual([
      "7.3.4-1~bpo13+1",
      "6.17.5-1~exp1",
      "6.17.2-1~exp1",
      "6.16.3-1",
      "6.16.1-1~exp1",
      "6.16-1~exp1",
      "6.16~rc7-1~exp1",
    ]);
    const e = kernel.find((x) => x.version === "6.16.3-1")!;
    expect(e).toMatchObject({
      source: "linux",
      distributions: "unstable",
      maintainer: "Ben Hutchings <benh@debian.org>",
    });
    expect(e.date).toBe("Sun, 24 Aug 2025 23:29:26 +0200");
    expect(e.body[0]).toBe("  * New upstream stable update:");
    expect(e.body.at(-1)).toBe("  * drivers/hid/bpf: Enable HID_BPF (Closes: #1110780)");
    expect(formatEntry(e).split("\n")[0]).toBe("linux (6.16.3-1) unstable");
    expect(qemu[0]).toMatchObject({ version: "1:10.0.3+ds-0+deb13u1", distributions: "trixie" });
    expect(qemu.every((x) => x.source === "qemu" && x.date !== "")).toBe(true);
  });

  it("picks the entries after the last good up to the first bad, by version, not by position", () => {
    const between = entriesBetween(kernel, "6.12.118-1", "6.16.3-1~bpo13+1");
    expect(between.map((e) => e.version)).toEqual(["6.16.3-1", "6.16.1-1~exp1", "6.16-1~exp1", "6.16~rc7-1~exp1"]);
    // A backport at the low end already has the changes of the version it was made from.
    expect(entriesBetween(kernel, "6.16.3-1~bpo13+1", "7.3.4-1~bpo13+1").map((e) => e.version)).toEqual([
      "7.3.4-1~bpo13+1",
      "6.17.5-1~exp1",
      "6.17.2-1~exp1",
    ]);
    expect(entriesBetween(qemu, "1:10.0.2+ds-2", "1:10.0.3+ds-0+deb13u1").map((e) => e.version)).toEqual([
      "1:10.0.3+ds-0+deb13u1",
      "1:10.0.2+ds-2+deb13u1",
    ]);
  });
});

describe("vmrig bisect --debian-kernel/--debian-qemu on the command line", () => {
  const usage = async (args: string[]) => {
    const e = await bisectCommand(args, new AbortController().signal).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(VmrigError);
    expect((e as VmrigError).exitCode).toBe(2);
    return (e as Error).message;
  };
  const cell = ["--scenario", "scenarios/bisect-debian-getdents.yaml", "--kernel", "debian-6.18.15"];

  it("refuses mixed, missing and malformed arguments before touching anything (exit 2)", async () => {
    expect(await usage(["--debian-kernel", "6.12..6.18.15", "--debian-qemu", "10.0..11.1", ...cell])).toContain(
      "--debian-kernel and --debian-qemu bisect different packages",
    );
    expect(await usage(["--debian-kernel", "6.12..6.18.15", "--tree", ".", ...cell])).toContain(
      "--tree belong to a source bisect",
    );
    expect(await usage(["--debian-kernel", "6.12..6.18.15", ...cell])).toContain("missing --workload");
    expect(await usage(["--debian-kernel", "6.12..6.18.15", "a.yaml", ...cell])).toContain(
      "one scenario, by --scenario or as an argument",
    );
    expect(await usage(["--debian-qemu", "11.1", ...cell, "--workload", "getdents-1M"])).toContain(
      "--debian-qemu 11.1: expected GOOD..BAD",
    );
  });
});
