import { describe, expect, it } from "vitest";
import { parseLdd } from "../../harness/image/binaries.ts";
import { initrdCompression } from "../../harness/image/cpio.ts";
import {
  authKeyCmdlineWord,
  GUEST_READY_MARKER,
  GUEST_SETUP_DONE,
  guestInitErrors,
} from "../../harness/image/guest-protocol.ts";
import { parseDropbearPublicKey } from "../../harness/image/host-key.ts";
import { guestInitFiles } from "../../harness/image/init-files.ts";

describe("parseLdd", () => {
  it("lists libraries and the loader, not the vDSO", () => {
    const out = `	linux-vdso.so.1 (0x00007ffd1b5e5000)
	libtomcrypt.so.1 => /lib/x86_64-linux-gnu/libtomcrypt.so.1 (0x00007f0a1ff43000)
	libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f0a1ff06000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0a1fce8000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f0a20066000)
`;
    expect(parseLdd(out)).toEqual([
      "/lib/x86_64-linux-gnu/libtomcrypt.so.1",
      "/lib/x86_64-linux-gnu/libz.so.1",
      "/lib/x86_64-linux-gnu/libc.so.6",
      "/lib64/ld-linux-x86-64.so.2",
    ]);
  });

  it("refuses a missing library", () => {
    expect(() => parseLdd("\tlibgmp.so.10 => not found\n")).toThrow(/missing shared library/);
  });
});

describe("parseDropbearPublicKey", () => {
  it("keeps type and key, drops the build host's comment", () => {
    const out = `Public key portion is:
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHtWnGbNmb+6Fx0Vme82nO6S7wGS3fu5oH4EwLgpt8sQ root@vm
Fingerprint: SHA256:+yfMKVUpB03wkEQXDQugdX1NFx+1F0fmCAJtPv+7C5I
`;
    expect(parseDropbearPublicKey(out)).toBe(
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHtWnGbNmb+6Fx0Vme82nO6S7wGS3fu5oH4EwLgpt8sQ",
    );
  });
});

describe("initrdCompression", () => {
  it("uses zstd only when the kernel config says it can unpack it", () => {
    expect(initrdCompression("CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n")).toBe("zstd");
    expect(initrdCompression("CONFIG_RD_GZIP=y\n# CONFIG_RD_ZSTD is not set\n")).toBe("gzip");
    expect(initrdCompression(undefined)).toBe("gzip");
  });
});

describe("guest protocol", () => {
  it("carries the client key as base64 in one command line word", () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHtWnGbNmb+6Fx0Vme82nO6S7wGS3fu5oH4EwLgpt8sQ vmrig-run";
    const word = authKeyCmdlineWord(`${key}\n`);
    expect(word).toMatch(/^vmrig\.authkey=[A-Za-z0-9+/=]+$/);
    expect(Buffer.from(word.slice("vmrig.authkey=".length), "base64").toString()).toBe(key);
    expect(() => authKeyCmdlineWord("hello world")).toThrow(/not an OpenSSH public key/);
  });

  it("finds init errors in console text", () => {
    const console =
      "[    1.2] virtio_net virtio0 eth0: renamed\r\nvmrig-guest: init error insmod overlay\r\n" +
      `${GUEST_READY_MARKER}\n`;
    expect(guestInitErrors(console)).toEqual(["insmod overlay"]);
  });
});

describe("guestInitFiles", () => {
  it("lists the modules in load order and wires init, sshd and the marker", () => {
    const files = guestInitFiles(["virtio", "virtio_ring", "virtio_net"]);
    expect(files["/etc/vmrig/modules"]?.content).toBe("virtio\nvirtio_ring\nvirtio_net\n");
    expect(files["/etc/inittab"]?.content).toContain("::sysinit:/etc/init.d/rcS");
    expect(files["/etc/inittab"]?.content).toContain("::respawn:/etc/init.d/sshd");
    // The marker comes once the NIC is up (rcS's background job); the modules' job ends with the flag.
    const rcS = files["/etc/init.d/rcS"]?.content ?? "";
    expect(rcS).toContain(`echo "${GUEST_READY_MARKER}" > /dev/console`);
    expect(rcS.indexOf("ip route add default")).toBeLessThan(rcS.indexOf(GUEST_READY_MARKER));
    expect(rcS).toContain(`touch ${GUEST_SETUP_DONE}`);
    expect(files["/etc/init.d/sshd"]?.content).toContain(
      "dropbear -F -E -s -p 22 -r /etc/dropbear/dropbear_ed25519_host_key",
    );
    expect(files["/etc/init.d/rcS"]?.content).toContain("key=${word#vmrig.authkey=}");
    expect(files["/etc/passwd"]?.content).toBe("root:x:0:0:root:/root:/bin/sh\n");
  });
});
