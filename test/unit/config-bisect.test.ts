// The pure parts of `vmrig bisect --config`, on real configs: Debian's 6.18.15 cloud-amd64 .config
// (GOOD here) and the resolved .config of a 7.3.4 built from tinyconfig + kernels/guest-x86_64.config
// (BAD). The search runs against oracles that decide a probe's verdict from the options it applies.
import { execa } from "execa";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  type OptionChange,
  configKey,
  differingOptions,
  expectedProbes,
  nextProbe,
  parseConfig,
  renderConfig,
  setKey,
  withGoodValues,
} from "../../harness/bisect/config-split.ts";
import { configHeaderLines, configResultLines, configStepLine } from "../../harness/bisect/config-format.ts";
import {
  type ConfigStateFile,
  type ConfigStepRecord,
  CONFIG_STATE_FORMAT,
  configBisectDirName,
  configBisectLog,
  endFile,
  openConfigState,
  resumeConfigState,
  sameResolvedConfig,
  savedEnds,
  verdictsByApplied,
} from "../../harness/bisect/config-state.ts";
import type { Verdict } from "../../harness/bisect/verdict.ts";
import { repoRoot } from "../../harness/util/paths.ts";

const fixtures = path.join(repoRoot, "test", "fixtures", "config-bisect");
const read = (f: string) => fs.readFileSync(path.join(fixtures, f), "utf8");
const debian = parseConfig(read("debian-6.18.15-cloud-amd64.config"));
const built = parseConfig(read("built-7.3.4-guest-x86_64.config"));
const diff = differingOptions(debian, built);
const names = diff.map((c) => c.option);

describe("parsing and comparing real configs", () => {
  it("reads y, m, not set, numbers and strings", () => {
    expect(debian.get("CONFIG_FUSE_FS")).toBe("y");
    expect(debian.get("CONFIG_BTRFS_FS")).toBe("m");
    expect(debian.get("CONFIG_IKCONFIG")).toBe("n");
    expect(debian.get("CONFIG_NR_CPUS")).toBe("8192");
    expect(debian.get("CONFIG_CC_VERSION_TEXT")).toBe('"x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0"');
    expect([...built.values()].filter((v) => v === "n").length).toBe(914);
  });

  it("lists the options whose values differ, absent and not set being the same", () => {
    expect(diff.length).toBeGreaterThan(1000);
    expect(diff.find((c) => c.option === "CONFIG_NR_CPUS")).toEqual({
      option: "CONFIG_NR_CPUS",
      good: "8192",
      bad: "8",
    });
    expect(diff.find((c) => c.option === "CONFIG_BTRFS_FS")).toEqual({
      option: "CONFIG_BTRFS_FS",
      good: "m",
      bad: "n",
    });
    expect(diff.find((c) => c.option === "CONFIG_VIRTIO_NET")).toEqual({
      option: "CONFIG_VIRTIO_NET",
      good: "m",
      bad: "y",
    });
    // Not set in both: not a difference. Set only in Debian's (absent from the 7.3 build): a difference.
    expect(names).not.toContain("CONFIG_IKCONFIG");
    const notSetHereAbsentThere = [...debian].filter(([k, v]) => v === "n" && !built.has(k)).map(([k]) => k);
    expect(notSetHereAbsentThere.length).toBeGreaterThan(0);
    for (const k of notSetHereAbsentThere) expect(names).not.toContain(k);
    expect(names).toEqual([...names].sort());
    for (const c of diff) expect(c.good).not.toBe(c.bad);
  });

  it("BAD with GOOD's values of every differing option is GOOD; with some, only those change", () => {
    expect(differingOptions(debian, parseConfig(withGoodValues(built, diff)))).toEqual([]);
    const some = diff.filter((c) => ["CONFIG_NR_CPUS", "CONFIG_EXT4_FS"].includes(c.option));
    const probe = parseConfig(withGoodValues(built, some));
    expect(differingOptions(probe, built)).toEqual(some);
  });

  it("identifies a resolved config by its values, not its comments, order or spelling of n", () => {
    const text = read("built-7.3.4-guest-x86_64.config");
    const reordered = renderConfig(new Map([...built].reverse()));
    const absentN = renderConfig(new Map([...built].filter(([, v]) => v !== "n")));
    expect(configKey(parseConfig(reordered))).toBe(configKey(parseConfig(text)));
    expect(configKey(parseConfig(absentN))).toBe(configKey(built));
    expect(configKey(parseConfig(text.replace("CONFIG_NR_CPUS=8", "CONFIG_NR_CPUS=16")))).not.toBe(configKey(built));
  });
});

