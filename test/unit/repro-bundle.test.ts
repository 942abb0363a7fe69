// The repro bundle's pure plan on inputs captured from a real run of scenarios/default.yaml
// (Debian 6.18.15, getdents-1M, -ENOMEM): its QEMU command line and its cell.
import { describe, expect, it } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import type { CellResult, RunResult, ShareSpec } from "../../harness/types.ts";
import { formatCommandLine, parseCommandLine } from "../../harness/qemu/argv.ts";
import { renderMarkdown } from "../../harness/report/markdown.ts";
import { compressRun } from "../../harness/history/retention.ts";
import {
  bundleQemuArgv,
  expectedResult,
  planReproBundle,
  render,
  qemuPackage,
  shipProgram,
  type ReproInput,
} from "../../harness/run/repro-bundle.ts";

const fixtures = path.join(import.meta.dirname, "../fixtures/repro-bundle");
const cmdline = readFileSync(path.join(fixtures, "qemu-cmdline-6.18.15-getdents.txt"), "utf8");
const cell = JSON.parse(readFileSync(path.join(fixtures, "cell-6.18.15-getdents.json"), "utf8")) as CellResult;

// How that run started its daemons (the command lines as ps showed them).
const cache = "/root/.cache/vmrig/tools";
const virtiofsd = {
  argv0: `${cache}/virtiofsd/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2`,
  prefixArgs: [
    "--library-path",
    `${cache}/virtiofsd/usr/lib/x86_64-linux-gnu`,
    `${cache}/virtiofsd/usr/libexec/virtiofsd`,
  ],
};
const share: ShareSpec = {
  tag: "share",
  cache: "auto",
  queueSize: 128,
  sandbox: "none",
  extraArgs: [],
  accessPlatform: true,
};
const input: ReproInput = {
  scenario: "getdents-swiotlb-debian",
  kernel: cell.kernel,
  workload: cell.workload,
  outcome: cell.outcome,
  evidence: cell.evidence,
  qemuCmdline: cmdline,
  shares: [share],
  virtiofsd,
  relay: { binary: `${cache}/vhost-user-relay-ae95921dcceac87d`, source: "/repo/relay/vhost-user-relay.c" },
  bootSeconds: 240,
  stepSeconds: 480,
};

/** What bash makes of a rendered word, with B and W set. */
async function inBash(word: string): Promise<string> {
  const r = await execa("bash", ["-c", `B=/bundle; W=/work; printf '%s' ${render(word)}`]);
  return r.stdout;
}

describe("parseCommandLine", () => {
  it("reads the real qemu-cmdline.txt back into the words formatCommandLine wrote", () => {
    const words = parseCommandLine(cmdline.trim());
    expect(formatCommandLine(words[0]!, words.slice(1))).toBe(cmdline.trim());
    const append = words[words.indexOf("-append") + 1]!;
    expect(append.split(" ")).toContain("swiotlb=force,track_hiwater");
    expect(words[words.indexOf("-kernel") + 1]).toMatch(/vmlinuz-6\.18\.15\+deb13-cloud-amd64$/);
  });

  it("keeps quotes inside words and empty words", () => {
    const words = ["a", "it's", "x y", "", "k=v,w"];
    expect(parseCommandLine(formatCommandLine("bin", words))).toEqual(["bin", ...words]);
  });

  it("refuses a line with an unterminated quote", () => {
    expect(() => parseCommandLine("qemu -append 'console=ttyS0")).toThrow(/not a command line vmrig wrote/);
  });
});

describe("render", () => {
  it("writes the bundle and work placeholders as variables and quotes the rest", async () => {
    const plan = bundleQemuArgv(parseCommandLine(cmdline.trim()));
    const chardev = plan.argv[plan.argv.indexOf("-chardev") + 1]!;
    expect(await inBash(chardev)).toBe("pipe,id=con0,path=/work/console");
    expect(await inBash(shipProgram(virtiofsd, "virtiofsd").argv[2]!)).toBe("/bundle/virtiofsd/lib/x86_64-linux-gnu");
    expect(await inBash("it's $HOME; `x`")).toBe("it's $HOME; `x`");
    expect(await inBash("")).toBe("");
  });
});

