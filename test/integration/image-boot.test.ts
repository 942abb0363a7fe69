// Builds the guest image for a real kernel and boots it under QEMU: the ready marker must reach
// the console, SSH must answer with the pinned host key, and the probe must run in the guest.
//
// VMRIG_TEST_KERNEL=/path/to/vmlinuz (for an unpacked Debian package, boot/vmlinuz-<release>:
// modules and config are then found beside it; else set VMRIG_TEST_MODULES and
// VMRIG_TEST_KERNEL_CONFIG).
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { execa, type ResultPromise } from "execa";
import { Client, utils } from "ssh2";
import { afterAll, describe, expect, it } from "vitest";
import { buildGuestImage } from "../../harness/image/build.ts";
import { authKeyCmdlineWord, GUEST_READY_MARKER, guestInitErrors } from "../../harness/image/guest-protocol.ts";
import type { KernelArtifact } from "../../harness/types.ts";

const kernelImage = process.env.VMRIG_TEST_KERNEL;
const BOOT_DEADLINE_MS = 180_000; // TCG on a busy 2-core host

/** A KernelArtifact for a kernel file, finding modules and config the way a Debian package lays them out. */
function testKernel(image: string): KernelArtifact {
  const release = /vmlinu[xz]-(.+)$/.exec(path.basename(image))?.[1];
  const root = path.resolve(path.dirname(image), "..");
  const beside = (p: string | undefined) => (p && fs.existsSync(p) ? p : undefined);
  return {
    label: "test",
    arch: "x86_64",
    image,
    release,
    modulesDir: process.env.VMRIG_TEST_MODULES ?? beside(release && path.join(root, "lib", "modules", release)),
    config: process.env.VMRIG_TEST_KERNEL_CONFIG ?? beside(release && path.join(path.dirname(image), `config-${release}`)),
    description: `test kernel ${image}`,
    identity: image,
  };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sshExec(
  port: number,
  hostKeyPublic: string,
  privateKey: string,
  command: string,
): Promise<{ code: number | null; stdout: string }> {
  const pinned = Buffer.from(hostKeyPublic.split(" ")[1]!, "base64");
  return new Promise((resolve, reject) => {
    const client = new Client();
    client
      .on("ready", () => {
        client.exec(command, (err, stream) => {
          if (err) return reject(err);
          let stdout = "";
          stream.on("data", (d: Buffer) => (stdout += d.toString()));
          stream.stderr.on("data", () => {});
          stream.on("close", (code: number | null) => {
            client.end();
            resolve({ code, stdout });
          });
        });
      })
      .on("error", reject)
      .connect({
        host: "127.0.0.1",
        port,
        username: "root",
        privateKey,
        readyTimeout: 10_000,
        hostVerifier: (key: Buffer) => key.equals(pinned),
      });
  });
}

let qemu: ResultPromise | undefined;
let work: string | undefined;
afterAll(async () => {
  qemu?.kill("SIGKILL");
  await qemu?.catch(() => undefined);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!kernelImage)("guest image boot (VMRIG_TEST_KERNEL)", () => {
  it("builds once, boots to the ready marker and runs the probe over SSH", async () => {
    const signal = AbortSignal.timeout(600_000);
    const kernel = testKernel(kernelImage!);
    const log = (m: string) => console.log(`image: ${m}`);
    const image = await buildGuestImage({ arch: "x86_64", kernel, signal, log });
    const initrdMtime = fs.statSync(image.initrd).mtimeMs;
    const again = await buildGuestImage({ arch: "x86_64", kernel, signal, log });
    expect(again).toEqual(image);
    expect(fs.statSync(again.initrd).mtimeMs).toBe(initrdMtime);
    expect(image.hostKeyPublic).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+$/);

    work = fs.mkdtempSync(path.join(os.tmpdir(), "vmrig-image-boot-"));
    const consoleLog = path.join(work, "console.log");
    const clientKey = utils.generateKeyPairSync("ed25519", { comment: "vmrig-test" });
    const port = await freePort();
    const started = Date.now();
    qemu = execa(
      "qemu-system-x86_64",
      [
        "-machine", "q35,accel=tcg", "-cpu", "max", "-m", "1G", "-smp", "2",
        "-display", "none", "-no-reboot", "-serial", `file:${consoleLog}`,
        "-kernel", kernel.image, "-initrd", image.initrd,
        "-append", `console=ttyS0 panic=-1 ${authKeyCmdlineWord(clientKey.public)}`,
        "-netdev", `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`,
        "-device", "virtio-net-pci,netdev=n0,romfile=",
        "-device", "pvpanic-pci", "-action", "panic=exit-failure",
      ],
      { cancelSignal: signal, reject: false, stdin: "ignore" },
    );
    let exited = false;
    void qemu.then(() => (exited = true));

    const consoleText = () => (fs.existsSync(consoleLog) ? fs.readFileSync(consoleLog, "utf8") : "");
    while (!consoleText().includes(GUEST_READY_MARKER)) {
      if (exited) throw new Error(`QEMU exited before the ready marker:\n${consoleText().slice(-2000)}`);
      if (Date.now() - started > BOOT_DEADLINE_MS) throw new Error(`no ready marker:\n${consoleText().slice(-2000)}`);
      await sleep(100);
    }
    const markerMs = Date.now() - started;
    expect(guestInitErrors(consoleText())).toEqual([]);

    // The port accepts before sshd listens (user networking): retry until a command returns.
    let probeOut: { code: number | null; stdout: string } | undefined;
    while (!probeOut) {
      try {
        probeOut = await sshExec(port, image.hostKeyPublic, clientKey.private, "vmrig-probe pagesize && vmrig-probe getdents /etc 4096");
      } catch (e) {
        if (Date.now() - started > BOOT_DEADLINE_MS) throw e;
        await sleep(200);
      }
    }
    const sshMs = Date.now() - started;
    console.log(`boot: ready marker after ${markerMs} ms, first SSH command returned after ${sshMs} ms`);
    expect(probeOut.code).toBe(0);
    const [pagesize, getdents] = probeOut.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(pagesize).toEqual({ op: "pagesize", ok: true, pageSize: 4096 });
    expect(getdents).toMatchObject({ op: "getdents", ok: true, bufferSize: 4096 });
    expect(getdents!.entries as number).toBeGreaterThan(5);

    const loaded = await sshExec(port, image.hostKeyPublic, clientKey.private, "cut -d' ' -f1 /proc/modules");
    expect(loaded.stdout.trim().split("\n").filter(Boolean).sort()).toEqual([...image.modules].sort());

    await sshExec(port, image.hostKeyPublic, clientKey.private, "poweroff").catch(() => undefined);
    const result = await qemu;
    expect(result.exitCode).toBe(0); // pvpanic would make it 1
  }, 900_000);
});

describe.skipIf(kernelImage)("guest image boot", () => {
  it.skip("needs VMRIG_TEST_KERNEL=/path/to/vmlinuz (e.g. boot/vmlinuz-<release> of an unpacked Debian linux-image .deb)", () => {});
});
