// The lie table: each lying FUSE server is its vmrig-fuse-lie options plus what a correct kernel
// does about it; the judge turns the program's report into a cell.
import { describe, expect, it } from "vitest";
import {
  DNOTIFY_BAD_INODE_LIE,
  FUSE_LIE_NAMES,
  FUSE_LIES,
  fuseLieCommand,
  judgeFuseLie,
  LIE_STEPS,
} from "../../harness/workloads/fuse-lies.ts";
import { FUSE_LIE_PROGRAM } from "../../harness/image/guest-protocol.ts";
import { parseScenario } from "../../harness/scenario/load.ts";

const exited = (report: unknown, code = 0, stderr = "") => ({
  kind: "exited" as const,
  code,
  stdout: report === undefined ? "" : `${JSON.stringify(report)}\n`,
  stderr,
  ms: 5,
});
const steps = (over: Record<string, string>) => ({
  mount: "ok",
  open: "ok",
  dnotify: "skipped",
  fstat: "ok",
  read: "skipped",
  close: "ok",
  umount: "ok",
  ...over,
});
const report = (over: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  op: "fuse-lie",
  ok: true,
  steps: steps(over),
  ...extra,
});

describe("the lie table", () => {
  it("has the syzbot reproducer and the other lying servers the issue asks for", () => {
    expect(FUSE_LIE_NAMES).toEqual(
      expect.arrayContaining(["mode-flip-dnotify", "mode-flip", "negative-size", "wrong-size"]),
    );
    expect(DNOTIFY_BAD_INODE_LIE).toBe("mode-flip-dnotify");
  });

  it("turns each lie into a guest command of options only", () => {
    expect(fuseLieCommand("mode-flip-dnotify")).toBe(
      `${FUSE_LIE_PROGRAM} --entry dir --dnotify --getattr-mode 0100644 --timeout 20`,
    );
    expect(fuseLieCommand("mode-flip", 7.4)).toBe(`${FUSE_LIE_PROGRAM} --entry dir --getattr-mode 0100644 --timeout 7`);
    expect(fuseLieCommand("negative-size")).toContain("--entry file --getattr-size 0x8000000000000000");
    expect(fuseLieCommand("wrong-size")).toContain("--entry file --read-extra 4096");
  });

  it("refuses each lie at a step the victim reaches, and dnotify only on directories", () => {
    for (const name of FUSE_LIE_NAMES) {
      const lie = FUSE_LIES[name];
      expect(LIE_STEPS).toContain(lie.refusedAt);
      expect(lie.errno).toMatch(/^E[A-Z]+$/);
      const args: readonly string[] = lie.args;
      if (args.includes("--dnotify")) expect(args.join(" ")).toContain("--entry dir");
      // A file lie is refused at fstat or read; a directory one at fstat (directories are not read).
      if (args.join(" ").includes("--entry dir")) expect(lie.refusedAt).toBe("fstat");
    }
  });

  it("is what the scenario schema accepts, and dnotifyBadInode is its mode-flip-dnotify row", () => {
    const s = parseScenario(
      "name: t\nkernels: { k: { path: { kernel: /k } } }\n" +
        "workloads:\n  - { id: a, dnotifyBadInode: {} }\n  - { id: b, fuseLie: { lie: wrong-size } }\n",
      "t.yaml",
    );
    expect(s.workloads).toEqual([
      { id: "a", kind: "fuseLie", lie: "mode-flip-dnotify" },
      { id: "b", kind: "fuseLie", lie: "wrong-size" },
    ]);
    expect(() =>
      parseScenario(
        `name: t\nkernels: { k: { path: { kernel: /k } } }\nworkloads:\n  - { id: a, fuseLie: { lie: nope } }\n`,
        "t.yaml",
      ),
    ).toThrow(/t\.yaml:4:\d+ workloads\[0\]\.fuseLie\.lie: .*mode-flip-dnotify/);
  });
});

describe("judging a lie", () => {
  it("PASS when the kernel refuses at the right step with the right errno, and asks for a guest health check", () => {
    const j = judgeFuseLie("mode-flip-dnotify", exited(report({ dnotify: "ok", fstat: "EIO" })));
    expect(j).toMatchObject({
      kind: "outcome",
      outcome: { kind: "pass", detail: "refused: fstat -> -EIO" },
      checkGuest: true,
    });
  });

  it("lets steps after the refusal fail with the bad inode's EIO", () => {
    const j = judgeFuseLie("negative-size", exited(report({ fstat: "EIO", close: "EIO" })));
    expect(j).toMatchObject({ outcome: { kind: "pass" } });
  });

  it("FAIL when the kernel believed the lie", () => {
    const j = judgeFuseLie("mode-flip", exited(report({}, { fstatMode: "0100644", fstatSize: 4096 })));
    expect(j).toMatchObject({
      outcome: { kind: "fail", detail: "the kernel believed the lie: fstat says mode 0100644 size 4096" },
    });
    const r = judgeFuseLie(
      "wrong-size",
      exited(report({ read: "ok" }, { fstatMode: "0100644", fstatSize: 4096, readBytes: 8192 })),
    );
    expect(r).toMatchObject({
      outcome: { kind: "fail", detail: "the kernel believed the lie: read returned 8192 bytes" },
    });
  });

  it("FAIL on the wrong errno, a failure before the lie, or an umount that fails afterwards", () => {
    expect(judgeFuseLie("mode-flip", exited(report({ fstat: "ESTALE" })))).toMatchObject({
      outcome: { kind: "fail", detail: "fstat gave ESTALE, expected -EIO" },
    });
    expect(judgeFuseLie("mode-flip", exited(report({ open: "ENOENT", fstat: "skipped" })))).toMatchObject({
      outcome: { kind: "fail", detail: "open failed (ENOENT) before the lie was told" },
    });
    expect(judgeFuseLie("mode-flip", exited(report({ fstat: "EIO", umount: "EBUSY" })))).toMatchObject({
      outcome: { kind: "fail" },
    });
  });

  it("HANG when a step did not return within the program's own deadline", () => {
    expect(judgeFuseLie("mode-flip-dnotify", exited(report({ dnotify: "ok", fstat: "timeout" })))).toMatchObject({
      outcome: { kind: "hang", wedged: true },
    });
  });

  it("INFRA with a clear reason when the guest kernel has no FUSE, or the program printed nothing", () => {
    const noFuse = judgeFuseLie(
      "mode-flip-dnotify",
      exited({ op: "fuse-lie", ok: false, stage: "open /dev/fuse", errno: "ENOENT" }, 1),
    );
    expect(noFuse).toMatchObject({
      outcome: {
        kind: "infra",
        reason: "fuse lie mode-flip-dnotify: cannot open /dev/fuse (ENOENT): the kernel has no FUSE (CONFIG_FUSE_FS)",
      },
    });
    const mountFails = judgeFuseLie(
      "mode-flip",
      exited({ op: "fuse-lie", ok: false, stage: "mount", errno: "EPERM" }, 1),
    );
    expect(mountFails).toMatchObject({
      outcome: { kind: "infra", reason: "fuse lie mode-flip: setting up failed at mount (EPERM)" },
    });
    const silent = judgeFuseLie("mode-flip", exited(undefined, 127, "sh: vmrig-fuse-lie: not found"));
    expect(silent).toMatchObject({
      outcome: {
        kind: "infra",
        reason: expect.stringContaining("printed no result (exit 127): sh: vmrig-fuse-lie: not found"),
      },
    });
  });
});