/** Runs the search to its end with `oracle` judging each probe's applied options; counts probes. */
function search(options: readonly string[], oracle: (applied: ReadonlySet<string>) => Verdict) {
  const verdicts = new Map<string, Verdict>([
    [setKey([]), "bad"],
    [setKey(options), "good"],
  ]);
  const probes: string[][] = [];
  for (;;) {
    const p = nextProbe(options, (k) => verdicts.get(k));
    if (p.kind !== "probe") return { end: p, probes };
    expect(verdicts.has(setKey(p.apply))).toBe(false);
    probes.push(p.apply);
    verdicts.set(setKey(p.apply), oracle(new Set(p.apply)));
  }
}

describe("halving the differing options", () => {
  it("finds the one option that flips the cell in ceil(log2 n) probes", () => {
    const r = search(names, (a) => (a.has("CONFIG_IKCONFIG_PROC") || a.has("CONFIG_NR_CPUS") ? "good" : "bad"));
    // Two options each fix it alone: the search ends at one of them, BAD + everything before it still bad.
    expect(r.end.kind).toBe("found");
    if (r.end.kind !== "found") return;
    expect(["CONFIG_IKCONFIG_PROC", "CONFIG_NR_CPUS"]).toContain(r.end.option);
    expect(r.end.lastBad).not.toContain("CONFIG_IKCONFIG_PROC");
    expect(r.end.lastBad).not.toContain("CONFIG_NR_CPUS");
    expect(r.end.firstGood).toEqual([...r.end.lastBad, r.end.option].sort());
    expect(r.probes.length).toBeLessThanOrEqual(expectedProbes(names.length));
    expect(r.probes.length).toBe(Math.ceil(Math.log2(names.length)));
  });

  it("two options needed together: ends at one, with the other among those already applied", () => {
    const needed = ["CONFIG_EXT4_FS", "CONFIG_VIRTIO_NET"];
    expect(names).toEqual(expect.arrayContaining(needed));
    const r = search(names, (a) => (needed.every((o) => a.has(o)) ? "good" : "bad"));
    const end = r.end;
    if (end.kind !== "found") throw new Error(`ended ${end.kind}`);
    expect(needed).toContain(end.option);
    expect(end.lastBad).toContain(needed.find((o) => o !== end.option));
  });

  it("a skipped half: tries the other half; both skipped: ambiguous with the candidates", () => {
    const six = names.slice(0, 6);
    const culprit = six[4]!;
    const skipFirstHalf = search(six, (a) => (a.has(six[0]!) ? "skip" : a.has(culprit) ? "good" : "bad"));
    expect(skipFirstHalf.end).toMatchObject({ kind: "found", option: culprit });
    const allSkip = search(six, () => "skip");
    expect(allSkip.end).toEqual({ kind: "ambiguous", candidates: six, applied: [] });
    expect(allSkip.probes).toEqual([six.slice(0, 3), six.slice(3)]);
  });

  it("one differing option needs no probe", () => {
    expect(search(["CONFIG_X"], () => "bad").end).toEqual({
      kind: "found",
      option: "CONFIG_X",
      lastBad: [],
      firstGood: ["CONFIG_X"],
    });
  });
});

function record(applied: string[], verdict: Verdict, key: string, extra: Partial<ConfigStepRecord> = {}) {
  const phase = applied.length === 0 ? "check-bad" : applied.length === names.length ? "check-good" : "step";
  const rec: ConfigStepRecord = {
    phase,
    index: 0,
    commit: key,
    subject: "BAD",
    applied,
    configKey: key,
    config: `configs/${key}.config`,
    build: { how: "built", ms: 161_000 },
    runs: [
      {
        outcome: verdict === "good" ? { kind: "pass" } : { kind: "fail", detail: "exit 1" },
        bootMs: 6100,
        workloadMs: 300,
      },
    ],
    verdict,
    reason: verdict === "good" ? "passed 1/1" : "FAIL reproduced 1/1",
    startedAt: "2026-12-03T04:00:00.000Z",
    ms: 170_000,
    ...extra,
  };
  return rec;
}

