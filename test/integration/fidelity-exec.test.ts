// Code run from virtio-fs pages under TCG: QEMU drops the code it translated from a guest page only when a write
// goes through QEMU, and virtiofsd writes guest RAM directly. A kernel that zeroes pages on allocation makes the guest
// CPU write every page cache page before virtiofsd fills it, so the stale code goes; vmrig puts init_on_alloc=1 on
// every TCG guest's command line (Debian's kernels have it on by default; vmrig's fragments do not). One build of
// kernels/guest-x86_64.config (cached by kernel-build.test.ts), two TCG boots of ~15 s: as vmrig boots it (must run
// what the pages hold) and with the row's init_on_alloc=0 (must catch stale code, or this test would prove nothing).
// docs/fidelity-mapped-exec.md has the story.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { repoRoot } from "../../harness/util/paths.ts";
import { guestProcessesWithEnv } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

const tmp = testScratch("vmrig-test-fidelity-exec-");
const results = path.join(tmp, "results");
const env = { VMRIG_RESULTS: results };
const vmrig = path.join(repoRoot, "bin/vmrig.js");
const minutes = (n: number) => n * 60_000;
const program = path.join(tmp, "exec-stale");
const scenario = path.join(tmp, "fidelity-exec.yaml");
const fragment = path.join(repoRoot, "kernels", "guest-x86_64.config");
const build = `{ source: "debian:linux-source-7.3", arch: x86_64, config: [${fragment}] }`;

// The program arrives on stdin (the guest image does not carry it) and writes its code files into the share.
const guestCommand =
  "cat > /tmp/exec-stale && chmod +x /tmp/exec-stale && /tmp/exec-stale --make /mnt/share && " +
  "/tmp/exec-stale /mnt/share/code-a /mnt/share/code-b 20";

async function runIn(label: string) {
  return execa(process.execPath, [vmrig, "shell", scenario, "--kernel", label, "--", guestCommand], {
    reject: false,
    env,
    input: readFileSync(program),
    timeout: minutes(4),
  });
}

beforeAll(async () => {
  const source = path.join(repoRoot, "test", "fixtures", "guest-programs", "exec-stale.c");
  await execa("gcc", ["-O2", "-static", "-Wall", "-Werror", "-o", program, source]);
  // accel tcg: under KVM the hardware keeps code and DMA coherent and the control row could not fail.
  writeFileSync(
    scenario,
    `name: fidelity-exec
machine: { arch: x86_64, memory: 1G, cpus: 2, accel: tcg }
kernels:
  fragment: { build: ${build} }
  fragment-no-zeroing: { build: ${build}, cmdline: [init_on_alloc=0] }
shares:
  - { tag: share }
workloads:
  - { id: unused, shell: { command: "true" } }
`,
  );
  const built = await execa(process.execPath, [vmrig, "kernel", "build", scenario], { reject: false, env });
  expect(built.exitCode, built.stderr).toBe(0);
}, minutes(25));

describe("code executed from virtio-fs pages under TCG", () => {
  it(
    "runs what the pages hold on the fragment's kernel as vmrig boots it under TCG",
    async () => {
      const r = await runIn("fragment");
      expect(r.stdout, r.stderr).toMatch(/^RESULT calls=1280 stale=0$/m);
      expect(r.exitCode).toBe(0);
      expect(guestProcessesWithEnv("VMRIG_RESULTS", results)).toEqual([]);
    },
    minutes(5),
  );

  it(
    "runs the previous contents' code on the same kernel with init_on_alloc=0",
    async () => {
      const r = await runIn("fragment-no-zeroing");
      const stale = /^RESULT calls=1280 stale=(\d+)$/m.exec(r.stdout);
      expect(stale, r.stdout + r.stderr).not.toBeNull();
      expect(Number(stale![1])).toBeGreaterThan(0);
      expect(r.stdout).toMatch(/the page holds code returning (\d+); the call returned (?!\1\b)\d+/);
      expect(r.exitCode).toBe(1);
      expect(guestProcessesWithEnv("VMRIG_RESULTS", results)).toEqual([]);
    },
    minutes(5),
  );
});