describe("bundleQemuArgv", () => {
  const plan = bundleQemuArgv(parseCommandLine(cmdline.trim()));
  const after = (opt: string) => plan.argv[plan.argv.indexOf(opt) + 1];

  it("ships the kernel and the initrd and boots them from the bundle", () => {
    const kernel = parseCommandLine(cmdline.trim()).find((w) => w.includes("vmlinuz"))!;
    expect(plan.files).toContainEqual({ from: kernel, to: "boot/vmlinuz-6.18.15+deb13-cloud-amd64" });
    expect(plan.files.map((f) => f.to)).toContain("boot/initrd.cpio.zst");
    expect(after("-kernel")).toBe("\0B/boot/vmlinuz-6.18.15+deb13-cloud-amd64");
  });

  it("keeps machine, memory, command line and devices; drops QMP and the SSH forward", () => {
    expect(after("-machine")).toBe("q35,accel=tcg");
    expect(after("-m")).toBe("1024M");
    expect(after("-append")).toContain("swiotlb=force swiotlb=force,track_hiwater");
    expect(plan.argv).toContain("vhost-user-fs-pci,chardev=vfs0,tag=share,queue-size=128,iommu_platform=on");
    expect(plan.argv).not.toContain("-qmp");
    expect(after("-netdev")).toBe("user,id=n0");
    expect(plan.sockets).toEqual(["relay-0.sock"]);
  });

  it("refuses a private QEMU build and host paths it does not ship", () => {
    expect(() => bundleQemuArgv(["env", "QEMU_MODULE_DIR=/x", "/cache/ld.so", "-m", "1G"])).toThrow(/not the host's/);
    const file = ["qemu-system-x86_64", "-object", "memory-backend-file,id=mem,mem-path=/dev/hugepages,size=1G"];
    expect(() => bundleQemuArgv(file)).toThrow(/names a host path: memory-backend-file/);
  });
});

describe("qemuPackage", () => {
  it("names the Debian package of each guest architecture's QEMU", () => {
    expect(qemuPackage("qemu-system-x86_64")).toBe("qemu-system-x86");
    expect(qemuPackage("qemu-system-aarch64")).toBe("qemu-system-arm");
  });
});

describe("shipProgram", () => {
  it("ships a plain binary as bin/<name>", () => {
    expect(shipProgram({ argv0: "/usr/libexec/virtiofsd", prefixArgs: [] }, "virtiofsd")).toEqual({
      argv: ["\0B/bin/virtiofsd"],
      files: [{ from: "/usr/libexec/virtiofsd", to: "bin/virtiofsd" }],
    });
  });

  it("ships a program run through its own loader as one directory", () => {
    const p = shipProgram(virtiofsd, "virtiofsd");
    expect(p.files).toEqual([{ from: `${cache}/virtiofsd/usr`, to: "virtiofsd", tree: true }]);
    expect(p.argv).toEqual([
      "\0B/virtiofsd/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
      "--library-path",
      "\0B/virtiofsd/lib/x86_64-linux-gnu",
      "\0B/virtiofsd/libexec/virtiofsd",
    ]);
  });
});

describe("expectedResult", () => {
  it("says what the script compares: the errno, HANG, CRASH or the exit status", () => {
    expect(expectedResult(cell.outcome, cell.evidence)).toBe("ENOMEM");
    expect(expectedResult({ kind: "hang", what: "w", wedged: false }, {})).toBe("HANG");
    expect(expectedResult({ kind: "crash", title: "BUG: x", excerpt: "" }, {})).toBe("CRASH");
    expect(expectedResult({ kind: "fail", detail: "d" }, { exec: { kind: "exited", code: 3 } })).toBe("exit 3");
  });

  it("gives none for cells a repro would not say anything about", () => {
    expect(expectedResult({ kind: "pass" }, {})).toBeUndefined();
    expect(expectedResult({ kind: "infra", reason: "r" }, {})).toBeUndefined();
    expect(expectedResult({ kind: "fail", detail: "d" }, { exec: { kind: "timeout" } })).toBeUndefined();
  });
});

describe("planReproBundle", () => {
  const plan = planReproBundle(input);

  it("writes a script bash accepts, comparing with the cell's errno", async () => {
    expect(plan.expected).toBe("ENOMEM");
    expect(plan.script).toMatch(/^EXPECTED=ENOMEM$/m);
    expect(plan.script).toMatch(/^# Needs \(Debian\): bash coreutils grep sed qemu-system-x86\.$/m);
    expect((await execa("bash", ["-n"], { input: plan.script, reject: false })).exitCode).toBe(0);
  });

  it("names no path of the machine that made it: only the bundle's, the scratch directory's and the guest's", () => {
    expect(plan.script).not.toContain("/root/");
    expect(plan.script).not.toContain("/tmp/vmrig-");
    expect(plan.script).not.toContain("/repo/");
    expect(plan.script).not.toContain("results/");
  });

  it("starts virtiofsd, then the relay in front of it, then QEMU on the relay's socket", () => {
    const at = (s: string) => plan.script.indexOf(s);
    expect(at('"$B"/virtiofsd/libexec/virtiofsd --socket-path "$W"/virtiofsd-0.sock')).toBeGreaterThan(0);
    expect(at('"$relay" --listen "$W"/relay-0.sock --connect "$W"/virtiofsd-0.sock')).toBeGreaterThan(
      at("virtiofsd-0.sock"),
    );
    expect(at('-chardev socket,id=vfs0,path="$W"/relay-0.sock')).toBeGreaterThan(at('"$relay" --listen'));
    expect(plan.files.map((f) => f.to)).toEqual(
      expect.arrayContaining(["bin/vhost-user-relay", "src/vhost-user-relay.c", "virtiofsd"]),
    );
  });

  it("types the share's mount and the cell's own command on the console", () => {
    expect(plan.script).toContain("mount -t virtiofs share /mnt/share");
    expect(plan.script).toContain(`"@@cmd""-begin"; ${String(cell.evidence.command)}; echo "@@cmd""-end $?"`);
    expect(plan.shares).toEqual(["share"]);
  });

  it("refuses a PASS cell, a cell without its command and sockets no share starts", () => {
    expect(() => planReproBundle({ ...input, outcome: { kind: "pass" } })).toThrow(/pass cell gets no repro/);
    expect(() => planReproBundle({ ...input, evidence: {} })).toThrow(/no guest command/);
    expect(() => planReproBundle({ ...input, shares: [] })).toThrow(/sockets no share starts: relay-0.sock/);
  });
});

describe("results.md", () => {
  const run = (artifacts: Record<string, string>): RunResult => ({
    scenario: "getdents-swiotlb-debian",
    scenarioFile: "scenarios/default.yaml",
    startedAt: "2026-12-02T18:18:23.000Z",
    complete: true,
    host: { hostname: "h" },
    workloads: [cell.workload],
    rows: [{ label: cell.kernel, description: "d", artifacts, cells: [cell], evidence: {} }],
  });

  it("links each bundle's script under its row and workload", () => {
    const md = renderMarkdown(run({ "repro-getdents-1M": "debian-6.18.15/repro-getdents-1M/repro.sh" }));
    expect(md).toContain("## Repro bundles");
    const file = "debian-6.18.15/repro-getdents-1M/repro.sh";
    expect(md).toContain(`- debian-6.18.15 / getdents-1M: [\`${file}\`](${file})`);
  });

  it("has no such section when no cell has a bundle", () => {
    expect(renderMarkdown(run({ console: "debian-6.18.15/console.log" }))).not.toContain("Repro bundles");
  });
});

describe("retention", () => {
  it("gzips a compressed run's logs but leaves its repro bundles runnable", async () => {
    const run = mkdtempSync(path.join(os.tmpdir(), "vmrig-test-repro-retention-"));
    try {
      mkdirSync(path.join(run, "debian-6.18.15/repro-getdents-1M/boot"), { recursive: true });
      const big = "x".repeat(10_000);
      writeFileSync(path.join(run, "debian-6.18.15/console.log"), big);
      writeFileSync(path.join(run, "debian-6.18.15/repro-getdents-1M/repro.sh"), big);
      writeFileSync(path.join(run, "debian-6.18.15/repro-getdents-1M/boot/initrd.cpio.zst"), big);
      expect((await compressRun(run)).files).toBe(1);
      expect(existsSync(path.join(run, "debian-6.18.15/console.log.gz"))).toBe(true);
      expect(readFileSync(path.join(run, "debian-6.18.15/repro-getdents-1M/repro.sh"), "utf8")).toBe(big);
      expect(existsSync(path.join(run, "debian-6.18.15/repro-getdents-1M/boot/initrd.cpio.zst"))).toBe(true);
    } finally {
      rmSync(run, { recursive: true, force: true });
    }
  });
});
