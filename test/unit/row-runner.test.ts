// The one row runner's control flow with the guest boot stood in for (no QEMU here): the first
// boot's single retry, a fresh guest after a spoiled one, load-scaled timeouts, and a feature's
// hooks (after-boot check, its own cells, host QEMU) reaching every guest of the row.
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { BootRequest, Guest } from "../../harness/guest/boot.ts";
import { BootFailure, bootGuest } from "../../harness/guest/boot.ts";
import { parseScenario } from "../../harness/scenario/load.ts";
import { runKernelRow } from "../../harness/run/runner.ts";
import { silentProgress } from "../../harness/run/progress.ts";
import type { PreparedKernel, RunEnv } from "../../harness/run/run-env.ts";
import type { RowHooks, RowTimeouts } from "../../harness/run/row-hooks.ts";
import type { QemuCommand } from "../../harness/qemu/argv.ts";
import type { RunResult, WorkloadSpec } from "../../harness/types.ts";

vi.mock("../../harness/guest/boot.ts", async (original) => ({
  ...(await original<typeof import("../../harness/guest/boot.ts")>()),
  bootGuest: vi.fn(),
}));

const boot = vi.mocked(bootGuest);
const scratch = await mkdtemp(path.join(os.tmpdir(), "vmrig-test-row-runner-"));
afterAll(() => rm(scratch, { recursive: true, force: true }));

const s = parseScenario(
  `name: t
machine: { arch: x86_64, memory: 1G, cpus: 2 }
timeouts: { boot: 60, step: 100 }
kernels: { k: { debian: { version: "6.12", flavour: cloud-amd64 } } }
workloads:
  - { id: first, shell: { command: "true" } }
  - { id: second, shell: { command: "true" } }
expect: { default: PASS }
`,
  "/s/t.yaml",
);
const debianQemu = { version: "11.1.3", source: "debian sid qemu-system-x86 1:11.1.3+ds-1" } as QemuCommand;
const k: PreparedKernel = {
  entry: s.kernels[0]!,
  artifact: {
    label: "k",
    arch: "x86_64",
    image: "/k/vmlinuz",
    release: "6.12.0",
    description: "Debian 6.12",
    identity: "k1",
  },
  image: { initrd: "/i", hostKeyPublic: "", modules: [], identity: "i1" },
  qemu: debianQemu,
};
const run: RunResult = {
  scenario: "t",
  scenarioFile: "t.yaml",
  startedAt: "",
  complete: false,
  host: { hostname: "h" },
  workloads: [],
  rows: [],
};

/** A guest that answers every command with exit 0 and shuts down cleanly. */
function upGuest(): Guest {
  const exec = async (cmd: string) => ({
    kind: "exited" as const,
    code: 0,
    stdout: cmd === "uname -r" ? "6.12.0\n" : "",
    stderr: "",
    ms: 1,
  });
  const shutdown = async () => ({ code: 0, signal: null, guestPanicked: false, stderr: "" });
  return { bootMs: 1500, bootPhases: [], exec, deathReason: () => undefined, shutdown } as unknown as Guest;
}

let requests: BootRequest[];
let runDir: string;
beforeEach(async () => {
  requests = [];
  runDir = await mkdtemp(path.join(scratch, "run-"));
  boot.mockReset();
  boot.mockImplementation(async (req) => {
    requests.push(req);
    await mkdir(req.artifactsDir, { recursive: true });
    return upGuest();
  });
});

const env = (hooks: RowHooks, extra: Partial<RunEnv> = {}): RunEnv => ({
  accel: { name: "tcg", timeScale: 1, note: "" },
  virtiofsd: { command: "virtiofsd", args: [] } as unknown as RunEnv["virtiofsd"],
  runDir,
  progress: silentProgress,
  signal: new AbortController().signal,
  onUpdate: async () => undefined,
  rowHooks: () => hooks,
  ...extra,
});

