// The one row runner's hooks: what a scenario feature (nested VFIO) adds to a row's guests, how
// several features' additions combine, and that a row without features boots as it always did.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseScenario } from "../../harness/scenario/load.ts";
import { composeRowHooks, mergeQemuExtras, type RowHooks } from "../../harness/run/row-hooks.ts";
import { featureGuestModules, featureRowHooks } from "../../harness/run/features.ts";
import { guestAdditions } from "../../harness/run/runner.ts";
import { prepareVfioRun } from "../../harness/vfio/host-run.ts";
import { HOST_ROOT_TAG } from "../../harness/vfio/nested.ts";
import type { QemuCommand } from "../../harness/qemu/argv.ts";
import type { Accelerator } from "../../harness/qemu/accel.ts";

const nested = parseScenario(
  `name: t
machine: { arch: x86_64, cmdline: [quiet] }
kernels:
  k: { debian: { version: "6.12", flavour: cloud-amd64 }, cmdline: [loglevel=7] }
memory: { virtioMem: { size: 1G, blockSize: 2M } }
vfio: { nested: { device: virtio-net-pci, memory: 128M } }
workloads: [{ id: l2, nestedQemu: {} }, { id: uname, shell: { command: "uname -r" } }]
`,
  "/s/t.yaml",
);
const plain = parseScenario(
  `name: p
machine: { arch: x86_64, cmdline: [quiet] }
kernels: { k: { debian: { version: "6.12" }, cmdline: [loglevel=7] } }
memory: { backend: memfd }
workloads: [{ id: uname, shell: { command: "uname -r" } }]
`,
  "/s/p.yaml",
);

// Debian's QEMU 11.1 as provideQemu describes it: a row's `qemu:`.
const debianQemu: QemuCommand = {
  version: "11.1.3 (Debian 1:11.1.3+ds-1)",
  argv0: "/c/q/lib64/ld-linux-x86-64.so.2",
  prefixArgs: ["--library-path", "/c/q/lib", "/c/q/usr/bin/qemu-system-x86_64", "-L", "/c/q/usr/share/qemu"],
  env: { QEMU_MODULE_DIR: "/c/q/usr/lib/x86_64-linux-gnu/qemu" },
  source: "debian sid qemu-system-x86 1:11.1.3+ds-1",
};
const tcg: Accelerator = { name: "tcg", timeScale: 4, note: "" };

describe("a nested VFIO row through the one row runner", () => {
  const k = { entry: nested.kernels[0]!, qemu: debianQemu };
  const hooks = featureRowHooks()(nested, k);

  it("boots level 1 on the host's QEMU with the vIOMMU, the emulated device and intel_iommu=on", () => {
    expect(guestAdditions(nested, k, hooks)).toEqual({
      cmdline: ["quiet", "intel_iommu=on", "loglevel=7"],
      qemuExtras: {
        viommu: "intel",
        extraDevices: ["virtio-net-pci,addr=0x06,romfile=,iommu_platform=on,disable-legacy=on"],
      },
    });
    expect(hooks.bootOnHostQemu).toBe(true);
    expect(hooks.shares).toEqual([
      { spec: expect.objectContaining({ tag: HOST_ROOT_TAG, extraArgs: ["--readonly"] }), hostDir: "/" },
    ]);
    expect(hooks.evidence).toEqual({ levelOne: { device: "virtio-net-pci", at: "0000:00:06.0", viommu: "intel" } });
  });

  it("runs nestedQemu cells itself and leaves every other workload kind to the generic cell runner", () => {
    expect(Object.keys(hooks.cellRunners ?? {})).toEqual(["nestedQemu"]);
    expect(typeof hooks.afterBoot).toBe("function");
    expect(featureGuestModules(nested)).toEqual(["virtio_mem", "vfio_pci", "vfio_iommu_type1"]);
  });
});

describe("a nested VFIO row that passes an mdev", () => {
  it("boots level 1 without a vIOMMU or an emulated device: level 1's own kernel makes the mdev", async () => {
    const { loadScenario } = await import("../../harness/scenario/load.ts");
    const mtty = await loadScenario(path.join(import.meta.dirname, "..", "..", "scenarios", "vfio-mdev-mtty.yaml"));
    const k = { entry: mtty.kernels[0]!, qemu: undefined };
    const hooks = featureRowHooks()(mtty, k);
    expect(guestAdditions(mtty, k, hooks)).toEqual({ cmdline: [] });
    expect(hooks.evidence).toEqual({ levelOne: { mdevs: ["mtty-2 on mtty"] } });
    expect(hooks.shares).toEqual([{ spec: expect.objectContaining({ tag: HOST_ROOT_TAG }), hostDir: "/" }]);
    expect(Object.keys(hooks.cellRunners ?? {})).toEqual(["nestedQemu"]);
  });
});

