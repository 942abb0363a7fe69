import { describe, expect, it } from "vitest";
import { Fnv1a64 } from "../../harness/workloads/fnv.ts";
import { isListening } from "../../harness/virtiofs/daemon.ts";
import { hasFeatureBit } from "../../harness/run/guest-facts.ts";
import { missingPackages, parseOsRelease } from "../../harness/commands/setup-packages.ts";
import { parseProbeOutput } from "../../harness/workloads/probe.ts";

describe("Fnv1a64", () => {
  it("matches the reference FNV-1a 64 vectors", () => {
    expect(new Fnv1a64().hex()).toBe("cbf29ce484222325");
    expect(new Fnv1a64().update(Buffer.from("a")).hex()).toBe("af63dc4c8601ec8c");
    expect(new Fnv1a64().update(Buffer.from("foobar")).hex()).toBe("85944171f73967e8");
  });
  it("is the same in one chunk or many", () => {
    const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) & 0xff));
    const whole = new Fnv1a64().update(data).hex();
    const parts = new Fnv1a64().update(data.subarray(0, 123)).update(data.subarray(123)).hex();
    expect(parts).toBe(whole);
  });
});

describe("isListening", () => {
  // captured from /proc/net/unix on the dev host with virtiofsd waiting for QEMU
  const table = `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 1234567 /tmp/vmrig-x/sock/virtiofsd-0.sock
0000000000000000: 00000003 00000000 00000000 0001 03 1234570 /tmp/vmrig-x/sock/other.sock
`;
  it("sees a listening socket and ignores connected ones", () => {
    expect(isListening(table, "/tmp/vmrig-x/sock/virtiofsd-0.sock")).toBe(true);
    expect(isListening(table, "/tmp/vmrig-x/sock/other.sock")).toBe(false);
    expect(isListening(table, "/nope")).toBe(false);
  });
});

describe("hasFeatureBit", () => {
  it("reads bit 33 (ACCESS_PLATFORM) from a virtio features string", () => {
    const withAp = "0".repeat(32) + "11" + "0".repeat(30);
    expect(hasFeatureBit(withAp, 33)).toBe(true);
    expect(hasFeatureBit("0".repeat(32) + "10" + "0".repeat(30), 33)).toBe(false);
  });
});

describe("host setup helpers", () => {
  it("parses /etc/os-release", () => {
    const r = parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n');
    expect(r).toEqual({ id: "debian", codename: "bookworm", idLike: [] });
  });
  it("finds missing packages from dpkg-query output", () => {
    const out = "cpio installed\nqemu-system-x86 not-installed\nbusybox-static installed\n";
    expect(missingPackages(["cpio", "qemu-system-x86", "busybox-static", "zstd"], out)).toEqual([
      "qemu-system-x86",
      "zstd",
    ]);
  });
});

describe("parseProbeOutput", () => {
  it("takes the probe's JSON line", () => {
    const r = parseProbeOutput({
      kind: "exited",
      code: 1,
      stdout: '{"op":"getdents","ok":false,"errno":"ENOMEM","errnoNum":12,"entries":0}\n',
      stderr: "",
      ms: 5,
    });
    expect(r.kind).toBe("report");
    if (r.kind === "report") expect(r.report.errno).toBe("ENOMEM");
  });
  it("says when there is none", () => {
    expect(parseProbeOutput({ kind: "exited", code: 127, stdout: "", stderr: "not found", ms: 1 }).kind).toBe(
      "no-report",
    );
  });
});
