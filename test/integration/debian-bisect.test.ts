// vmrig bisect over Debian packages, for real: no build, each step boots a Debian package from
// the archive (cached in vmrig's cache after the first download) under QEMU.
// - kernels: getdents-1M under swiotlb=force through the relay, cloud-amd64 6.12..6.18.15; the
//   fuse readdir buffer grew in upstream v6.16, so the first bad package is 6.16.3-1~bpo13+1.
// - QEMU: the VFIO mapping-budget `exceeds` cell, Debian's QEMU 10.0.2..11.1 as level 2; 10.0.x
//   warns and runs on, 11.1 refuses the device: the first refusing build is sid's 11.1.3+ds-1.
// Each is interrupted once after its ends were checked, resumed, then run a third time: no step
// is ever redone. The boots must stay within ceil(log2(N))+2 for N versions.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  type DebianBisectOptions,
  type DebianBisectOutcome,
  runDebianBisect,
} from "../../harness/bisect/debian-session.ts";
import { bootsOf } from "../../harness/bisect/debian-state.ts";
import { say, testProgress } from "../helpers/progress.ts";
import { pendingCleanups } from "../../harness/util/cleanup.ts";
import { VmrigError } from "../../harness/util/errors.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { ownGuestProcesses } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

const tmp = testScratch("vmrig-test-debian-bisect-");
const progress = testProgress;

afterAll(() => {
  expect(ownGuestProcesses()).toEqual([]);
  expect(pendingCleanups()).toEqual([]);
});

/** Interrupted once after the ends are checked, resumed to the answer, run once more: the three outcomes. */
async function bisectThreeTimes(o: Omit<DebianBisectOptions, "out" | "progress" | "resultsRoot">) {
  const lines: string[][] = [[], [], []];
  const base = { ...o, resultsRoot: path.join(tmp, "results"), progress };
  const stop = new AbortController();
  const interrupted = await runDebianBisect({
    ...base,
    signal: stop.signal,
    out: (l) => lines[0]!.push(l),
    onStep: (r) => {
      if (r.phase === "check-good") stop.abort();
    },
  }).catch((e: unknown) => e);
  expect(interrupted).toBeInstanceOf(VmrigError);
  expect((interrupted as VmrigError).exitCode).toBe(130);
  const resumed = await runDebianBisect({ ...base, out: (l) => lines[1]!.push(l) });
  const again = await runDebianBisect({ ...base, out: (l) => lines[2]!.push(l) });
  for (const l of lines[1]!) say(l);
  return { resumed, again, lines };
}

function expectResumedWithoutRedo(resumed: DebianBisectOutcome, again: DebianBisectOutcome): void {
  // The ends were checked before the interrupt: the resumed run only stepped.
  expect(resumed.ran.map((r) => r.phase).every((p) => p === "step")).toBe(true);
  expect(again.ran).toEqual([]);
  expect(again.state.result).toEqual(resumed.state.result);
  expect(bootsOf(again.state)).toBe(bootsOf(resumed.state));
}

describe("vmrig bisect --debian-kernel", () => {
  it(
    "names 6.12.118-1 last good and 6.16.3-1~bpo13+1 first bad for getdents-1M under swiotlb=force",
    async () => {
      const started = Date.now();
      const { resumed, again, lines } = await bisectThreeTimes({
        family: "kernel",
        good: "6.12",
        bad: "6.18.15",
        scenario: path.join(repoRoot, "scenarios", "bisect-debian-getdents.yaml"),
        kernel: "debian-6.18.15",
        workload: "getdents-1M",
      });
      const n = resumed.state.versions.length;
      const boots = bootsOf(resumed.state);
      const answer = resumed.state.result!.answer!;
      expect(resumed.exitCode).toBe(0);
      expect(answer.lastGood).toMatchObject({ version: "6.12.118-1", suites: ["trixie-security"] });
      expect(answer.firstBad).toMatchObject({ version: "6.16.3-1~bpo13+1", suites: ["trixie-backports"] });
      expect([answer.lastGoodTag, answer.firstBadTag]).toEqual(["v6.12.118", "v6.16.3"]);
      expect(answer.continueCommand).toContain("--good v6.12 --bad v6.16.3 ");
      expect(answer.changelog.entries).toBeGreaterThan(0);
      expect(readFileSync(answer.changelog.file!, "utf8")).toMatch(/^linux \(6\.16\.3-1\) unstable/m);
      expect(boots).toBeLessThanOrEqual(Math.ceil(Math.log2(n)) + 2);
      expect(resumed.state.identity?.identity).toEqual({ kind: "errno", errno: "ENOMEM" });
      expect(lines[0]![1]).toMatch(
        /^searched bookworm, .*experimental: \d+ versions from 6\.12\.118-1 to 6\.18\.15-1~bpo13\+1$/,
      );
      expect(lines[1]!.join("\n")).toContain("first bad: linux-image-6.16.3+deb13-cloud-amd64 6.16.3-1~bpo13+1");
      expectResumedWithoutRedo(resumed, again);
      expect(existsSync(path.join(resumed.dir, "bisect.log"))).toBe(true);
      console.log(
        `debian kernel bisect: ${boots} boots for ${n} versions; ${((Date.now() - started) / 1000).toFixed(0)} s`,
      );
    },
    30 * 60_000,
  );
});

describe("vmrig bisect --debian-qemu", () => {
  it(
    "names sid's 1:11.1.3+ds-1 as the first Debian QEMU that refuses the VFIO device over its mapping budget",
    async () => {
      const started = Date.now();
      const { resumed, again, lines } = await bisectThreeTimes({
        family: "qemu",
        good: "10.0.2",
        bad: "11.1",
        scenario: path.join(repoRoot, "scenarios", "bisect-debian-qemu-vfio.yaml"),
        kernel: "qemu-11.1",
        workload: "exceeds",
      });
      const n = resumed.state.versions.length;
      const boots = bootsOf(resumed.state);
      const answer = resumed.state.result!.answer!;
      expect(resumed.exitCode).toBe(0);
      expect(answer.lastGood).toMatchObject({ version: "1:10.0.13+ds-0+deb13u1", suites: ["trixie"] });
      expect(answer.firstBad).toMatchObject({ version: "1:11.1.3+ds-1", suites: ["sid"] });
      expect([answer.lastGoodTag, answer.firstBadTag]).toEqual(["v10.0.13", "v11.1.3"]);
      expect(answer.continueCommand).toBeUndefined();
      expect(resumed.state.identity?.identity).toEqual({ kind: "fail" });
      const bad = resumed.state.steps.find((s) => s.phase === "check-bad")!;
      expect(bad.runs[0]!.outcome).toMatchObject({ detail: expect.stringMatching(/^QEMU refused the device/) });
      expect(boots).toBeLessThanOrEqual(Math.ceil(Math.log2(n)) + 2);
      expect(lines[1]!.join("\n")).toContain("upstream range: v10.0.13..v11.1.3");
      expectResumedWithoutRedo(resumed, again);
      console.log(
        `debian qemu bisect: ${boots} boots for ${n} versions; ${((Date.now() - started) / 1000).toFixed(0)} s`,
      );
    },
    40 * 60_000,
  );
});