describe("a row without features", () => {
  it("boots as before: the row's own QEMU, the run's memory backend, the scenario's and kernel's cmdline", async () => {
    const k = { entry: plain.kernels[0]!, qemu: debianQemu };
    const hooks = featureRowHooks()(plain, k);
    expect(hooks).toEqual({});
    const run = await prepareVfioRun(plain, tcg, { log: () => {} });
    expect(guestAdditions(plain, k, hooks, run?.qemuExtras)).toEqual({
      cmdline: ["quiet", "loglevel=7"],
      qemuExtras: { memoryBackend: { kind: "memfd" } },
      qemu: debianQemu,
    });
    expect(guestAdditions(plain, { entry: k.entry }, hooks)).toEqual({ cmdline: ["quiet", "loglevel=7"] });
    expect(featureGuestModules(plain)).toEqual([]);
  });
});

describe("several features' hooks as one", () => {
  const nestedHooks = featureRowHooks()(nested, { entry: nested.kernels[0]! });
  // A second feature as a feature would write it: one more share, a cmdline word, a device.
  const tracing: RowHooks = {
    guestName: "traced",
    evidence: { tracing: "on" },
    shares: [{ spec: { ...nestedHooks.shares![0]!.spec, tag: "trace-out", extraArgs: [] }, hostDir: "/tmp/trace" }],
    cmdline: ["trace_buf_size=1M"],
    qemuExtras: { extraDevices: ["virtio-rng-pci"] },
  };

  it("adds up shares, cmdline words, evidence and devices in the features' order", () => {
    const both = composeRowHooks([nestedHooks, tracing]);
    expect(both.shares!.map((x) => x.spec.tag)).toEqual([HOST_ROOT_TAG, "trace-out"]);
    expect(both.cmdline).toEqual(["intel_iommu=on", "trace_buf_size=1M"]);
    expect(both.evidence).toEqual({ levelOne: expect.any(Object), tracing: "on" });
    expect(both.qemuExtras).toEqual({
      viommu: "intel",
      extraDevices: ["virtio-net-pci,addr=0x06,romfile=,iommu_platform=on,disable-legacy=on", "virtio-rng-pci"],
    });
    expect(both.bootOnHostQemu).toBe(true);
    expect(both.guestName).toBe("level 1 (intel-iommu, host root over virtio-fs); traced");
    expect(Object.keys(both.cellRunners!)).toEqual(["nestedQemu"]);
    expect(composeRowHooks([nestedHooks])).toBe(nestedHooks);
    expect(composeRowHooks([])).toEqual({});
  });

  it("refuses two features that want different things of the same guest", () => {
    const file = { memoryBackend: { kind: "file" as const, path: "/dev/dax0.0" } };
    expect(() => mergeQemuExtras({ memoryBackend: { kind: "memfd" } }, file)).toThrow(
      /memoryBackend: .* asked for the same guest/,
    );
    expect(() => composeRowHooks([nestedHooks, { qemuExtras: { viommu: "intel" } }])).not.toThrow();
    expect(() => composeRowHooks([nestedHooks, { cellRunners: nestedHooks.cellRunners }])).toThrow(
      /two scenario features run nestedQemu/,
    );
    expect(mergeQemuExtras(undefined, undefined)).toBeUndefined();
    expect(mergeQemuExtras({ viommu: "intel" }, { viommu: "intel", extraDevices: ["e1000e"] })).toEqual({
      viommu: "intel",
      extraDevices: ["e1000e"],
    });
  });

  it("runs the after-boot checks in turn: evidence and headings add up, the first problem ends it", async () => {
    const guest = {} as never;
    const t = { bootMs: 1, stepMs: 1, livenessMs: 1 };
    const seen: string[] = [];
    const check = (name: string, problem?: string): RowHooks => ({
      afterBoot: async () => {
        seen.push(name);
        return { evidence: { [name]: true }, descriptionSuffix: `; ${name}`, ...(problem ? { problem } : {}) };
      },
    });
    const ok = await composeRowHooks([check("a"), check("b")]).afterBoot!(guest, t);
    expect(ok).toEqual({ evidence: { a: true, b: true }, descriptionSuffix: "; a; b" });
    seen.length = 0;
    const bad = await composeRowHooks([check("a", "no host root"), check("b")]).afterBoot!(guest, t);
    expect(bad.problem).toBe("no host root");
    expect(seen).toEqual(["a"]);
  });
});
