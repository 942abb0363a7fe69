import { describe, expect, it } from "vitest";
import { parseScenario } from "../../harness/scenario/load.ts";
import {
  findInInfoPci,
  HOST_ROOT_SETUP,
  levelTwoArgv,
  levelTwoScript,
  nestedDeviceArg,
} from "../../harness/vfio/nested.ts";
import { vfioGuestModules } from "../../harness/vfio/host-run.ts";

// `info pci` from QEMU 10.0.2 in level 2 (captured), and the same device after the firmware ran.
const infoPci = `  Bus  0, device   0, function 0:
    Host bridge: PCI device 8086:29c0
      PCI subsystem 1af4:1100
      id ""
  Bus  0, device   2, function 0:
    Ethernet controller: PCI device 1af4:1041
      PCI subsystem 1af4:1100
      IRQ 0, pin A
      BAR1: 32 bit memory (not mapped)
      BAR4: 64 bit prefetchable memory (not mapped)
      id ""
`;

describe("the nested (hardware-free) VFIO path, pure parts", () => {
  const s = parseScenario(
    `name: t
kernels: { k: { debian: { version: "6.12", flavour: cloud-amd64 } } }
memory: { virtioMem: { size: 1G, blockSize: 2M } }
vfio: { nested: { device: virtio-net-pci, memory: 128M } }
workloads: [{ id: l2, nestedQemu: {} }]
`,
    "/s/t.yaml",
  );

  it("builds level 2's QEMU line from the scenario's memory and the bound devices", () => {
    expect(levelTwoArgv(s, [{ host: "0000:00:06.0" }]).args.join(" ")).toBe(
      "-nodefaults -machine q35,accel=tcg -cpu max -m 128M,maxmem=1152M -smp 1 " +
        "-display none -no-reboot -monitor stdio " +
        "-object memory-backend-ram,id=vm0-mem,size=1G,reserve=off " +
        "-device virtio-mem-pci,id=vm0,memdev=vm0-mem,block-size=2M,requested-size=0 " +
        "-device vfio-pci,host=0000:00:06.0,id=hostdev0",
    );
  });

  it("puts the emulated device behind the vIOMMU at 00:06.0", () => {
    expect(nestedDeviceArg("virtio-net-pci")).toBe(
      "virtio-net-pci,addr=0x06,romfile=,iommu_platform=on,disable-legacy=on",
    );
    expect(nestedDeviceArg("e1000e")).toBe("e1000e,addr=0x06,romfile=");
  });

  it("waits for level 2's monitor before timing the firmware, and mounts the host root read-only", () => {
    const script = levelTwoScript("qemu-system-x86_64 -monitor stdio", 3);
    expect(script).toContain("chroot /vmrig-host qemu-system-x86_64 -monitor stdio <$d/in >$d/out 2>$d/err");
    expect(script).toContain("grep -q '(qemu)' $d/out");
    expect(script).toContain("[ $i -lt 30 ]");
    // A QEMU that refused to start has closed the FIFO: no monitor writes then (SIGPIPE would lose its message).
    expect(script).toContain("trap '' PIPE");
    expect(script).toContain("[ -e $d/rc ] || { echo 'info pci' >&3;");
    expect(HOST_ROOT_SETUP).toContain("mount -t virtiofs -o ro vmrig-hostroot /vmrig-host");
  });

  it("finds the passed-through device in info pci", () => {
    expect(findInInfoPci(infoPci, { vendor: "0x1af4", device: "0x1041" })).toMatchObject({
      present: true,
      barsMapped: 0,
      ids: "1af4:1041",
    });
    const mapped = infoPci.replace(
      "BAR1: 32 bit memory (not mapped)",
      "BAR1: 32 bit memory at 0xfebd1000 [0xfebd1fff].",
    );
    expect(findInInfoPci(mapped, { vendor: "0x1af4", device: "0x1041" }).barsMapped).toBe(1);
    expect(findInInfoPci(infoPci, { vendor: "0x8086", device: "0x10d3" }).present).toBe(false);
    // By the id vmrig gives every vfio-pci device: how an mdev (no config in sysfs) is found.
    const named = mapped.replace(/id ""\n$/, 'id "hostdev0"\n');
    expect(findInInfoPci(named, { qemuId: "hostdev0" })).toMatchObject({
      present: true,
      barsMapped: 1,
      ids: "1af4:1041",
    });
    expect(findInInfoPci(infoPci, { qemuId: "hostdev0" }).present).toBe(false);
  });

  it("asks the image for the modules the scenario needs", () => {
    expect(vfioGuestModules(s)).toEqual(["virtio_mem", "vfio_pci", "vfio_iommu_type1"]);
    expect(vfioGuestModules({})).toEqual([]);
  });
});