describe("a row with a feature's hooks (as nested VFIO gives them)", () => {
  it("boots a fresh guest after a spoiled one, with the hooks again, and load-scaled timeouts", async () => {
    const afterBoots: number[] = [];
    const seen: Array<{ id: string; stepMs: number }> = [];
    const hooks: RowHooks = {
      bootOnHostQemu: true,
      evidence: { levelOne: { viommu: "intel" } },
      cmdline: ["intel_iommu=on"],
      qemuExtras: { viommu: "intel" },
      afterBoot: async () => {
        afterBoots.push(afterBoots.length + 1);
        return {
          evidence: { levelTwoQemu: `from guest ${afterBoots.length}` },
          descriptionSuffix: "; level 2: QEMU 10.0.2",
        };
      },
      cellRunners: {
        shell: async (w: WorkloadSpec, _g: Guest, t: RowTimeouts) => {
          seen.push({ id: w.id, stepMs: t.stepMs });
          const spoiled = w.id === "first";
          return {
            outcome: { kind: "pass" },
            evidence: { ran: w.id },
            durationMs: 5,
            guestSpoiled: spoiled,
            artifacts: { [`level2-${w.id}.stderr.txt`]: "quiet\n" },
          };
        },
      },
    };
    // Two 2-vCPU guests on one core: everything takes twice as long.
    const row = await runKernelRow(s, k, env(hooks, { load: () => ({ vcpus: 2, cores: 1 }) }), run);

    expect(row.cells.map((c) => [c.workload, c.outcome.kind, c.met])).toEqual([
      ["first", "pass", true],
      ["second", "pass", true],
    ]);
    expect(requests.map((r) => path.relative(runDir, r.artifactsDir))).toEqual(["k", "k/boot-2"]);
    expect(requests[1]!.cmdline).toEqual(["intel_iommu=on"]);
    expect(requests[1]!.qemuExtras).toEqual({ viommu: "intel" });
    // The row's `qemu:` is level 2's: the guests boot on the host's.
    expect(requests.every((r) => r.qemu === undefined)).toBe(true);
    expect(afterBoots).toEqual([1, 2]);
    expect(row.evidence).toMatchObject({ levelOne: { viommu: "intel" }, levelTwoQemu: "from guest 1", timeScale: 2 });
    expect(row.evidence.qemu).toBeUndefined();
    expect(row.description).toBe("Debian 6.12; level 2: QEMU 10.0.2");
    expect(seen).toEqual([
      { id: "first", stepMs: 200_000 },
      { id: "second", stepMs: 200_000 },
    ]);
    expect(requests[0]!.bootTimeoutMs).toBe(120_000);
    expect(row.artifacts).toMatchObject({
      console: "k/console.log",
      "console-boot2": "k/boot-2/console.log",
      "level2-first.stderr": "k/level2-first.stderr.txt",
      "level2-second.stderr-boot2": "k/boot-2/level2-second.stderr.txt",
      dmesg: "k/dmesg.txt",
      "dmesg-boot2": "k/boot-2/dmesg.txt",
    });
    expect(await readFile(path.join(runDir, "k/boot-2/level2-second.stderr.txt"), "utf8")).toBe("quiet\n");
  });

  it("makes every cell INFRA when the feature's after-boot check finds a problem", async () => {
    const hooks: RowHooks = {
      afterBoot: async () => ({ problem: "level 1 cannot run the host's QEMU from /vmrig-host: no such file" }),
    };
    const row = await runKernelRow(s, k, env(hooks), run);
    expect(row.cells.map((c) => c.outcome)).toEqual([
      { kind: "infra", reason: "level 1 cannot run the host's QEMU from /vmrig-host: no such file" },
      { kind: "infra", reason: "level 1 cannot run the host's QEMU from /vmrig-host: no such file" },
    ]);
    expect(requests).toHaveLength(1);
  });
});

describe("the first boot's one retry", () => {
  const passing: RowHooks = {
    cellRunners: {
      shell: async () => ({ outcome: { kind: "pass" }, evidence: {}, durationMs: 1, guestSpoiled: false }),
    },
  };

  it("boots once more after a clean-console failure, as boot 1 again, and says so on the first cell", async () => {
    boot.mockImplementationOnce(async (req) => {
      requests.push(req);
      await mkdir(req.artifactsDir, { recursive: true });
      throw new BootFailure(
        "boot-fail",
        'no SSH answer: the guest never printed "vmrig-guest: ready"',
        "Linux version 6.12.0\n",
      );
    });
    const row = await runKernelRow(s, k, env(passing), run);
    expect(requests.map((r) => path.relative(runDir, r.artifactsDir))).toEqual(["k", "k"]);
    expect(row.cells.map((c) => c.outcome.kind)).toEqual(["pass", "pass"]);
    expect(row.cells[0]!.notes).toEqual([
      'the first boot failed and was retried: no SSH answer: the guest never printed "vmrig-guest: ready"',
    ]);
    expect(row.cells[1]!.notes).toBeUndefined();
    expect(row.evidence.bootRetry).toEqual({
      reason: expect.stringMatching(/^no SSH answer/),
      consoleTail: "Linux version 6.12.0\n",
    });
    expect(row.artifacts["console-failed-boot"]).toBe("k/failed-boot/console.log");
    // An ordinary row boots on its own QEMU and names it in its heading.
    expect(requests[1]!.qemu).toBe(debianQemu);
    expect(row.description).toBe("Debian 6.12; QEMU 11.1.3");
  });

  it("never retries a panicked boot, nor twice: every cell is BOOT-FAIL", async () => {
    boot.mockRejectedValueOnce(
      new BootFailure("boot-fail", "guest kernel panicked (pvpanic)", "Kernel panic - not syncing"),
    );
    const panicked = await runKernelRow(s, k, env(passing), run);
    expect(panicked.cells.map((c) => c.outcome)).toEqual([
      { kind: "boot-fail", reason: "guest kernel panicked (pvpanic)" },
      { kind: "boot-fail", reason: "guest kernel panicked (pvpanic)" },
    ]);
    expect(panicked.evidence.bootRetry).toBeUndefined();

    requests = [];
    const clean = new BootFailure("boot-fail", "no SSH answer", "");
    boot.mockReset();
    boot.mockImplementation(async (req) => {
      requests.push(req);
      await mkdir(req.artifactsDir, { recursive: true });
      throw clean;
    });
    const twice = await runKernelRow(s, { ...k, entry: { ...k.entry, label: "k2" } }, env(passing), run);
    expect(requests).toHaveLength(2);
    expect(twice.cells.map((c) => c.outcome.kind)).toEqual(["boot-fail", "boot-fail"]);
    expect(twice.cells[0]!.notes?.[0]).toBe("the first boot failed and was retried: no SSH answer");
  });
});
