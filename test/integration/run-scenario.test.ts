// Real guests under TCG (or KVM where it works) with a real virtiofsd share: every workload
// kind, the table, the artifacts, and that nothing is left running.
import { describe, expect, it } from "vitest";
import { readFileSync, existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runScenarioFile } from "../../harness/run/run-file.ts";
import { silentProgress, discardOutput, type Progress } from "../../harness/run/progress.ts";
import { ownGuestProcesses, processesMatching } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

// Removed afterwards; a failed test's guest consoles are kept (the path is printed).
const tmp = testScratch("vmrig-test-run-");

const quiet: Progress = silentProgress;
const sink = discardOutput;

function scenario(name: string, body: string): string {
  const f = path.join(tmp, `${name}.yaml`);
  writeFileSync(f, `name: ${name}\n${body}`);
  return f;
}

/** Writes the scenario and runs it quietly into this file's results directory. */
const runInline = (name: string, body: string, progress: Progress = quiet) =>
  runScenarioFile(scenario(name, body), { resultsRoot: path.join(tmp, "results"), progress, out: sink });

/** Progress that SIGKILLs the daemons matching `pattern` 1.5 s into the slow-ls workload. */
function killDuringSlowLs(pattern: RegExp): { progress: Progress; killed: () => number } {
  let killed = 0;
  const progress: Progress = {
    ...quiet,
    stage: (_k, what) => {
      if (!what.startsWith("slow-ls")) return;
      setTimeout(() => {
        // QEMU's own command line names the daemon's socket: it must not be the one killed.
        for (const p of processesMatching(pattern).filter((x) => !x.cmdline.includes("qemu-system"))) {
          process.kill(p.pid, "SIGKILL");
          killed++;
        }
      }, 1500);
    },
  };
  return { progress, killed: () => killed };
}

