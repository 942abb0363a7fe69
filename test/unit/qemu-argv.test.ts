import { describe, expect, it } from "vitest";
import { buildQemuArgv, formatCommandLine, qemuOptionValue } from "../../harness/qemu/argv.ts";
import { parseForwardedSshPort } from "../../harness/qemu/qmp.ts";

const plan = {
  arch: "x86_64" as const,
  accel: "tcg" as const,
  memoryBytes: 1 << 30,
  cpus: 2,
  kernelImage: "/k/vmlinuz",
  initrd: "/i/initrd.gz",
  cmdline: ["console=ttyS0", "panic=-1", "swiotlb=force"],
  virtioFs: [{ tag: "share", socketPath: "/s/vfs.sock", queueSize: 128, iommuPlatform: true }],
  sshHostPort: 0,
  qmpSocket: "/s/qmp.sock",
  consoleLog: "/a/console.log",
};

const pairs = (args: string[]) => args.flatMap((a, i) => (a.startsWith("-") ? [`${a} ${args[i + 1] ?? ""}`] : []));

describe("buildQemuArgv", () => {
  it("builds the x86 TCG line with virtio-fs on shared memfd memory and pvpanic", () => {
    const { binary, args } = buildQemuArgv(plan);
    expect(binary).toBe("qemu-system-x86_64");
    const p = pairs(args);
    expect(p).toContain("-machine q35,accel=tcg");
    expect(p).toContain("-cpu max");
    expect(p).toContain("-m 1024M");
    expect(p).toContain("-object memory-backend-memfd,id=mem,size=1024M,share=on");
    expect(p).toContain("-numa node,memdev=mem");
    expect(p).toContain("-chardev socket,id=vfs0,path=/s/vfs.sock");
    expect(p).toContain("-device vhost-user-fs-pci,chardev=vfs0,tag=share,queue-size=128,iommu_platform=on");
    expect(p).toContain("-device pvpanic-pci");
    expect(p).toContain("-action panic=exit-failure");
    expect(p).toContain("-append console=ttyS0 panic=-1 swiotlb=force");
    expect(p).toContain("-netdev user,id=n0,hostfwd=tcp:127.0.0.1:0-:22");
    expect(args).toContain("-no-reboot");
  });

  it("uses KVM's host CPU and leaves out shared memory when there is no share", () => {
    const { args } = buildQemuArgv({ ...plan, accel: "kvm", virtioFs: [] });
    const p = pairs(args);
    expect(p).toContain("-machine q35,accel=kvm");
    expect(p).toContain("-cpu host");
    expect(args.join(" ")).not.toContain("memory-backend-memfd");
  });

  it("builds aarch64 virt with ttyAMA0-independent argv and no iommu_platform unless asked", () => {
    const { binary, args } = buildQemuArgv({
      ...plan,
      arch: "aarch64",
      virtioFs: [{ ...plan.virtioFs[0]!, iommuPlatform: false }],
    });
    expect(binary).toBe("qemu-system-aarch64");
    expect(pairs(args)).toContain("-machine virt,accel=tcg");
    expect(args.join(" ")).not.toContain("iommu_platform");
  });

  it("has QEMU log the serial console to console.log itself, on x86 (ttyS0) and arm64 (ttyAMA0) alike", () => {
    for (const arch of ["x86_64", "aarch64"] as const) {
      const { args } = buildQemuArgv({ ...plan, arch });
      const p = pairs(args);
      // One chardev, the serial port's: input from stdin, every output byte into the logfile.
      expect(p, arch).toContain("-chardev stdio,id=con0,signal=off,logfile=/a/console.log,logappend=off");
      expect(p, arch).toContain("-serial chardev:con0");
      expect(
        args.filter((a) => a === "-serial"),
        arch,
      ).toHaveLength(1);
    }
  });

  it("doubles commas in the console log's path (QEMU's option syntax)", () => {
    expect(qemuOptionValue("/r/a,b/console.log")).toBe("/r/a,,b/console.log");
    const { args } = buildQemuArgv({ ...plan, consoleLog: "/r/x,y/console.log" });
    expect(pairs(args)).toContain("-chardev stdio,id=con0,signal=off,logfile=/r/x,,y/console.log,logappend=off");
  });

  it("quotes the stored command line so it can be pasted into a shell", () => {
    expect(formatCommandLine("qemu", ["-append", "console=ttyS0 panic=-1", "-x", "it's"])).toBe(
      `qemu -append 'console=ttyS0 panic=-1' -x 'it'\\''s'`,
    );
  });
});

describe("parseForwardedSshPort", () => {
  it("reads the host port from QEMU 10's `info usernet` (captured)", () => {
    const captured =
      "Hub -1 (n0):\r\n" +
      "  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n" +
      "  TCP[HOST_FORWARD]   8       127.0.0.1 44231       10.0.2.15    22     0     0\r\n";
    expect(parseForwardedSshPort(captured)).toBe(44231);
    expect(parseForwardedSshPort("Hub -1 (n0):\r\n")).toBeUndefined();
  });
});
