import { describe, expect, it } from "vitest";
import { buildQemuArgv, memoryOption, qemuSize, vfioArgs, virtioMemArgs } from "../../harness/qemu/argv.ts";

const M = 1024 ** 2,
  G = 1024 ** 3;
const plan = {
  arch: "x86_64" as const,
  accel: "tcg" as const,
  memoryBytes: 1 * G,
  cpus: 2,
  kernelImage: "/k/vmlinuz",
  initrd: "/i/initrd.gz",
  cmdline: ["console=ttyS0"],
  virtioFs: [],
  sshHostPort: 0,
  qmpSocket: "/s/qmp.sock",
  consoleLog: "/a/console.log",
};
const pairs = (args: string[]) => args.flatMap((a, i) => (a.startsWith("-") ? [`${a} ${args[i + 1] ?? ""}`] : []));

describe("QEMU argv for VFIO and virtio-mem", () => {
  it("adds virtio-mem devices with maxmem room, each on its own reserve=off backend", () => {
    const { args } = buildQemuArgv({
      ...plan,
      virtioMem: [
        { id: "vm0", sizeBytes: 1 * G, blockBytes: 2 * M, requestedBytes: 0 },
        { id: "vm1", sizeBytes: 512 * M, blockBytes: 1 * M, requestedBytes: 256 * M },
      ],
    });
    const p = pairs(args);
    expect(p).toContain("-m 1024M,maxmem=2560M");
    expect(p).toContain("-object memory-backend-ram,id=vm0-mem,size=1G,reserve=off");
    expect(p).toContain("-device virtio-mem-pci,id=vm0,memdev=vm0-mem,block-size=2M,requested-size=0");
    expect(p).toContain("-device virtio-mem-pci,id=vm1,memdev=vm1-mem,block-size=1M,requested-size=256M");
    expect(args.join(" ")).not.toContain("-numa");
  });

  it("shares virtio-mem memory when guest RAM is shared (virtio-fs, memfd or file backends)", () => {
    const { args } = buildQemuArgv({
      ...plan,
      virtioFs: [{ tag: "s", socketPath: "/s/v.sock", queueSize: 128, iommuPlatform: false }],
      virtioMem: [{ id: "vm0", sizeBytes: 1 * G, blockBytes: 2 * M, requestedBytes: 0 }],
    });
    const p = pairs(args);
    expect(p).toContain("-object memory-backend-memfd,id=mem,size=1024M,share=on");
    expect(p).toContain("-object memory-backend-memfd,id=vm0-mem,size=1G,reserve=off,share=on");
  });

  it("backs RAM with a file when asked", () => {
    const p = pairs(buildQemuArgv({ ...plan, memoryBackend: { kind: "file", path: "/dev/hugepages/vm" } }).args);
    expect(p).toContain("-object memory-backend-file,id=mem,mem-path=/dev/hugepages/vm,size=1024M,share=on");
    expect(p).toContain("-numa node,memdev=mem");
    expect(pairs(buildQemuArgv({ ...plan, memoryBackend: { kind: "memfd" } }).args)).toContain(
      "-object memory-backend-memfd,id=mem,size=1024M,share=on",
    );
  });

  it("passes PCI and mediated devices with vfio-pci", () => {
    const p = pairs(
      buildQemuArgv({
        ...plan,
        vfio: [{ host: "0000:01:00.0" }, { sysfsdev: "/sys/bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001" }],
      }).args,
    );
    expect(p).toContain("-device vfio-pci,host=0000:01:00.0,id=hostdev0");
    expect(p).toContain(
      "-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001,id=hostdev1",
    );
  });

  it("puts an emulated intel-iommu before every other device, with the split irqchip", () => {
    const { args } = buildQemuArgv({
      ...plan,
      viommu: "intel",
      extraDevices: ["virtio-net-pci,addr=0x6,iommu_platform=on"],
    });
    const p = pairs(args);
    expect(p).toContain("-machine q35,accel=tcg,kernel-irqchip=split");
    const devices = p.filter((x) => x.startsWith("-device "));
    expect(devices[0]).toBe("-device intel-iommu,intremap=on,caching-mode=on");
    expect(p).toContain("-device virtio-net-pci,addr=0x6,iommu_platform=on");
  });

  it("leaves the plain line as it was", () => {
    const { args } = buildQemuArgv(plan);
    expect(args.join(" ")).not.toMatch(/maxmem|vfio|virtio-mem|intel-iommu|kernel-irqchip|memory-backend/);
    expect(pairs(args)).toContain("-m 1024M");
  });

  it("has small pure helpers", () => {
    expect(qemuSize(2 * M)).toBe("2M");
    expect(qemuSize(3 * G)).toBe("3G");
    expect(qemuSize(1536 * M)).toBe("1536M");
    expect(qemuSize(4097)).toBe("4097");
    expect(memoryOption(128 * M)).toBe("128M");
    expect(memoryOption(128 * M, [{ id: "a", sizeBytes: 1 * G, blockBytes: 2 * M, requestedBytes: 0 }])).toBe(
      "128M,maxmem=1152M",
    );
    expect(virtioMemArgs([], false)).toEqual([]);
    expect(vfioArgs([{ host: "0000:00:06.0" }])).toEqual(["-device", "vfio-pci,host=0000:00:06.0,id=hostdev0"]);
  });
});
