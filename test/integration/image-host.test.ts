// Host-side checks of the guest image's parts that need no VM: the probe, compiled and run on
// the host, and the init scripts' shell syntax. Needs gcc, busybox-static and dropbear-bin.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { guestInitFiles } from "../../harness/image/init-files.ts";
import { buildProbe } from "../../harness/image/probe.ts";

const hostArch = process.arch === "x64" ? "x86_64" : "aarch64";
let work: string;
let probe: string;
const savedCache = process.env.VMRIG_CACHE;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "vmrig-image-host-"));
  process.env.VMRIG_CACHE = path.join(work, "cache");
  probe = (await buildProbe(hostArch, AbortSignal.timeout(120_000))).path;
}, 120_000);

afterAll(() => {
  if (savedCache === undefined) delete process.env.VMRIG_CACHE;
  else process.env.VMRIG_CACHE = savedCache;
  fs.rmSync(work, { recursive: true, force: true });
});

async function runProbe(...args: string[]): Promise<{ code: number; report: Record<string, unknown> }> {
  const r = await execa(probe, args, { reject: false, cancelSignal: AbortSignal.timeout(30_000) });
  const lines = r.stdout.trim().split("\n");
  expect(lines).toHaveLength(1);
  return { code: r.exitCode ?? -1, report: JSON.parse(lines[0]!) as Record<string, unknown> };
}

/** Reference implementations of the probe's pattern and hash, straight from their definitions. */
function xorshiftPattern(seed: bigint, size: number): Buffer {
  const mask = (1n << 64n) - 1n;
  let x = seed === 0n ? 0x9e3779b97f4a7c15n : seed;
  const out = Buffer.alloc(Math.ceil(size / 8) * 8);
  for (let i = 0; i < out.length; i += 8) {
    x ^= (x << 13n) & mask;
    x ^= x >> 7n;
    x ^= (x << 17n) & mask;
    out.writeBigUInt64LE(x, i);
  }
  return out.subarray(0, size);
}

function fnv1a64(data: Uint8Array): string {
  let h = 0xcbf29ce484222325n;
  for (const b of data) h = ((h ^ BigInt(b)) * 0x100000001b3n) & ((1n << 64n) - 1n);
  return h.toString(16).padStart(16, "0");
}

describe("vmrig-probe on the host", () => {
  it("reports the page size", async () => {
    const { code, report } = await runProbe("pagesize");
    expect(code).toBe(0);
    expect(report).toEqual({
      op: "pagesize",
      ok: true,
      pageSize: Number((await execa("getconf", ["PAGESIZE"])).stdout),
    });
  });

  it("counts directory entries with any buffer size", async () => {
    const dir = path.join(work, "dir");
    fs.mkdirSync(dir);
    for (let i = 0; i < 1500; i++) fs.writeFileSync(path.join(dir, `entry-with-a-longish-name-${i}`), "");
    for (const size of ["280", "4096", "1M"]) {
      const { code, report } = await runProbe("getdents", dir, size);
      expect(code).toBe(0);
      expect(report).toMatchObject({ op: "getdents", ok: true, entries: 1500 });
      expect(report.maxReturned as number).toBeLessThanOrEqual(Number(report.bufferSize));
    }
    const small = await runProbe("getdents", dir, "4096");
    expect(small.report.calls as number).toBeGreaterThan(2);
  });

  it("reports an errno with its partial progress and exit status 1", async () => {
    const missing = await runProbe("getdents", path.join(work, "nope"), "4096");
    expect(missing.code).toBe(1);
    expect(missing.report).toEqual({
      op: "getdents",
      bufferSize: 4096,
      entries: 0,
      calls: 0,
      maxReturned: 0,
      ok: false,
      errno: "ENOENT",
      errnoNum: 2,
      syscall: "open",
    });
    const tooSmall = await runProbe("getdents", "/", "8");
    expect(tooSmall.report).toMatchObject({ ok: false, errno: "EINVAL", syscall: "getdents64", calls: 1 });
  });

  it("writes the seeded pattern and reads back the same hash, blocked or not, direct or not", async () => {
    const file = path.join(work, "data");
    const size = 3 * 65536 + 123;
    const expected = fnv1a64(xorshiftPattern(7n, size));
    const write = await runProbe("write", file, String(size), "4096", "--seed", "7");
    expect(write.code).toBe(0);
    expect(write.report).toMatchObject({ op: "write", ok: true, bytes: size, seed: 7, fnv1a64: expected });
    expect(fs.readFileSync(file).equals(xorshiftPattern(7n, size))).toBe(true);
    // The pattern is a byte stream: the block size does not change it.
    const odd = await runProbe("write", path.join(work, "odd"), String(size), "1000", "--seed", "7");
    expect(odd.report.fnv1a64).toBe(expected);
    const read = await runProbe("read", file, "64K");
    expect(read.report).toMatchObject({
      op: "read",
      ok: true,
      bytes: size,
      fnv1a64: expected,
      passes: 1,
      differingPasses: 0,
    });
    // --for-ms: the same open file read again from the start until the time is up, every pass alike.
    const repeated = await runProbe("read", file, "64K", "--for-ms", "200");
    expect(repeated.report).toMatchObject({ op: "read", ok: true, bytes: size, fnv1a64: expected, differingPasses: 0 });
    expect(repeated.report.passes).toBeGreaterThan(1);
    expect(repeated.report.calls).toBe((repeated.report.passes as number) * 5);
    expect((await runProbe("read", file, "64K", "--for-ms")).code).toBe(2);

    // O_DIRECT (tmpfs refuses it with EINVAL; then that is what the probe must say).
    const direct = await runProbe("write", path.join(work, "direct"), "1M", "64K", "--direct");
    if (direct.code === 0) {
      expect(direct.report.fnv1a64).toBe(fnv1a64(xorshiftPattern(0n, 1 << 20)));
      const back = await runProbe("read", path.join(work, "direct"), "1M", "--direct");
      expect(back.report).toMatchObject({ ok: true, bytes: 1 << 20, fnv1a64: direct.report.fnv1a64 });
    } else {
      expect(direct.report).toMatchObject({ ok: false, errno: "EINVAL" });
    }
  });

  it("answers the liveness probe", async () => {
    expect(await runProbe("alive", work)).toEqual({ code: 0, report: { op: "alive", ok: true } });
    expect((await runProbe("alive", path.join(work, "nope"))).report).toMatchObject({
      ok: false,
      errno: "ENOENT",
      syscall: "stat",
    });
  });

  it("exits 2 on usage errors, still with one JSON line", async () => {
    for (const args of [
      [],
      ["frobnicate"],
      ["getdents", "/"],
      ["read", "/etc/hostname", "0"],
      ["write", "/tmp/x", "1M", "4K", "--bogus"],
    ]) {
      const { code, report } = await runProbe(...args);
      expect(code, args.join(" ")).toBe(2);
      expect(report).toMatchObject({ op: "usage", ok: false });
    }
  });
});

describe("guest init scripts", () => {
  it("are valid busybox sh", async () => {
    for (const [name, file] of Object.entries(guestInitFiles(["virtio", "virtio_net"]))) {
      if (!file.content.startsWith("#!/bin/sh")) continue;
      const r = await execa("busybox", ["sh", "-n"], { input: file.content, reject: false });
      expect(r.exitCode, `${name}: ${r.stderr}`).toBe(0);
    }
  });
});