describe("runScenarioFile on real guests", () => {
  it("runs readdir, read, write, shell and exec on a Debian kernel over virtio-fs and keeps every artifact", async () => {
    const { result, runDir, exitCode } = await runInline(
      "all-kinds",
      `machine: { arch: x86_64, memory: 1G, cpus: 2 }
kernels:
  debian-6.12: { debian: { version: "6.12", flavour: cloud-amd64 } }
  # 6.1 builds virtio_pci, virtio_net, fuse and virtiofs as modules: the image must load them.
  debian-6.1: { debian: { version: "6.1", flavour: cloud-amd64 } }
shares:
  - { tag: share }
workloads:
  - { id: getdents-64K, readdir: { share: share, entries: 1500, bufferSize: 64K } }
  - { id: read-1M, read: { share: share, size: 8M, blockSize: 1M } }
  - { id: write-1M, write: { share: share, size: 8M, blockSize: 1M } }
  - { id: uname, shell: { command: "uname -r", expectExit: 0 } }
  - { id: false-fails, shell: { command: "false", expectExit: 0 } }
  - { id: exec, exec: { share: share, program: /usr/bin/ls, args: ["-1", /lib/x86_64-linux-gnu] } }
expect: { default: PASS }
`,
    );
    const cells = Object.fromEntries(result.rows[0]!.cells.map((c) => [c.workload, c]));
    expect(cells["getdents-64K"]!.outcome).toMatchObject({ kind: "pass" });
    expect(cells["read-1M"]!.outcome).toMatchObject({ kind: "pass" });
    expect(cells["write-1M"]!.outcome).toMatchObject({ kind: "pass" });
    expect(cells["uname"]!.outcome).toMatchObject({ kind: "pass" });
    expect(cells["false-fails"]!.outcome).toMatchObject({ kind: "fail" });
    expect(cells["false-fails"]!.met).toBe(false);
    // ls and its libraries mapped from the share three times, each listing what the host's run listed.
    expect(cells["exec"]!.outcome).toMatchObject({ kind: "pass" });
    const runs = cells["exec"]!.evidence.runs as { exit: number; stdout: string }[];
    expect(runs.map((r) => [r.exit, r.stdout.trim().split("\n").includes("libc.so.6")])).toEqual([
      [0, true],
      [0, true],
      [0, true],
    ]);
    expect(exitCode).toBe(1);
    expect(result.complete).toBe(true);
    expect(String(result.rows[0]!.evidence.uname)).toMatch(/^6\.12\./);
    // The modular kernel: every share workload passes too, so its modules were found and loaded.
    const old = result.rows[1]!;
    expect(String(old.evidence.uname)).toMatch(/^6\.1\./);
    expect(old.cells.filter((c) => c.workload !== "false-fails").map((c) => c.outcome.kind)).toEqual([
      "pass",
      "pass",
      "pass",
      "pass",
      "pass",
    ]);
    for (const f of [
      "results.json",
      "results.md",
      "junit.xml",
      "debian-6.12/console.log",
      "debian-6.12/dmesg.txt",
      "debian-6.12/qemu-cmdline.txt",
      "debian-6.12/virtiofsd-share.log",
    ]) {
      expect(existsSync(path.join(runDir, f)), f).toBe(true);
    }
    expect(readFileSync(path.join(runDir, "debian-6.12/qemu-cmdline.txt"), "utf8")).toContain("vhost-user-fs-pci");
    expect(ownGuestProcesses()).toEqual([]);
  }, 900_000);

  it("boots once more when the first boot ran out of time with a clean console, then calls it BOOT-FAIL, keeping both consoles", async () => {
    // rdinit=/bin/sh: the guest sits at a shell prompt and never starts sshd; nothing on the console is wrong.
    const { result, runDir, exitCode } = await runInline(
      "silent-boot",
      `machine: { arch: x86_64, memory: 512M, cpus: 1 }
timeouts: { boot: 4 }
kernels:
  quiet: { debian: { version: "6.12", flavour: cloud-amd64 }, cmdline: ["rdinit=/bin/sh"] }
workloads:
  - { id: uname, shell: { command: "uname -r", expectExit: 0 } }
expect: { default: BOOT-FAIL }
`,
    );
    const row = result.rows[0]!;
    expect(row.cells[0]!.outcome).toMatchObject({ kind: "boot-fail" });
    expect(row.evidence.bootRetry).toMatchObject({ reason: expect.any(String), consoleTail: expect.any(String) });
    // The cause is in the table too, and says the guest never announced sshd (nothing vmrig missed).
    const never = /never printed "vmrig-guest: ready"/;
    expect((row.evidence.bootRetry as { reason: string }).reason).toMatch(never);
    expect(row.cells[0]!.notes?.[0]).toMatch(/^the first boot failed and was retried: /);
    expect(row.cells[0]!.notes?.[0]).toMatch(never);
    expect(existsSync(path.join(runDir, row.artifacts["console-failed-boot"]!))).toBe(true);
    expect(existsSync(path.join(runDir, row.artifacts.console!))).toBe(true);
    expect(exitCode).toBe(0);
    expect(ownGuestProcesses()).toEqual([]);
  }, 600_000);

  it("boots a row with Debian's QEMU 11.1 (qemu:) beside a row with the host's, both over virtio-fs", async () => {
    const { result, runDir, exitCode } = await runInline(
      "qemu-rows",
      `machine: { arch: x86_64, memory: 1G, cpus: 2 }
kernels:
  host-qemu: { debian: { version: "7.3", flavour: cloud-amd64 } }
  qemu-11.1: { debian: { version: "7.3", flavour: cloud-amd64 }, qemu: { debian: "11.1", suite: trixie-backports } }
shares:
  - { tag: share }
workloads:
  - { id: getdents-1M, readdir: { share: share, entries: 1500, bufferSize: 1M } }
  - { id: read-1M, read: { share: share, size: 8M, blockSize: 1M } }
expect: { default: PASS }
`,
    );
    expect(exitCode).toBe(0);
    const [host, own] = result.rows;
    expect(host!.evidence.qemu).toBeUndefined();
    expect(own!.evidence.qemu).toMatchObject({
      version: expect.stringMatching(/^11\.1\./),
      source: expect.stringMatching(/^debian \S+ qemu-system-x86 /),
    });
    expect(own!.description).toMatch(/; QEMU 11\.1\.\d+ \(Debian /);
    expect(own!.cells.map((c) => c.outcome.kind)).toEqual(["pass", "pass"]);
    // The exact command line: the private loader runs Debian's 11.1 binary with its own firmware directory.
    const cmdline = readFileSync(path.join(runDir, "qemu-11.1", "qemu-cmdline.txt"), "utf8");
    expect(cmdline).toMatch(
      /^env QEMU_MODULE_DIR=\S+ \S+\/ld-linux-x86-64\.so\.2 --library-path \S+ \S+\/usr\/bin\/qemu-system-x86_64 -L \S+\/usr\/share\/qemu /,
    );
    expect(cmdline).toContain("vhost-user-fs-pci");
    expect(readFileSync(path.join(runDir, "host-qemu", "qemu-cmdline.txt"), "utf8")).toMatch(/^qemu-system-x86_64 /);
    expect(ownGuestProcesses()).toEqual([]);
  }, 900_000);

  it("stops the VM and reports INFRA when virtiofsd is killed mid-workload, leaving no process", async () => {
    const body = `kernels:
  debian-6.12: { debian: { version: "6.12", flavour: cloud-amd64 } }
shares:
  - { tag: share }
workloads:
  - { id: slow-ls, shell: { command: "sleep 4; ls /mnt/share", expectExit: 0 } }
  - { id: after, shell: { command: "true", expectExit: 0 } }
`;
    const { progress, killed } = killDuringSlowLs(/virtiofsd.*vmrig-debian-6\.12-/);
    const { result } = await runInline("kill-virtiofsd", body, progress);
    expect(killed()).toBeGreaterThan(0);
    const cells = result.rows[0]!.cells;
    expect(cells[0]!.outcome.kind).toBe("infra");
    expect(JSON.stringify(cells[0]!.outcome)).toMatch(/virtiofsd\[share\] exited \(signal SIGKILL\)/);
    // The next workload ran on a fresh guest with a fresh virtiofsd.
    expect(cells[1]!.outcome.kind).toBe("pass");
    expect(ownGuestProcesses()).toEqual([]);
  }, 900_000);
  it("says the relay died when the ACCESS_PLATFORM relay is killed mid-workload, leaving no process", async () => {
    const body = `kernels:
  relaykill: { debian: { version: "6.12", flavour: cloud-amd64 } }
shares:
  - { tag: share, accessPlatform: true }
workloads:
  - { id: slow-ls, shell: { command: "sleep 4; ls /mnt/share", expectExit: 0 } }
`;
    const { progress, killed } = killDuringSlowLs(/vhost-user-relay.*vmrig-relaykill-/);
    const { result } = await runInline("kill-relay", body, progress);
    expect(killed()).toBeGreaterThan(0);
    const outcome = result.rows[0]!.cells[0]!.outcome;
    expect(outcome.kind).toBe("infra");
    // virtiofsd behind it exits cleanly once its only peer is gone: that is not the cause.
    expect(JSON.stringify(outcome)).toMatch(/"reason":"relay\[share\] exited \(signal SIGKILL\)/);
    expect(ownGuestProcesses()).toEqual([]);
  }, 900_000);
});
