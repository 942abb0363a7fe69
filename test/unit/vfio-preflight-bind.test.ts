import { afterEach, describe, expect, it } from "vitest";
import { bindVfioHost, BindError, restoreOrphanedChanges } from "../../harness/vfio/bind.ts";
import { journalFile, type HostJournal } from "../../harness/vfio/journal.ts";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  daxOf,
  defaultRouteInterfaces,
  hostCriticalDevices,
  findMount,
  formatPreflight,
  parseLockedLimit,
  vfioPreflight,
  type PreflightInput,
} from "../../harness/vfio/preflight.ts";
import { pendingCleanups, runCleanups } from "../../harness/util/cleanup.ts";
import type { VfioSpec } from "../../harness/types.ts";
import { fakeVfioHost, type FakeHost, type FakeHostSpec } from "../helpers/fake-sysfs.ts";

const M = 1024 ** 2,
  G = 1024 ** 3;
const hosts: FakeHost[] = [];
afterEach(() => hosts.splice(0).forEach((h) => h.cleanup()));
const host = (spec: FakeHostSpec, opts?: { uid?: number }) => {
  const h = fakeVfioHost(spec, opts);
  hosts.push(h);
  return h;
};

/** A workstation: an NVMe disk alone in group 12, a GPU + its audio function in group 7, a NIC in 9. */
const workstation: FakeHostSpec = {
  devices: [
    { bdf: "0000:00:1c.0", driver: "pcieport", group: 7, class: "0x060400" },
    { bdf: "0000:01:00.0", driver: "nouveau", group: 7, vendor: "0x10de", device: "0x1eb8", class: "0x030000" },
    { bdf: "0000:01:00.1", driver: "snd_hda_intel", group: 7, vendor: "0x10de", device: "0x10f8", class: "0x040300" },
    { bdf: "0000:02:00.0", driver: "nvme", group: 12, vendor: "0x144d", device: "0xa808", class: "0x010802" },
    { bdf: "0000:03:00.0", group: 9, vendor: "0x8086", device: "0x10d3" },
  ],
  drivers: ["e1000e"],
};

const input = (vfio: VfioSpec, extra: Partial<PreflightInput> = {}): PreflightInput => ({
  vfio,
  memoryBytes: 1 * G,
  accel: "kvm",
  arch: "x86_64",
  memory: { virtioMem: [{ id: "vm0", sizeBytes: 64 * G, blockBytes: 2 * M, requestedBytes: 0 }] },
  ...extra,
});

