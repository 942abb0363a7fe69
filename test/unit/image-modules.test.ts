import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { moduleDependsOn, elfInterpreter, readModinfo } from "../../harness/image/elf.ts";
import {
  formatModulesDep,
  GUEST_MODULES,
  moduleLoadOrder,
  moduleName,
  parseModulesDep,
} from "../../harness/image/modules.ts";
import { repoRoot } from "../../harness/util/paths.ts";

const fixtures = path.join(repoRoot, "test", "fixtures", "modules");
const read = (kernel: string, file: string) => fs.readFileSync(path.join(fixtures, kernel, file), "utf8");
const debian61 = {
  dep: read("debian-6.1.0-50-cloud-amd64", "modules.dep"),
  builtin: read("debian-6.1.0-50-cloud-amd64", "modules.builtin"),
};
const debian612 = {
  dep: read("debian-6.12.95+deb12-cloud-amd64", "modules.dep"),
  builtin: read("debian-6.12.95+deb12-cloud-amd64", "modules.builtin"),
};

const names = (plan: { load: Array<{ name: string }> }) => plan.load.map((m) => m.name);

/** Every module comes after all the modules its modules.dep line names. */
function expectDependenciesFirst(modulesDep: string, order: string[]): void {
  const deps = parseModulesDep(modulesDep);
  order.forEach((name, i) => {
    for (const dep of deps.get(name)?.deps ?? []) {
      const at = order.indexOf(moduleName(dep));
      expect(at, `${moduleName(dep)} before ${name}`).toBeGreaterThanOrEqual(0);
      expect(at, `${moduleName(dep)} before ${name}`).toBeLessThan(i);
    }
  });
}

describe("moduleLoadOrder", () => {
  it("orders Debian 6.1's modular virtio stack dependencies first", () => {
    const plan = moduleLoadOrder(debian61.dep, debian61.builtin, GUEST_MODULES);
    expect(names(plan)).toEqual([
      "virtio",
      "virtio_ring",
      "virtio_pci_modern_dev",
      "virtio_pci_legacy_dev",
      "virtio_pci",
      "failover",
      "net_failover",
      "virtio_net",
      "virtio_blk",
      "virtio_console",
      "fuse",
      "virtiofs",
      "overlay",
      "pvpanic",
      "pvpanic_pci",
      "vsock",
      "vmw_vsock_virtio_transport_common",
      "vmw_vsock_virtio_transport",
    ]);
    expectDependenciesFirst(debian61.dep, names(plan));
    expect(plan.builtin).toEqual([]);
    expect(plan.missing).toEqual([]);
    expect(plan.load.find((m) => m.name === "pvpanic_pci")?.path).toBe("kernel/drivers/misc/pvpanic/pvpanic-pci.ko");
  });

  it("skips what Debian 6.12 builds in and keeps the .ko.xz paths", () => {
    const plan = moduleLoadOrder(debian612.dep, debian612.builtin, GUEST_MODULES);
    expect(plan.builtin).toEqual(["virtio_pci", "virtio_console", "fuse", "virtiofs"]);
    expect(names(plan)).toEqual([
      "failover",
      "net_failover",
      "virtio_net",
      "virtio_blk",
      "overlay",
      "pvpanic",
      "pvpanic_pci",
      "vsock",
      "vmw_vsock_virtio_transport_common",
      "vmw_vsock_virtio_transport",
    ]);
    expectDependenciesFirst(debian612.dep, names(plan));
    expect(plan.load.every((m) => m.path.endsWith(".ko.xz"))).toBe(true);
  });

  it("accepts - or _ in wanted names and loads each module once", () => {
    const plan = moduleLoadOrder(debian61.dep, debian61.builtin, [
      "pvpanic-pci",
      "pvpanic_pci",
      "virtio-net",
      "virtio_blk",
    ]);
    expect(names(plan)).toEqual([
      "pvpanic",
      "pvpanic_pci",
      "virtio",
      "virtio_ring",
      "failover",
      "net_failover",
      "virtio_net",
      "virtio_blk",
    ]);
  });

  it("reports modules the kernel does not have", () => {
    const plan = moduleLoadOrder(debian61.dep, debian61.builtin, ["fuse", "no_such_module"]);
    expect(names(plan)).toEqual(["fuse"]);
    expect(plan.missing).toEqual(["no_such_module"]);
  });

  it("has nothing to load without a module tree", () => {
    expect(moduleLoadOrder("", "", GUEST_MODULES)).toEqual({ load: [], builtin: [], missing: [...GUEST_MODULES] });
  });

  it("survives a dependency cycle and a dependency with no line of its own", () => {
    const dep = "a.ko: b.ko\nb.ko: a.ko\nc.ko: sub/leaf.ko.zst\n";
    expect(names(moduleLoadOrder(dep, "", ["a", "c"]))).toEqual(["b", "a", "leaf", "c"]);
    expect(moduleLoadOrder(dep, "", ["c"]).load[0]).toEqual({ name: "leaf", path: "sub/leaf.ko.zst" });
  });

  it("reads modules.dep written by formatModulesDep (the modinfo fallback)", () => {
    const text = formatModulesDep([
      { path: "kernel/fs/fuse/virtiofs.ko.xz", deps: ["kernel/fs/fuse/fuse.ko.xz"] },
      { path: "kernel/fs/fuse/fuse.ko.xz", deps: [] },
    ]);
    expect(text).toBe("kernel/fs/fuse/virtiofs.ko.xz: kernel/fs/fuse/fuse.ko.xz\nkernel/fs/fuse/fuse.ko.xz:\n");
    expect(names(moduleLoadOrder(text, "", ["virtiofs"]))).toEqual(["fuse", "virtiofs"]);
  });
});

describe("moduleName", () => {
  it("normalises paths, compression suffixes and dashes", () => {
    expect(moduleName("kernel/drivers/char/hw_random/virtio-rng.ko.xz")).toBe("virtio_rng");
    expect(moduleName("kernel/fs/overlayfs/overlay.ko.zst")).toBe("overlay");
    expect(moduleName("pvpanic-pci")).toBe("pvpanic_pci");
  });
});

describe("module ELF .modinfo", () => {
  const ko = fs.readFileSync(path.join(fixtures, "debian-6.1.0-50-cloud-amd64", "pvpanic-pci.ko"));

  it("reads depends= from a real Debian module", () => {
    expect(moduleDependsOn(ko)).toEqual(["pvpanic"]);
    const info = new Map(readModinfo(ko));
    expect(info.get("name")).toBe("pvpanic_pci");
    expect(info.get("license")).toBe("GPL");
    expect(info.get("vermagic")).toMatch(/^6\.1\.0-50-cloud-amd64 /);
  });

  it("finds no interpreter in a relocatable object and rejects non-ELF input", () => {
    expect(elfInterpreter(ko)).toBeUndefined();
    expect(() => moduleDependsOn(new TextEncoder().encode("not an elf"))).toThrow(/not an ELF/);
  });
});
