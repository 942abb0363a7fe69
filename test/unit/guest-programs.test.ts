// The guest programs (images/probe/vmrig-probe.c, images/repro/vmrig-fuse-lie.c) built for the
// host, dynamically, so that test/fixtures/guest-programs/fake-syscalls.c can make a syscall
// answer as a broken kernel would: what they must survive cannot be produced by a healthy host.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { repoRoot } from "../../harness/util/paths.ts";

const COMMON = path.join(repoRoot, "images", "common");
const FAKE_SOURCE = path.join(repoRoot, "test", "fixtures", "guest-programs", "fake-syscalls.c");
/** The guest's flags without -static and -s; -Werror so a new warning fails here first. */
const CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror"];

let dir: string;
let probe: string;
let fuseLie: string;
let fake: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "vmrig-guest-programs-"));
  probe = path.join(dir, "vmrig-probe");
  fuseLie = path.join(dir, "vmrig-fuse-lie");
  fake = path.join(dir, "fake-syscalls.so");
  const src = (...p: string[]) => path.join(repoRoot, "images", ...p);
  await Promise.all([
    execa("gcc", [...CFLAGS, `-I${COMMON}`, "-o", probe, src("probe", "vmrig-probe.c")]),
    execa("gcc", [...CFLAGS, `-I${COMMON}`, "-o", fuseLie, src("repro", "vmrig-fuse-lie.c")]),
    execa("gcc", [...CFLAGS, "-shared", "-fPIC", "-o", fake, FAKE_SOURCE, "-ldl"]),
  ]);
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Ran {
  code: number | undefined;
  report: Record<string, unknown>;
  stderr: string;
}

/** Runs a guest program (with VMRIG_FAKE when given); a hang fails after 5 s instead of spinning. */
async function run(program: string, args: string[], fakeWhat?: string): Promise<Ran> {
  const env = fakeWhat ? { VMRIG_FAKE: fakeWhat, LD_PRELOAD: fake } : {};
  const r = await execa(program, args, { reject: false, timeout: 5000, env });
  expect(r.timedOut, `${path.basename(program)} ${args.join(" ")} hung`).toBe(false);
  return { code: r.exitCode, report: JSON.parse(r.stdout) as Record<string, unknown>, stderr: r.stderr };
}

describe("vmrig-probe on the host", () => {
  it("counts a real directory's entries across many small getdents64 calls", async () => {
    const d = path.join(dir, "entries");
    await execa("mkdir", [d]);
    await Promise.all(Array.from({ length: 300 }, (_, i) => writeFile(path.join(d, `file-${i}`), "")));
    const r = await run(probe, ["getdents", d, "1K"]);
    expect(r.code).toBe(0);
    expect(r.report).toMatchObject({ op: "getdents", ok: true, entries: 300, bufferSize: 1024 });
    expect(r.report.calls).toBeGreaterThan(10);
  });

  it.each([
    ["99999999999999999999K", "BUFSIZE: size does not fit in 64 bits"], // strtoull overflows
    ["99999999999999999K", "BUFSIZE: size does not fit in 64 bits"], // fits, but not shifted by 10
    ["17179869184G", "BUFSIZE: size does not fit in 64 bits"], // exactly 2^64
    ["16777215G", "BUFSIZE: must be 1 to 4G-1"],
    ["-1", "BUFSIZE: not a size (digits, then K, M or G)"],
    [" 5", "BUFSIZE: not a size (digits, then K, M or G)"],
    ["4KB", "BUFSIZE: not a size (digits, then K, M or G)"],
  ])("refuses the size %j: %s", async (size, error) => {
    const r = await run(probe, ["getdents", dir, size]);
    expect(r.code).toBe(2);
    expect(r.report).toEqual({ op: "usage", ok: false, error });
  });

  it("refuses a write size and a seed that wrap, naming the argument", async () => {
    const file = path.join(dir, "never-written");
    const size = await run(probe, ["write", file, "18014398509481984K", "4K"]); // 2^54 K = 2^64
    expect(size.report).toEqual({ op: "usage", ok: false, error: "SIZE: size does not fit in 64 bits" });
    const seed = await run(probe, ["write", file, "4K", "4K", "--seed", "99999999999999999999"]);
    expect(seed.report).toEqual({ op: "usage", ok: false, error: "--seed: size does not fit in 64 bits" });
    await expect(readFile(file)).rejects.toThrow(/ENOENT/);
  });

  it.each([
    ["zero-reclen", "bad d_reclen 0 at offset 0 of 24 bytes"],
    ["past-end", "bad d_reclen 200 at offset 0 of 24 bytes"],
  ])("stops with an error on a getdents64 record with %s, never looping or reading past it", async (what, error) => {
    const r = await run(probe, ["getdents", dir, "4K"], what);
    expect(r.code).toBe(1);
    expect(r.report).toEqual({
      op: "getdents",
      bufferSize: 4096,
      entries: 0,
      calls: 1,
      maxReturned: 24,
      ok: false,
      syscall: "getdents64",
      error,
    });
  });

  it("fails a write() that returns 0 instead of asking again forever", async () => {
    const r = await run(probe, ["write", path.join(dir, "w"), "1M", "64K"], "write-zero");
    expect(r.code).toBe(1);
    expect(r.report).toMatchObject({
      op: "write",
      ok: false,
      bytes: 0,
      calls: 1,
      syscall: "write",
      error: "write returned 0 with 65536 bytes to go",
    });
  });
});

describe("vmrig-fuse-lie on the host", () => {
  it("answers requests shorter than their opcode needs with EIO, never reading past them", async () => {
    const mnt = path.join(dir, "mnt");
    const r = await run(fuseLie, ["--mnt", mnt, "--timeout", "3"], "fuse-requests");
    expect(r.code).toBe(0);
    // A short READ, a LOOKUP name without its NUL, a short INIT, a GETATTR claiming 1000 bytes;
    // the good GETATTR after them is served.
    expect(r.report).toMatchObject({
      ok: true,
      malformedRequests: 4,
      requests: { lookup: 1, getattr: 2, read: 1 },
      replyErrors: [],
      steps: { mount: "ok", open: "ENOENT", umount: "ok" },
    });
  });
});