describe("VFIO preflight on a fake sysfs tree", () => {
  it("reports IOMMU, group members and their drivers, limits, and the budget", async () => {
    const h = host(workstation, { uid: 0 });
    const p = await vfioPreflight(
      h.fs,
      input({
        devices: [
          { kind: "pci", host: "0000:01:00.0" },
          { kind: "pci", host: "0000:01:00.1" },
        ],
      }),
    );
    expect(p.problems).toEqual([]);
    expect(p.iommu).toEqual({ groups: 3, units: ["dmar0"] });
    expect(p.devices[0]).toMatchObject({
      label: "0000:01:00.0",
      exists: true,
      vendor: "0x10de",
      deviceId: "0x1eb8",
      driver: "nouveau",
      iommuGroup: 7,
    });
    expect(p.devices[0]!.members).toEqual([
      { bdf: "0000:00:1c.0", driver: "pcieport", named: false, bridge: true, action: "leave (bridge)" },
      { bdf: "0000:01:00.0", driver: "nouveau", named: true, bridge: false, action: "bind to vfio-pci" },
      { bdf: "0000:01:00.1", driver: "snd_hda_intel", named: true, bridge: false, action: "bind to vfio-pci" },
    ]);
    expect(p.dmaEntryLimit).toEqual({ current: 65535, used: 65535, moduleLoaded: true });
    // 64 GiB of 2 MiB blocks under KVM: exactly the reference example's "passes".
    expect(p.budget).toMatchObject({ verdict: "fits", predicted: 65531, headroom: 4 });
    expect(p.lockedMemory).toEqual({ limitBytes: 8 * M, pinnedBytes: 1 * G, enough: "root" });
    expect(p.needsChanges).toBe(true);
    const text = formatPreflight(p).join("\n");
    expect(text).toContain("0000:01:00.0 [10de:1eb8]: driver nouveau, IOMMU group 7");
    expect(text).toContain("group member 0000:01:00.1: driver snd_hda_intel -> bind to vfio-pci");
    expect(text).toContain(
      "DMA mappings: fits: N 32768 + memslots 32764 - sections 1 = 65531 <= limit 65535 (4 to spare)",
    );
  });

  it("refuses a group that holds a device the scenario does not name", async () => {
    const h = host(workstation);
    const p = await vfioPreflight(h.fs, input({ devices: [{ kind: "pci", host: "0000:01:00.0" }] }));
    expect(p.problems).toEqual([
      "IOMMU group 7 of 0000:01:00.0 also holds 0000:01:00.1 (snd_hda_intel, in use): " +
        "VFIO needs the whole group; name it in vfio.devices too, or unbind it yourself " +
        "(vmrig never touches a device the scenario does not name)",
    ]);
  });

  it("refuses a missing device, no IOMMU, not root, too little locked memory, and says why", async () => {
    const missing = await vfioPreflight(
      host(workstation).fs,
      input({ devices: [{ kind: "pci", host: "0000:05:00.0" }] }),
    );
    expect(missing.problems).toEqual([
      expect.stringMatching(
        /^PCI device 0000:05:00.0 does not exist on fake host \(no \/sys\/bus\/pci\/devices\/0000:05:00.0; 5 devices present/,
      ),
    ]);

    const noIommu = await vfioPreflight(
      host({ ...workstation, iommu: false }).fs,
      input({ devices: [{ kind: "pci", host: "0000:02:00.0" }] }),
    );
    expect(noIommu.problems[0]).toMatch(
      /^no IOMMU on fake host: \/sys\/kernel\/iommu_groups is empty and no IOMMU unit is registered; enable it/,
    );
    expect(noIommu.problems[1]).toMatch(/0000:02:00.0 has no IOMMU group/);

    const user = await vfioPreflight(
      host(workstation, { uid: 1000 }).fs,
      input({ devices: [{ kind: "pci", host: "0000:02:00.0" }], dmaEntryLimit: 1000 }),
    );
    expect(user.problems).toEqual([
      "locked-memory limit is 8M but VFIO pins the guest's 1G: " +
        "raise it (ulimit -l 1048576, or memlock in /etc/security/limits.conf) or run as root",
      "binding devices to vfio-pci, setting dma_entry_limit to 1000 needs root on fake host (uid 1000): " +
        "run vmrig as root, or do it yourself and drop it from the scenario",
    ]);

    const enough = await vfioPreflight(
      host({ ...workstation, lockedBytes: "unlimited" }, { uid: 1000 }).fs,
      input({ devices: [] }),
    );
    expect(enough.problems).toEqual([]);
    expect(enough.lockedMemory.enough).toBe(true);
  });

  it("refuses fs-DAX guest memory with VFIO, notes dax=inode", async () => {
    const mountinfo = [
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
      "40 22 259:1 / /mnt/pmem rw,relatime shared:20 - xfs /dev/pmem0 rw,attr2,dax=always,inode64",
      "41 22 259:2 / /mnt/pmem1 rw,relatime shared:21 - ext4 /dev/pmem1 rw,dax=inode",
    ].join("\n");
    const h = host({ ...workstation, mountinfo });
    const dax = await vfioPreflight(
      h.fs,
      input(
        { devices: [{ kind: "pci", host: "0000:02:00.0" }] },
        { memory: { backend: { kind: "file", path: "/mnt/pmem/vm.ram" }, virtioMem: [] } },
      ),
    );
    expect(dax.memoryBackend).toEqual({
      path: "/mnt/pmem/vm.ram",
      dax: "yes",
      mount: "/mnt/pmem",
      options: "rw,relatime,rw,attr2,dax=always,inode64",
    });
    expect(dax.problems).toEqual([
      expect.stringContaining(
        "is on a filesystem-DAX mount (/mnt/pmem, rw,relatime,rw,attr2,dax=always,inode64): " +
          "VFIO cannot pin fs-DAX pages long term (vfio_iommu_type1 returns EOPNOTSUPP)",
      ),
    ]);
    const inode = await vfioPreflight(
      h.fs,
      input({ devices: [] }, { memory: { backend: { kind: "file", path: "/mnt/pmem1/vm.ram" }, virtioMem: [] } }),
    );
    expect(inode.problems).toEqual([]);
    expect(inode.notes).toEqual([expect.stringContaining("dax=inode")]);
    const plain = await vfioPreflight(
      h.fs,
      input({ devices: [] }, { memory: { backend: { kind: "file", path: "/mnt/pmem2/vm.ram" }, virtioMem: [] } }),
    );
    expect(plain.memoryBackend?.dax).toBe("no");
  });

  it("predicts exceeds with a lowered limit and unknown when the module is not loaded", async () => {
    const p = await vfioPreflight(
      host(workstation).fs,
      input({ devices: [{ kind: "pci", host: "0000:02:00.0" }], dmaEntryLimit: 60000 }),
    );
    expect(p.budget).toMatchObject({ verdict: "exceeds", exceedsBy: 5531 });
    expect(p.notes[0]).toMatch(/^DMA mappings: exceeds by 5531/);
    const unloaded = await vfioPreflight(
      host({ ...workstation, dmaEntryLimit: null }).fs,
      input({ devices: [{ kind: "pci", host: "0000:02:00.0" }] }),
    );
    expect(unloaded.budget.verdict).toBe("unknown");
    expect(unloaded.budget.summary).toMatch(/not loaded yet; its default would be 65535/);
    const wantsLimit = await vfioPreflight(
      host({ ...workstation, dmaEntryLimit: null }).fs,
      input({ devices: [], dmaEntryLimit: 5 }),
    );
    expect(wantsLimit.problems).toEqual([
      expect.stringMatching(/dma_entry_limit is missing on fake host: load vfio_iommu_type1/),
    ]);
  });

  it("checks mdev parents, types and instances", async () => {
    const h = host({ devices: [], mdev: [{ parent: "mtty", types: { "mtty-1": 2, "mtty-2": 0 } }] });
    const ok = await vfioPreflight(h.fs, input({ devices: [{ kind: "mdev", type: "mtty-1", parent: "mtty" }] }));
    expect(ok.problems).toEqual([]);
    expect(ok.devices[0]).toMatchObject({
      label: "mdev mtty-1 on mtty",
      exists: true,
      availableInstances: 2,
      parentTypes: ["mtty-1", "mtty-2"],
    });
    expect(formatPreflight(ok)).toContain("  mdev mtty-1 on mtty: 2 instances available; mtty offers mtty-1, mtty-2");
    const bad = await vfioPreflight(
      h.fs,
      input({
        devices: [
          { kind: "mdev", type: "mtty-2", parent: "mtty" },
          { kind: "mdev", type: "mtty-9", parent: "mtty" },
          { kind: "mdev", type: "x", parent: "i915" },
        ],
      }),
    );
    expect(bad.problems).toEqual([
      "mdev type mtty-2 on mtty has no instances left to create",
      "mdev type mtty-9 is not offered by mtty on fake host (types: mtty-1, mtty-2)",
      "mdev parent i915 does not exist on fake host (parents: mtty)",
    ]);
  });

  it("has pure helpers for limits and mounts", () => {
    expect(parseLockedLimit("Max locked memory         unlimited            unlimited            bytes")).toBe(
      "unlimited",
    );
    expect(parseLockedLimit(undefined)).toBeUndefined();
    expect(
      findMount("1 0 0:1 / / rw - ext4 a rw\n2 1 0:2 / /mnt/a\\040b rw - xfs b rw,dax", "/mnt/a b/f")?.mountPoint,
    ).toBe("/mnt/a b");
    expect(findMount("1 0 0:1 / / rw - ext4 a rw\n2 1 0:2 / /mnt/ab rw - xfs b rw,dax", "/mnt/a/f")?.mountPoint).toBe(
      "/",
    );
    expect(daxOf("rw,dax")).toBe("yes");
    expect(daxOf("rw,nodax")).toBe("no");
  });
});

describe("binding on a fake sysfs tree (the test plays the kernel's part)", () => {
  const gpu: VfioSpec = {
    devices: [
      { kind: "pci", host: "0000:01:00.0" },
      { kind: "pci", host: "0000:01:00.1" },
    ],
    dmaEntryLimit: 1000,
  };

  it("binds the named group members to vfio-pci, leaves the bridge, and restores everything", async () => {
    const h = host(workstation);
    const p = await vfioPreflight(h.fs, input(gpu));
    const b = await bindVfioHost(h.fs, p);
    expect(h.driverOf("0000:01:00.0")).toBe("vfio-pci");
    expect(h.driverOf("0000:01:00.1")).toBe("vfio-pci");
    expect(h.driverOf("0000:00:1c.0")).toBe("pcieport");
    expect(h.read("/sys/module/vfio_iommu_type1/parameters/dma_entry_limit")).toBe("1000");
    expect(b.qemuDevices).toEqual([{ host: "0000:01:00.0" }, { host: "0000:01:00.1" }]);
    expect(b.changes).toEqual([
      { what: "vfio_iommu_type1 dma_entry_limit", before: "65535", after: "1000" },
      { what: "driver of 0000:01:00.0", before: "nouveau", after: "vfio-pci" },
      { what: "driver of 0000:01:00.1 (group 7 of 0000:01:00.0)", before: "snd_hda_intel", after: "vfio-pci" },
    ]);
    expect(pendingCleanups()).toEqual(["restore VFIO host fake host"]);

    const r = await b.restore();
    expect(r.failed).toEqual([]);
    expect(h.driverOf("0000:01:00.0")).toBe("nouveau");
    expect(h.driverOf("0000:01:00.1")).toBe("snd_hda_intel");
    expect(h.overrideOf("0000:01:00.0")).toBe("(null)");
    expect(h.overrideOf("0000:01:00.1")).toBe("(null)");
    expect(h.read("/sys/module/vfio_iommu_type1/parameters/dma_entry_limit").trim()).toBe("65535");
    expect(pendingCleanups()).toEqual([]);
    // Never a write about a device the scenario did not name.
    expect(h.writes.filter((w) => /0000:00:1c\.0|0000:02:00\.0|0000:03:00\.0/.test(w.path + w.text))).toEqual([]);
    // Twice is harmless.
    expect(await b.restore()).toBe(r);
  });

  it("leaves a device that had no driver unbound again, and keeps an existing override", async () => {
    const h = host(workstation);
    const p = await vfioPreflight(h.fs, input({ devices: [{ kind: "pci", host: "0000:03:00.0" }] }));
    const b = await bindVfioHost(h.fs, p);
    expect(h.driverOf("0000:03:00.0")).toBe("vfio-pci");
    await b.restore();
    expect(h.driverOf("0000:03:00.0")).toBeUndefined();
    expect(h.overrideOf("0000:03:00.0")).toBe("(null)");
  });

  it("undoes what it did when a step fails half way", async () => {
    const h = host(workstation);
    const p = await vfioPreflight(h.fs, input(gpu));
    h.failNext(/drivers_probe/, { error: "ENODEV" });
    h.failNext(/drivers_probe/, { error: "ENODEV" });
    const err = await bindVfioHost(h.fs, p, { settleMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BindError);
    expect((err as BindError).message).toMatch(/binding on fake host failed: .*ENODEV; restored 2 change\(s\)/);
    expect(h.driverOf("0000:01:00.0")).toBe("nouveau");
    expect(h.overrideOf("0000:01:00.0")).toBe("(null)");
    expect(h.driverOf("0000:01:00.1")).toBe("snd_hda_intel");
    expect(h.read("/sys/module/vfio_iommu_type1/parameters/dma_entry_limit").trim()).toBe("65535");
    expect(pendingCleanups()).toEqual([]);
  });

  it("gives up on a sysfs write that never returns, and restores", async () => {
    const h = host(workstation);
    const p = await vfioPreflight(h.fs, input(gpu));
    h.failNext(/0000:01:00\.1\/driver\/unbind/, "hang");
    const err = (await bindVfioHost(h.fs, p, { timeoutMs: 200 }).catch((e: unknown) => e)) as BindError;
    expect(err.message).toMatch(/write \/sys\/bus\/pci\/devices\/0000:01:00.1\/driver\/unbind: no answer in 0.2 s/);
    expect(h.driverOf("0000:01:00.0")).toBe("nouveau");
    // The hung unbind never happened, so the audio function is still with its driver.
    expect(h.driverOf("0000:01:00.1")).toBe("snd_hda_intel");
    expect(h.overrideOf("0000:01:00.1")).toBe("(null)");
  });

  it("restores from the cleanup registry (the Ctrl-C and crash path)", async () => {
    const h = host(workstation);
    await bindVfioHost(h.fs, await vfioPreflight(h.fs, input(gpu)));
    expect(h.driverOf("0000:01:00.0")).toBe("vfio-pci");
    await runCleanups();
    expect(h.driverOf("0000:01:00.0")).toBe("nouveau");
    expect(h.driverOf("0000:01:00.1")).toBe("snd_hda_intel");
    expect(h.read("/sys/module/vfio_iommu_type1/parameters/dma_entry_limit").trim()).toBe("65535");
  });

  it("reports what it could not restore", async () => {
    const h = host(workstation);
    const b = await bindVfioHost(
      h.fs,
      await vfioPreflight(h.fs, input({ devices: [{ kind: "pci", host: "0000:02:00.0" }] })),
    );
    h.failNext(/drivers\/nvme\/bind/, { error: "EIO: probe failed" });
    const r = await b.restore();
    expect(r.failed).toEqual(["0000:02:00.0 back to nvme: EIO: probe failed"]);
  });

  it("refuses to bind when preflight found problems, and changes nothing", async () => {
    const h = host(workstation);
    const p = await vfioPreflight(h.fs, input({ devices: [{ kind: "pci", host: "0000:01:00.0" }] }));
    await expect(bindVfioHost(h.fs, p)).rejects.toThrow(/preflight refused the run/);
    expect(h.writes).toEqual([]);
  });

  it("creates and removes mediated devices", async () => {
    const h = host({ devices: [], mdev: [{ parent: "mtty", types: { "mtty-2": 2 } }] });
    const p = await vfioPreflight(h.fs, input({ devices: [{ kind: "mdev", type: "mtty-2", parent: "mtty" }] }));
    const b = await bindVfioHost(h.fs, p, { uuid: () => "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001" });
    expect(b.qemuDevices).toEqual([{ sysfsdev: "/sys/bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001" }]);
    expect(await h.fs.exists("/sys/bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001")).toBe(true);
    await b.restore();
    expect(await h.fs.exists("/sys/bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001")).toBe(false);
  });
});

describe("prepareVfioRun: a real-host run's preflight, binding, restore and record", async () => {
  const { prepareVfioRun } = await import("../../harness/vfio/host-run.ts");
  const { parseScenario } = await import("../../harness/scenario/load.ts");
  const { mkdtempSync, mkdirSync, writeFileSync, readFileSync } = await import("node:fs");
  const os = await import("node:os");
  const path = await import("node:path");
  const tcg = { name: "tcg" as const, timeScale: 4, note: "" };
  const scenario = (vfio: string) =>
    parseScenario(
      `name: t
machine: { memory: 128M }
kernels: { k: { debian: { version: "6.12", flavour: cloud-amd64 } } }
memory: { virtioMem: { size: 1G, blockSize: 2M } }
vfio: ${vfio}
workloads: [{ id: w, shell: { command: "true" } }]
`,
      "/s/t.yaml",
    );

  it("binds, gives the boot its devices, restores, and checks QEMU's stderr against the prediction", async () => {
    const h = host(workstation);
    const lines: string[] = [];
    const run = (await prepareVfioRun(scenario(`{ devices: [{ host: "0000:02:00.0" }], dmaEntryLimit: 1000 }`), tcg, {
      log: (l) => lines.push(l),
      fs: h.fs,
    }))!;
    expect(lines[0]).toBe("VFIO preflight on fake host:");
    expect(lines).toContain("  DMA mappings: exceeds by 23: N 512 + memslots 512 - sections 1 = 1023 > limit 1000");
    expect(run.qemuExtras).toEqual({
      virtioMem: [{ id: "vm0", sizeBytes: 1 * G, blockBytes: 2 * M, requestedBytes: 0 }],
      vfio: [{ host: "0000:02:00.0" }],
    });
    expect(h.driverOf("0000:02:00.0")).toBe("vfio-pci");
    const runDir = mkdtempSync(path.join(os.tmpdir(), "vmrig-vfio-run-"));
    mkdirSync(path.join(runDir, "k"));
    const captured = readFileSync(
      path.join(import.meta.dirname, "..", "fixtures", "vfio", "qemu-10.0.2-l2-stderr.txt"),
      "utf8",
    );
    // QEMU's stderr has its own log; the console holds only what the guest printed.
    writeFileSync(path.join(runDir, "k", "console.log"), `[    0.000000] Linux version 6.12\n`);
    writeFileSync(path.join(runDir, "k", "qemu-stderr.log"), captured);
    const artifacts = { console: "k/console.log", qemuStderr: "k/qemu-stderr.log" };
    const result = { rows: [{ label: "k", artifacts }] } as never;
    const record = await run.finish(result, runDir);
    expect(h.driverOf("0000:02:00.0")).toBe("nvme");
    expect(record).toMatchObject({
      changes: [
        { what: "vfio_iommu_type1 dma_entry_limit", before: "65535", after: "1000" },
        { what: "driver of 0000:02:00.0", before: "nvme", after: "vfio-pci" },
      ],
      restore: { failed: [] },
      qemu: {
        k: {
          check: { agrees: true, mismatches: [] },
          warnings: [expect.objectContaining({ maxMappings: 1000, maxMemslots: 512 })],
        },
      },
    });
    expect(await run.finish(result, runDir)).toBe(record);
  });

  it("refuses with a HostError (exit 2) and changes nothing", async () => {
    const h = host(workstation, { uid: 1000 });
    const err = (await prepareVfioRun(scenario(`[{ host: "0000:01:00.0" }]`), tcg, { log: () => {}, fs: h.fs }).catch(
      (e: unknown) => e,
    )) as Error & { exitCode: number };
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(
      /^VFIO preflight refused the run; nothing was bound or changed:\n {2}- IOMMU group 7 of 0000:01:00.0 also holds 0000:01:00.1/,
    );
    expect(err.message).toMatch(/needs root on fake host \(uid 1000\)/);
    expect(h.writes).toEqual([]);
  });

  it("only shapes memory when there is no vfio section", async () => {
    const s = parseScenario(
      `name: t
kernels: { k: { debian: { version: "6.12", flavour: cloud-amd64 } } }
memory: { backend: memfd }
workloads: [{ id: w, shell: { command: "true" } }]
`,
      "/s/t.yaml",
    );
    expect((await prepareVfioRun(s, tcg, { log: () => {} }))?.qemuExtras).toEqual({ memoryBackend: { kind: "memfd" } });
  });
});

describe("host changes journaled on disk, restored after vmrig died", () => {
  const gpu: VfioSpec = {
    devices: [
      { kind: "pci", host: "0000:01:00.0" },
      { kind: "pci", host: "0000:01:00.1" },
    ],
    dmaEntryLimit: 1000,
  };

  it("journals each change before making it, and removes the journal once restored", async () => {
    const h = host(workstation);
    const dir = mkdtempSync(path.join(os.tmpdir(), "vmrig-journal-"));
    const journal = journalFile(dir);
    const b = await bindVfioHost(h.fs, await vfioPreflight(h.fs, input(gpu)), { journal });
    const written = JSON.parse(readFileSync(journal, "utf8")) as HostJournal;
    expect(written.pid).toBe(process.pid);
    expect(written.undo.map((u) => u.step)).toEqual([
      { kind: "dma-entry-limit", value: "65535" },
      { kind: "restore-binding", bdf: "0000:01:00.0", original: { driver: "nouveau", override: "" } },
      { kind: "restore-binding", bdf: "0000:01:00.1", original: { driver: "snd_hda_intel", override: "" } },
    ]);
    await b.restore();
    expect(existsSync(journal)).toBe(false);
    rmSync(dir, { recursive: true });
  });

  it("vmrig vfio restore undoes what a killed vmrig left, and leaves a live vmrig's journal alone", async () => {
    const h = host(workstation);
    const dir = mkdtempSync(path.join(os.tmpdir(), "vmrig-journal-"));
    const b = await bindVfioHost(h.fs, await vfioPreflight(h.fs, input(gpu)), { journal: journalFile(dir) });
    // As if this vmrig had been SIGKILLed: its journal under a pid that is gone, its bindings in place.
    const dead = spawnSync("true").pid;
    const j = JSON.parse(readFileSync(journalFile(dir), "utf8")) as HostJournal;
    rmSync(journalFile(dir));
    writeFileSync(journalFile(dir, dead), JSON.stringify({ ...j, pid: dead }));
    expect(h.driverOf("0000:01:00.0")).toBe("vfio-pci");

    const lines: string[] = [];
    const r = await restoreOrphanedChanges(h.fs, dir, (l) => lines.push(l));
    expect(r).toMatchObject({ journals: 1, failed: [] });
    expect(r.restored).toEqual([
      "0000:01:00.1 back to snd_hda_intel",
      "0000:01:00.0 back to nouveau",
      "dma_entry_limit back to 65535",
    ]);
    expect(lines[0]).toMatch(new RegExp(`vmrig process ${dead} \\(started .*\\) left 3 change\\(s\\)$`));
    expect(h.driverOf("0000:01:00.0")).toBe("nouveau");
    expect(h.driverOf("0000:01:00.1")).toBe("snd_hda_intel");
    expect(h.read("/sys/module/vfio_iommu_type1/parameters/dma_entry_limit").trim()).toBe("65535");
    expect(readdirSync(dir)).toEqual([]);

    // A journal whose vmrig still runs is its own to restore.
    writeFileSync(journalFile(dir), JSON.stringify(j));
    expect(await restoreOrphanedChanges(h.fs, dir, () => undefined)).toMatchObject({ journals: 0 });
    await b.restore();
    expect(readdirSync(dir)).toEqual([]);
    rmSync(dir, { recursive: true });
  });
});

describe("devices the host depends on", () => {
  const captured = (name: string) =>
    readFileSync(path.resolve("test/fixtures/vfio/host-critical", name), "utf8").trim();
  // This project's VM: virtio-net (default route) at 00:03.0, virtio-blk (root fs) at 00:02.0.
  const vm: FakeHostSpec = {
    devices: [
      { bdf: "0000:00:02.0", driver: "virtio-pci", group: 2, class: "0x010000" },
      { bdf: "0000:00:03.0", driver: "virtio-pci", group: 3, class: "0x020000" },
      { bdf: "0000:00:04.0", driver: "virtio-pci", group: 4, class: "0x020000" },
    ],
    mountinfo: captured("mountinfo") + "\n",
    files: { "/proc/net/route": captured("proc-net-route") + "\n" },
    links: {
      "/sys/class/net/eth0": captured("class-net-eth0.link"),
      "/sys/dev/block/254:0": captured("dev-block-254-0.link"),
    },
  };

  it("reads the default route's NIC and the root filesystem's disk from the captured host", async () => {
    const h = host(vm);
    expect(await hostCriticalDevices(h.fs)).toEqual(
      new Map([
        ["0000:00:03.0", "the default route (eth0)"],
        ["0000:00:02.0", "the root filesystem (block 254:0)"],
      ]),
    );
  });

  it("refuses to take them from the host unless forced, and does not mind another device", async () => {
    const h = host(vm);
    const refused = await vfioPreflight(h.fs, input({ devices: [{ kind: "pci", host: "0000:00:03.0" }] }));
    expect(refused.problems.join("\n")).toContain(
      "PCI device 0000:00:03.0 carries the default route (eth0) on fake host: binding it to vfio-pci would take " +
        'that from the host; if you mean it, write { host: "0000:00:03.0", force: true }',
    );
    const disk = await vfioPreflight(h.fs, input({ devices: [{ kind: "pci", host: "0000:00:02.0" }] }));
    expect(disk.problems.join("\n")).toContain("carries the root filesystem (block 254:0)");
    const forced = await vfioPreflight(h.fs, input({ devices: [{ kind: "pci", host: "0000:00:03.0", force: true }] }));
    expect(forced.problems.join("\n")).not.toContain("carries");
    const other = await vfioPreflight(h.fs, input({ devices: [{ kind: "pci", host: "0000:00:04.0" }] }));
    expect(other.problems.join("\n")).not.toContain("carries");
  });

  it.each([
    ["no default route", "Iface\tDestination\tGateway\tFlags\neth0\t000200C0\t00000000\t0001\n", []],
    ["a default route that is down", "Iface\tDestination\tGateway\tFlags\neth0\t00000000\t010200C0\t0002\n", []],
    [
      "two default routes",
      "Iface\tDestination\tGateway\tFlags\neth0\t00000000\t1\t0003\nwg0\t00000000\t2\t0001\n",
      ["eth0", "wg0"],
    ],
  ])("default routes in /proc/net/route: %s", (_, route, ifaces) => {
    expect(defaultRouteInterfaces(route)).toEqual(ifaces);
  });
});
