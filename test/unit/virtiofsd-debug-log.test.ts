// virtiofsd's debug log, parsed from real captures (test/fixtures/virtiofsd/README.md).
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { fuseOpcodeName, parseDebugLog, refusalNotes, refusals, unanswered } from "../../harness/virtiofs/debug-log.ts";
import { virtiofsdArgs } from "../../harness/virtiofs/daemon.ts";
import { withNotes } from "../../harness/classify/server-evidence.ts";
import type { ShareSpec } from "../../harness/types.ts";
import { repoRoot } from "../../harness/util/paths.ts";

const fixture = (name: string) => readFileSync(path.join(repoRoot, "test", "fixtures", "virtiofsd", name), "utf8");
const arm16k = fixture("debug-1.13-arm64-16k-overlay.log");
const x86 = fixture("debug-1.13-x86-overlay-excerpt.log");

describe("parseDebugLog on a real virtiofsd 1.13 log (Debian 7.3 arm64-16k, overlay over virtio-fs)", () => {
  const log = parseDebugLog(arm16k);

  it("pairs every request with its reply by unique, OK and ERROR alike", () => {
    expect(log.requests).toHaveLength(20);
    expect(log.orphanReplies).toBe(0);
    expect(unanswered(log)).toEqual([]);
    expect(log.requests[0]).toEqual({
      unique: 2,
      opcode: "Init",
      opcodeNum: 26,
      inode: 0,
      pid: 135,
      reply: { ok: true, error: 0, len: 80 },
    });
    // getdents64 with a 1 MiB buffer on the plain mount: a full 1 MiB READDIRPLUS reply.
    expect(log.requests.find((r) => r.unique === 10)).toMatchObject({
      opcode: "Readdirplus",
      reply: { ok: true, len: 1048584 },
    });
    // The ERROR reply lists error first and len last: both still parse.
    expect(log.requests.find((r) => r.unique === 26)).toMatchObject({
      opcode: "Readdirplus",
      inode: 5701,
      reply: { ok: false, error: -12, len: 16 },
    });
  });

  it("groups the refused requests per opcode and errno: READDIRPLUS -12 twice (probe and ls)", () => {
    expect(refusals(log)).toEqual([
      { opcode: "READDIRPLUS", opcodeNum: 44, error: -12, errno: "ENOMEM", count: 2, uniques: [26, 32] },
    ]);
    expect(refusalNotes(refusals(log))).toEqual(["virtiofsd refused READDIRPLUS (-12) x 2"]);
  });
});

describe("parseDebugLog on an excerpt (x86 guest, overlay passes)", () => {
  const log = parseDebugLog(x86);

  it("counts a reply whose request was cut away as an orphan, not as a refusal", () => {
    expect(log.orphanReplies).toBe(1);
    expect(log.requests.every((r) => r.reply)).toBe(true);
  });

  it("keeps GETXATTR ENOSYS (virtiofsd without --xattr) in the evidence but makes no note of it", () => {
    const r = refusals(log);
    expect(r).toEqual([expect.objectContaining({ opcode: "GETXATTR", error: -38, errno: "ENOSYS", count: 1 })]);
    expect(refusalNotes(r)).toEqual([]);
  });
});

describe("small pieces", () => {
  it("spells opcodes as FUSE does", () => {
    expect(fuseOpcodeName("Readdirplus")).toBe("READDIRPLUS");
    expect(fuseOpcodeName("BatchForget")).toBe("BATCH_FORGET");
    expect(fuseOpcodeName("CopyFileRange")).toBe("COPY_FILE_RANGE");
  });

  it("a request still in flight at the end of the slice is unanswered", () => {
    const text = "x] Received request: opcode=Read (15), inode=3, unique=8, pid=1\n";
    const log = parseDebugLog(text);
    expect(unanswered(log).map((r) => r.unique)).toEqual([8]);
    expect(refusals(log)).toEqual([]);
  });

  it("puts the notes into the outcome's detail next to the guest's errno", () => {
    const notes = ["virtiofsd refused READDIRPLUS (-12) x 1"];
    expect(
      withNotes({ kind: "errno", errno: "ENOMEM", mountHealthy: true, detail: "getdents64: ENOMEM" }, notes),
    ).toEqual({
      kind: "errno",
      errno: "ENOMEM",
      mountHealthy: true,
      detail: "getdents64: ENOMEM; virtiofsd refused READDIRPLUS (-12) x 1",
    });
    expect(withNotes({ kind: "hang", what: "x", wedged: false }, notes)).toEqual({
      kind: "hang",
      what: "x",
      wedged: false,
    });
    expect(withNotes({ kind: "pass" }, [])).toEqual({ kind: "pass" });
  });

  it("a share's `log: debug` sets virtiofsd's --log-level for that share only", () => {
    const share: ShareSpec = {
      tag: "s",
      cache: "auto",
      queueSize: 128,
      sandbox: "none",
      extraArgs: [],
      accessPlatform: false,
    };
    const level = (a: string[]) => a[a.indexOf("--log-level") + 1];
    expect(level(virtiofsdArgs(share, "/s.sock", "/d"))).toBe("info");
    expect(level(virtiofsdArgs(share, "/s.sock", "/d", "warn"))).toBe("warn");
    expect(level(virtiofsdArgs({ ...share, logLevel: "debug" }, "/s.sock", "/d", "warn"))).toBe("debug");
  });

  it("sandboxes virtiofsd in a chroot by default when run as root, and not at all otherwise", () => {
    const share: ShareSpec = {
      tag: "s",
      cache: "auto",
      queueSize: 128,
      sandbox: "auto",
      extraArgs: [],
      accessPlatform: false,
    };
    const sandbox = (a: string[]) => a[a.indexOf("--sandbox") + 1];
    expect(sandbox(virtiofsdArgs(share, "/s.sock", "/d", "info", true))).toBe("chroot");
    expect(sandbox(virtiofsdArgs(share, "/s.sock", "/d", "info", false))).toBe("none");
    expect(sandbox(virtiofsdArgs({ ...share, sandbox: "namespace" }, "/s.sock", "/d", "info", true))).toBe("namespace");
    expect(sandbox(virtiofsdArgs({ ...share, sandbox: "none" }, "/s.sock", "/d", "info", true))).toBe("none");
  });
});