const params = {
  good: "/tmp/good.config",
  bad: "/tmp/bad.config",
  goodSha256: "a".repeat(64),
  badSha256: "b".repeat(64),
  scenario: "/tmp/s.yaml",
  kernel: "mine",
  workload: "procconfig",
  repeat: 1,
};

describe("state and its replay", () => {
  it("a resumed search asks for the same next probe as the one that stopped", () => {
    const oracle = (a: ReadonlySet<string>): Verdict => (a.has("CONFIG_NR_CPUS") ? "good" : "bad");
    const live = search(names, oracle);
    const steps = [record([], "bad", "k0"), record(names, "good", "k1")];
    for (const [i, p] of live.probes.slice(0, 3).entries()) steps.push(record(p, oracle(new Set(p)), `p${i}`));
    const next = nextProbe(names, (k) => verdictsByApplied(steps).get(k));
    expect(next.kind).toBe("probe");
    if (next.kind === "probe") expect(next.apply).toEqual(live.probes[3]);
  });

  it("keeps an earlier run's steps for the same question, starts fresh when a file changed", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vmrig-config-bisect-"));
    try {
      const fresh = (): ConfigStateFile => ({
        format: CONFIG_STATE_FORMAT,
        params,
        tree: "debian:linux-source-7.3",
        diff,
        steps: [],
      });
      const first = await openConfigState(dir, fresh());
      first.steps.push(record([], "bad", "k0"));
      fs.writeFileSync(path.join(dir, "state.json"), JSON.stringify(first));
      expect((await openConfigState(dir, fresh())).steps).toHaveLength(1);
      const edited = { ...fresh(), params: { ...params, goodSha256: "c".repeat(64) } };
      expect(configBisectDirName(edited.params)).not.toBe(configBisectDirName(params));
      expect(resumeConfigState(first, edited).steps).toEqual([]);
      expect(resumeConfigState(first, { ...fresh(), tree: "git:0123" }).steps).toEqual([]);
      // The ends are taken from an earlier run only for the same question in the same tree, with both files there.
      expect(await savedEnds(dir, params, first.tree)).toBeUndefined();
      fs.mkdirSync(path.join(dir, "configs"));
      for (const end of ["good", "bad"] as const) fs.writeFileSync(path.join(dir, endFile(end)), `${end}\n`);
      expect(await savedEnds(dir, params, first.tree)).toEqual({ good: "good\n", bad: "bad\n" });
      expect(await savedEnds(dir, params, "git:0123")).toBeUndefined();
      expect(await savedEnds(dir, edited.params, first.tree)).toBeUndefined();
      expect(fs.readFileSync(path.join(dir, "bisect.log"), "utf8")).toMatch(/^# vmrig bisect --config \/tmp\/good/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a probe olddefconfig made into a tested config finds that step, never a reused one", () => {
    const steps = [record([], "bad", "k0"), record(names, "good", "k1")];
    const state: ConfigStateFile = { format: CONFIG_STATE_FORMAT, params, tree: "t", diff, steps };
    expect(sameResolvedConfig(state, "k0")?.phase).toBe("check-bad");
    expect(sameResolvedConfig(state, "k9")).toBeUndefined();
    steps.push(record(names.slice(0, 3), "bad", "k2", { reusedFrom: 0 }));
    expect(sameResolvedConfig(state, "k2")).toBeUndefined();
    expect(configBisectLog(state).split("\n")[3]).toBe(
      `bad k2 +3  # step: FAIL reproduced 1/1; applied: ${names.slice(0, 3).join(" ")}`,
    );
  });
});

describe("what it prints", () => {
  const option: OptionChange = { option: "CONFIG_IKCONFIG_PROC", good: "y", bad: "n" };
  const together: OptionChange[] = [{ option: "CONFIG_IKCONFIG", good: "y", bad: "n" }, option];

  it("the header lists the differing options; a step line says what was applied and reused", () => {
    const h = configHeaderLines(params, diff, 0, 3);
    expect(h[0]).toMatch(/^bisect \d+ options that differ between \/tmp\/good.config \(good\) and \/tmp\/bad.config/);
    expect(h[0]).toContain(`about ${expectedProbes(diff.length)} steps`);
    expect(h).toHaveLength(5);
    expect(h[4]).toBe(`  ... ${diff.length - 3} more (state.json has them all)`);
    const built = configStepLine(record(names.slice(0, 2), "good", "0123456789abcdef"), "procconfig");
    expect(built).toMatch(/^step 0 +\+2 options +0123456789abcdef +build {2}2m41s built .* procconfig PASS .*=> good/);
    const reused = configStepLine(record(names.slice(0, 2), "bad", "0123", { reusedFrom: 0, runs: [] }), "w");
    expect(reused).toContain("- reused");
    expect(reused).toContain("not run");
  });

  it("the answer: the option, what olddefconfig changes with it, the configs", () => {
    const result = { kind: "found" as const, culprit: option.option, steps: 11, skips: 0, confidence: 0.5 };
    const answer = { option, together, lastBad: "/r/configs/a.config", firstGood: "/r/configs/b.config" };
    const lines = configResultLines(result, answer, { options: 1500, repeat: 1, bad: { reproduced: 1, runs: 1 } });
    expect(lines[0]).toBe("the option: CONFIG_IKCONFIG_PROC  good y  bad not set");
    expect(lines[1]).toBe("  olddefconfig changes 1 more option with it (they cannot be separated):");
    expect(lines[2]).toBe("    CONFIG_IKCONFIG       good y  bad not set");
    expect(lines.at(-1)).toMatch(/^ {2}11 bisect steps for 1500 options, 1 run per config; confidence 50.0%/);
    const ambiguous = {
      kind: "ambiguous" as const,
      candidates: ["CONFIG_A", "CONFIG_B"],
      steps: 2,
      skips: 2,
      confidence: 0,
    };
    expect(configResultLines(ambiguous, undefined, { options: 2, repeat: 1, bad: { reproduced: 1, runs: 1 } })).toEqual(
      [
        "skipped steps hide the option; BAD with GOOD's values of the options already applied passes with one of:",
        "  CONFIG_A",
        "  CONFIG_B",
        "  2 bisect steps (2 skipped) for 2 options",
      ],
    );
  });
});

describe("bad input: exit 2 naming what is wrong, nothing written", () => {
  const cli = path.join(repoRoot, "harness", "cli.ts");
  const guestConfig = path.join(repoRoot, "kernels", "guest-x86_64.config");
  const debianConfig = path.join(fixtures, "debian-6.18.15-cloud-amd64.config");
  const scenario = path.join(repoRoot, "scenarios", "getdents-swiotlb.yaml");

  async function vmrig(args: string[]) {
    const results = fs.mkdtempSync(path.join(os.tmpdir(), "vmrig-config-bisect-cli-"));
    try {
      const r = await execa("node", ["--import", "tsx", cli, "bisect", ...args], {
        reject: false,
        env: { VMRIG_RESULTS: results },
      });
      return { code: r.exitCode, stderr: r.stderr, written: fs.readdirSync(results) };
    } finally {
      fs.rmSync(results, { recursive: true, force: true });
    }
  }

  it("a missing file, a row without build:, an unknown workload, one file only", { timeout: 60_000 }, async () => {
    const cellOf = (kernel: string, workload: string) => [
      "--scenario",
      scenario,
      "--kernel",
      kernel,
      "--workload",
      workload,
    ];
    const cell = cellOf("prefix-7.3", "getdents-1M");
    const missing = await vmrig(["--config", debianConfig, "/nonexistent/bad.config", ...cell]);
    expect(missing).toEqual({
      code: 2,
      stderr: "vmrig: --config BAD /nonexistent/bad.config: does not exist",
      written: [],
    });
    const debianRow = await vmrig(["--config", debianConfig, guestConfig, ...cellOf("debian-7.3", "getdents-1M")]);
    expect(debianRow.code).toBe(2);
    expect(debianRow.stderr).toMatch(/^vmrig: --kernel debian-7\.3: a debian kernel; --config builds the row's tree/);
    expect(debianRow.written).toEqual([]);
    const workload = await vmrig(["--config", debianConfig, guestConfig, ...cellOf("prefix-7.3", "nope")]);
    expect(workload.code).toBe(2);
    expect(workload.stderr).toMatch(/--workload nope: .*getdents-swiotlb\.yaml has no such workload/);
    const one = await vmrig(["--config", debianConfig, ...cell]);
    expect(one.code).toBe(2);
    expect(one.stderr).toMatch(/^vmrig: bisect: --config takes two files: GOOD BAD\nusage:\n/);
    const notConfig = await vmrig(["--config", scenario, guestConfig, ...cell]);
    expect(notConfig.stderr).toBe(`vmrig: --config GOOD ${scenario}: no CONFIG_ option in it`);
  });
});
