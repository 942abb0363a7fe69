import { describe, expect, it } from "vitest";
import { ARCHES, archNamed, archRecord, hostArchOf } from "../../harness/arch.ts";
import { debianArch } from "../../harness/debian/archive.ts";
import { buildQemuArgv, baseCmdline } from "../../harness/qemu/argv.ts";
import { planToolchain } from "../../harness/kernels/from-source/toolchain.ts";
import { debianFlavourFor } from "../../harness/scenario/platform.ts";
import { capabilities, capabilityTitle } from "../../harness/host/requirements.ts";

describe("arch records", () => {
  it("name every architecture the way each tool spells it", () => {
    expect(ARCHES).toEqual(["x86_64", "aarch64"]);
    expect(archNamed("arm64")).toBe("aarch64");
    expect(archNamed("amd64")).toBe("x86_64");
    expect(archNamed("aarch64")).toBe("aarch64");
    expect(archNamed("x64")).toBeUndefined();
    expect(archNamed("riscv64")).toBeUndefined();
    expect(hostArchOf("x64")).toBe("x86_64");
    expect(hostArchOf("arm64")).toBe("aarch64");
    expect(hostArchOf("ppc64")).toBeUndefined();
    expect(ARCHES.map(debianArch)).toEqual(["amd64", "arm64"]);
    expect(["x64", "arm64", "amd64"].map(debianArch)).toEqual(["amd64", "arm64", "amd64"]);
  });

  it("are consistent with themselves", () => {
    for (const arch of ARCHES) {
      const r = archRecord(arch);
      expect(r.arch).toBe(arch);
      expect(r.qemu.binary).toBe(`qemu-system-${arch}`);
      expect(r.gnuTriplet).toBe(`${arch}-linux-gnu`);
      expect(r.kernel.imagePath.endsWith(`/${r.kernel.target}`)).toBe(true);
      expect(r.pageSizes).toContain("4K");
      for (const size of Object.keys(r.debianFlavours)) expect(r.pageSizes).toContain(size);
    }
  });

  it("drive QEMU's argv, the kernel build and Debian's flavours", () => {
    const plan = {
      accel: "kvm" as const,
      memoryBytes: 512 << 20,
      cpus: 1,
      kernelImage: "k",
      initrd: "i",
      cmdline: [],
      virtioFs: [],
      sshHostPort: 0,
      qmpSocket: "q",
      consoleLog: "c",
    };
    const arm = buildQemuArgv({ ...plan, arch: "aarch64" });
    expect(arm.binary).toBe("qemu-system-aarch64");
    expect(arm.args.slice(1, 5)).toEqual(["-machine", "virt,accel=kvm,gic-version=host", "-cpu", "host"]);
    expect(baseCmdline("x86_64", "kvm")).toEqual(["console=ttyS0", "panic=-1"]);
    // Only a software CPU gets tsc=nowatchdog: its TSC cannot skew, and checking it can hang a 7.x boot.
    // And init_on_alloc=1: TCG runs stale translations of pages virtiofsd refilled unless the guest writes them.
    expect(baseCmdline("x86_64", "tcg")).toEqual(["console=ttyS0", "panic=-1", "tsc=nowatchdog", "init_on_alloc=1"]);
    expect(baseCmdline("aarch64", "tcg")).toEqual(["console=ttyAMA0", "panic=-1", "init_on_alloc=1"]);
    expect(baseCmdline("aarch64", "kvm")).toEqual(["console=ttyAMA0", "panic=-1"]);
    // machine.tcgPageZeroing: false asks what the kernel's own config does: init_on_alloc=1 goes, tsc=nowatchdog stays.
    const ownConfig = buildQemuArgv({
      ...plan,
      arch: "x86_64",
      accel: "tcg",
      cmdline: baseCmdline("x86_64", "tcg", false),
    });
    const append = ownConfig.args[ownConfig.args.indexOf("-append") + 1];
    expect(append).toBe("console=ttyS0 panic=-1 tsc=nowatchdog");
    expect(baseCmdline("aarch64", "tcg", false)).toEqual(["console=ttyAMA0", "panic=-1"]);
    expect(baseCmdline("x86_64", "kvm", false)).toEqual(baseCmdline("x86_64", "kvm"));
    expect(planToolchain("aarch64", "x64").makeVars[0]).toBe("ARCH=arm64");
    expect(planToolchain("x86_64", "x64").imagePath).toBe("arch/x86/boot/bzImage");
    expect(debianFlavourFor("x86_64", undefined)).toBe("cloud-amd64");
    expect(debianFlavourFor("x86_64", "16K")).toBeUndefined();
    expect(debianFlavourFor("aarch64", "16K")).toBe("arm64-16k");
    expect(debianFlavourFor("aarch64", "64K")).toBeUndefined();
    expect(capabilities.map((c) => capabilityTitle[c])).toEqual([
      "run x86_64 guests",
      "run arm64 guests",
      "build x86_64 kernels",
      "build arm64 kernels",
      "run vmrig's test suite",
    ]);
  });
});
