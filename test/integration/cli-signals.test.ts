// Ctrl-C during a run: exit 130, every QEMU and virtiofsd gone, partial results kept and marked
// incomplete. Also the CLI's exit code 2 for bad input, with nothing written to results/.
import { describe, expect, it } from "vitest";
import { execa } from "execa";
import { mkdirSync, readFileSync, readdirSync, existsSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { guestProcessesWithEnv } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";
import type { RunResult } from "../../harness/types.ts";

const root = path.resolve(import.meta.dirname, "..", "..");
// Removed afterwards; a failed test's guest consoles are kept (the path is printed).
const tmp = testScratch("vmrig-test-cli-");
// bin/vmrig.js, as `npx vmrig` runs it: one process, so signals reach vmrig itself.
const cli = (args: string[], opts = {}) =>
  execa(process.execPath, [path.join(root, "bin/vmrig.js"), ...args], {
    reject: false,
    cwd: tmp,
    env: { VMRIG_RESULTS: path.join(tmp, "results") },
    ...opts,
  });

/** The guests' scratch directories (sockets, shares) in the temp dir: each run removes its own. */
const vmrigTempDirs = () =>
  readdirSync(os.tmpdir()).filter((d) => d.startsWith("vmrig-k-") || d.startsWith("vmrig-later-"));

describe("vmrig CLI", () => {
  it("exits 2 with file:line:col for a bad scenario and writes no results", async () => {
    const f = path.join(tmp, "bad.yaml");
    writeFileSync(
      f,
      "name: bad\nkernels:\n  a: { debian: { version: '6.12', flavour: cloud-amd64 } }\n" +
        "workloads:\n  - { id: r, read: { share: nope, size: 1Q } }\n",
    );
    const r = await cli(["run", f]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:5:\d+ workloads\[0\]/);
    expect(existsSync(path.join(tmp, "results"))).toBe(false);
  }, 120_000);

  it("exits 2 with a usage line for an unknown option or kernel label, writing nothing", async () => {
    const bogus = await cli(["run", "--bogus"]);
    expect(bogus.exitCode).toBe(2);
    expect(bogus.stderr).toMatch(/Unknown option '--bogus'/);
    expect(bogus.stderr).not.toMatch(/internal error/);
    const label = await cli(["run", path.join(root, "scenarios/default.yaml"), "--kernel", "nope"]);
    expect(label.exitCode).toBe(2);
    expect(label.stderr).toMatch(
      /--kernel: unknown kernel label\(s\) nope; the scenario has debian-6\.18\.15, debian-7\.3/,
    );
    expect(existsSync(path.join(tmp, "results"))).toBe(false);
  }, 120_000);

  it("vmrig kernel: lists the cache, and refuses a missing scenario or an unknown subcommand with exit 2", async () => {
    const list = await cli(["kernel", "list"]);
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toMatch(/build work director|no built kernels|\d+\.\d+/);
    const none = await cli(["kernel", "build"]);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toMatch(/kernel build needs a scenario file/);
    const bad = await cli(["kernel", "frobnicate"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/unknown kernel command "frobnicate" \(build, debug-symbols, list, gc\)/);
  }, 120_000);

  it("exits 2 naming the nearest versions when a pinned Debian kernel is gone", async () => {
    const f = path.join(tmp, "gone.yaml");
    writeFileSync(
      f,
      "name: gone\nkernels:\n  old: { debian: { version: '6.18.1', flavour: cloud-amd64 } }\n" +
        "workloads:\n  - { id: u, shell: { command: 'true' } }\n",
    );
    const r = await cli(["run", f]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/6\.18\.1.*no longer|not in/i);
    expect(r.stderr).toMatch(/nearest/i);
    expect(existsSync(path.join(tmp, "results"))).toBe(false);
  }, 300_000);

  it("exits 2 with one clear line when QEMU is missing, before touching results", async () => {
    const bin = path.join(tmp, "bin-without-qemu");
    mkdirSync(bin, { recursive: true });
    symlinkSync(process.execPath, path.join(bin, "node"));
    const f = path.join(tmp, "noqemu.yaml");
    writeFileSync(
      f,
      "name: noqemu\nkernels:\n  k: { debian: { version: '6.12', flavour: cloud-amd64 } }\n" +
        "workloads:\n  - { id: u, shell: { command: 'true' } }\n",
    );
    const r = await cli(["run", f], { env: { PATH: bin, VMRIG_RESULTS: path.join(tmp, "results-noqemu") } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/Cannot run x86_64 guests: missing qemu-system-x86_64 \(qemu-system-x86\)/);
    expect(r.stderr).toMatch(/Install them: apt-get install .*qemu-system-x86.*\(or run `npm run setup`\)/);
    expect(existsSync(path.join(tmp, "results-noqemu"))).toBe(false);
  }, 120_000);

  it("answers --help for every command and subcommand with its own usage, exit 0", async () => {
    for (const args of [
      ["--help"],
      ["run", "--help"],
      ["bisect", "--help"],
      ["kernel", "build", "--help"],
      ["kernel", "gc", "-h"],
      ["setup", "-h"],
      ["compare", "--help"],
      ["baseline", "--help"],
    ]) {
      const r = await cli(args);
      expect(r.exitCode, args.join(" ")).toBe(0);
      const name = args[0] === "--help" ? "<command>" : args.filter((a) => !a.startsWith("-")).join(" ");
      expect(r.stdout, args.join(" ")).toMatch(new RegExp(`^usage: vmrig ${name}`));
    }
    expect((await cli(["bisect", "--help"])).stdout).toMatch(
      /--workload ID +the workload whose cell decides good or bad/,
    );
    expect((await cli(["run", "--help"])).stdout).toMatch(/130 interrupted by SIGINT or SIGTERM/);
    expect(existsSync(path.join(tmp, "results"))).toBe(false);
  }, 120_000);

  /** Waits for the first workload, then signals vmrig (or, with `group`, its whole process group, as CI does). */
  async function interruptAtWorkload(
    child: ReturnType<typeof execa>,
    signal: NodeJS.Signals,
    results: string,
    group = false,
  ) {
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (stderr.includes("[k] long")) {
          clearInterval(t);
          resolve();
        }
      }, 200);
      setTimeout(() => reject(new Error(`never reached the workload: ${stderr}`)), 400_000);
    });
    expect(guestProcessesWithEnv("VMRIG_RESULTS", results).length).toBeGreaterThan(0);
    if (group) process.kill(-child.pid!, signal);
    else child.kill(signal);
    return child;
  }

  it("SIGINT stops every guest process, exits 130 and keeps results marked incomplete", async () => {
    const f = path.join(tmp, "interrupt.yaml");
    writeFileSync(
      f,
      "name: interrupt\nkernels:\n  k: { debian: { version: '6.12', flavour: cloud-amd64 } }\n" +
        "shares: [{ tag: share }]\nworkloads:\n  - { id: long, shell: { command: 'sleep 600' } }\n",
    );
    const r = await interruptAtWorkload(cli(["run", f], { buffer: true }), "SIGINT", path.join(tmp, "results"));
    expect(r.exitCode).toBe(130);
    expect(guestProcessesWithEnv("VMRIG_RESULTS", path.join(tmp, "results"))).toEqual([]);
    const runs = path.join(tmp, "results", "interrupt");
    const [stamp] = readdirSync(runs);
    const resultsFile = path.join(runs, stamp!, "results.json");
    const json = JSON.parse(readFileSync(resultsFile, "utf8")) as RunResult; // vmrig wrote it
    expect(json.complete).toBe(false);
    expect(json.rows[0]!.cells[0]!.outcome.kind).toBe("not-run");
  }, 600_000);

  // A CI cancel, `timeout` or systemd signals the process group: npm forwards the signal, so vmrig gets it twice.
  it("SIGTERM to the process group of `npm run vmrig` is one interruption: exit 130, every report written", async () => {
    const f = path.join(tmp, "terminate.yaml");
    writeFileSync(
      f,
      "name: terminate\nkernels:\n  k: { debian: { version: '6.12', flavour: cloud-amd64 } }\n" +
        "  later: { debian: { version: '6.12', flavour: cloud-amd64 } }\n" +
        "workloads:\n  - { id: long, shell: { command: 'sleep 600' } }\n" +
        "  - { id: after, shell: { command: 'true' } }\n",
    );
    const results = path.join(tmp, "results-term");
    const npm = execa("npm", ["run", "--silent", "vmrig", "--", "run", f], {
      reject: false,
      cwd: root,
      env: { VMRIG_RESULTS: results },
      buffer: true,
      detached: true,
    });
    const tmpBefore = vmrigTempDirs();
    const r = await interruptAtWorkload(npm, "SIGTERM", results, true);
    expect(String(r.stderr).match(/vmrig: SIGTERM: stopping guests/g)).toHaveLength(1);
    expect(r.exitCode).toBe(130);
    expect(guestProcessesWithEnv("VMRIG_RESULTS", results)).toEqual([]);
    const runs = path.join(results, "terminate");
    const dir = path.join(runs, readdirSync(runs)[0]!);
    const json = JSON.parse(readFileSync(path.join(dir, "results.json"), "utf8")) as RunResult; // vmrig wrote it
    expect(json.complete).toBe(false);
    // The row that was running and the row that never started, each cell NOT RUN as the terminal showed it.
    expect(json.rows.map((row) => row.label)).toEqual(["k", "later"]);
    const kinds = json.rows.flatMap((row) => row.cells.map((c) => c.outcome.kind));
    expect(kinds).toEqual(["not-run", "not-run", "not-run", "not-run"]);
    expect(r.stdout).toMatch(/run INCOMPLETE \(4 not run\)/);
    expect(readFileSync(path.join(dir, "results.md"), "utf8")).toMatch(
      /INCOMPLETE\*\* \(interrupted; 4 cells not run\)/,
    );
    const junit = readFileSync(path.join(dir, "junit.xml"), "utf8");
    expect(junit.match(/<skipped\/>/g)?.length).toBe(4);
    expect(readFileSync(path.join(dir, "report.html"), "utf8")).toMatch(/INCOMPLETE<\/span> \(4 cells not run\)/);
    expect(vmrigTempDirs().filter((d) => !tmpBefore.includes(d))).toEqual([]);
  }, 600_000);
});
