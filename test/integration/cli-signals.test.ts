// Ctrl-C during a run: exit 130, every QEMU and virtiofsd gone, partial results kept and marked
// incomplete. Also the CLI's exit code 2 for bad input, with nothing written to results/.
import { describe, expect, it } from "vitest";
import { execa } from "execa";
import { mkdirSync, readFileSync, readdirSync, existsSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { vmrigProcesses } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

const root = path.resolve(import.meta.dirname, "..", "..");
// Removed afterwards; a failed test's guest consoles are kept (the path is printed).
const tmp = testScratch("vmrig-test-cli-");
const cli = (args: string[], opts = {}) =>
  execa(path.join(root, "node_modules/.bin/tsx"), [path.join(root, "harness/cli.ts"), ...args], { reject: false, cwd: tmp, env: { VMRIG_RESULTS: path.join(tmp, "results") }, ...opts });

describe("vmrig CLI", () => {
  it("exits 2 with file:line:col for a bad scenario and writes no results", async () => {
    const f = path.join(tmp, "bad.yaml");
    writeFileSync(f, "name: bad\nkernels:\n  a: { debian: { version: '6.12', flavour: cloud-amd64 } }\nworkloads:\n  - { id: r, read: { share: nope, size: 1Q } }\n");
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
    expect(label.stderr).toMatch(/--kernel: unknown kernel label\(s\) nope; the scenario has debian-6\.18\.15, debian-7\.3/);
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
    expect(bad.stderr).toMatch(/unknown kernel command "frobnicate" \(build, list, gc\)/);
  }, 120_000);

  it("exits 2 naming the nearest versions when a pinned Debian kernel is gone", async () => {
    const f = path.join(tmp, "gone.yaml");
    writeFileSync(f, "name: gone\nkernels:\n  old: { debian: { version: '6.18.1', flavour: cloud-amd64 } }\nworkloads:\n  - { id: u, shell: { command: 'true' } }\n");
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
    writeFileSync(f, "name: noqemu\nkernels:\n  k: { debian: { version: '6.12', flavour: cloud-amd64 } }\nworkloads:\n  - { id: u, shell: { command: 'true' } }\n");
    const r = await cli(["run", f], { env: { PATH: bin, VMRIG_RESULTS: path.join(tmp, "results-noqemu") } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/qemu-system-x86_64 not found.*npm run setup/);
    expect(existsSync(path.join(tmp, "results-noqemu"))).toBe(false);
  }, 120_000);

  it("SIGINT stops every guest process, exits 130 and keeps results marked incomplete", async () => {
    const f = path.join(tmp, "interrupt.yaml");
    writeFileSync(
      f,
      "name: interrupt\nkernels:\n  k: { debian: { version: '6.12', flavour: cloud-amd64 } }\nshares: [{ tag: share }]\nworkloads:\n  - { id: long, shell: { command: 'sleep 600' } }\n",
    );
    const child = cli(["run", f], { buffer: true });
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
    expect(vmrigProcesses().length).toBeGreaterThan(0);
    child.kill("SIGINT");
    const r = await child;
    expect(r.exitCode).toBe(130);
    expect(vmrigProcesses()).toEqual([]);
    const runs = path.join(tmp, "results", "interrupt");
    const [stamp] = readdirSync(runs);
    const json = JSON.parse(readFileSync(path.join(runs, stamp!, "results.json"), "utf8"));
    expect(json.complete).toBe(false);
    expect(json.rows[0].cells[0].outcome.kind).toBe("not-run");
  }, 600_000);
});
