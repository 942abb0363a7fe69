// Crash signatures of the issue-6 captures (test/fixtures/consoles/README.md says how each was
// made): the same bug captured twice gives the same signature; and the blocked-task stacks
// vmrig asks for when a step hangs (sysrq w) read back as "task: frames".
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { classifyConsole, crashSignature, normaliseTitle } from "../../harness/classify/classify-console.ts";
import { fatalReportComplete, firstFatalFinding } from "../../harness/classify/console-witness.ts";
import { blockedTasks, blockedTaskStacks, extractBlockedState } from "../../harness/classify/hang-evidence.ts";

const consoles = new URL("../fixtures/consoles/", import.meta.url);
const stacks = new URL("../fixtures/stacks/", import.meta.url);
const load = (dir: URL, f: string) => readFileSync(new URL(f, dir), "utf8");
const signatures = (f: string) => classifyConsole(load(consoles, f)).map((x) => crashSignature(x));

const VFS_HUNG =
  "INFO: task vmrig-probe blocked for more than N seconds | " +
  "__wait_for_common < fuse_direct_IO < generic_file_read_iter < vfs_read < ksys_read";

describe("hung task from a SIGSTOPped virtiofsd", () => {
  it.each(["x86-hung-task-virtiofsd-stopped-1.log", "x86-hung-task-virtiofsd-stopped-2.log"])(
    "%s: every report has the same signature",
    (f) => {
      expect(new Set(signatures(f))).toEqual(new Set([VFS_HUNG]));
    },
  );

  it("is the same in two captures (different pids, timestamps, registers)", () => {
    const a = load(consoles, "x86-hung-task-virtiofsd-stopped-1.log");
    const b = load(consoles, "x86-hung-task-virtiofsd-stopped-2.log");
    expect(a).not.toBe(b);
    expect(signatures("x86-hung-task-virtiofsd-stopped-1.log")[0]).toBe(
      signatures("x86-hung-task-virtiofsd-stopped-2.log")[0],
    );
  });

  it("is not fatal: the cell stays what the workload says, the report goes to evidence", () => {
    expect(firstFatalFinding(load(consoles, "x86-hung-task-virtiofsd-stopped-1.log"), 0)).toBeUndefined();
  });
});

describe("sysrq crash on two kernel versions", () => {
  it("has one signature on 6.12 and 7.3 (7.3 adds vpanic to the panic machinery)", () => {
    expect(load(consoles, "x86-7.3-sysrq-panic.log")).toMatch(/vpanic\+0x/);
    expect(signatures("x86-7.3-sysrq-panic.log")).toEqual(signatures("x86-sysrq-panic.log"));
  });
});

const DNOTIFY = ["x86-dnotify-bad-inode-bug-1.log", "x86-dnotify-bad-inode-bug-2.log"];
describe("kernel BUG at fs/notify/dnotify/dnotify.c (the reverted-fix kernel)", () => {
  it("titles the BUG with its file and line, and is fatal", () => {
    for (const f of DNOTIFY) {
      const fatal = firstFatalFinding(load(consoles, f), 0);
      expect(fatal?.title).toMatch(/^kernel BUG at fs\/notify\/dnotify\/dnotify\.c:\d+$/);
    }
  });

  it("has the same signature in two captures (different registers, a torn line in the second)", () => {
    const [a, b] = DNOTIFY.map((f) => firstFatalFinding(load(consoles, f), 0)!.signature);
    expect(load(consoles, DNOTIFY[1]!)).toMatch(/\[ +\d+\.\d+SP: 0018:/);
    // The guess unwinder of this tinyconfig kernel marks every frame "? ": the PC is the culprit.
    expect(a).toBe("kernel BUG at fs/notify/dnotify/dnotify.c:134 | dnotify_free_mark");
    expect(b).toBe(a);
  });

  it("names the file as in the source tree, not as the out-of-tree build saw it", () => {
    expect(load(consoles, DNOTIFY[0]!)).toMatch(/kernel BUG at \.\.\/src\/fs\/notify\/dnotify\/dnotify\.c:134!/);
    expect(normaliseTitle("kernel BUG at ../src/fs/notify/dnotify/dnotify.c:134")).toBe(
      "kernel BUG at fs/notify/dnotify/dnotify.c:134",
    );
    expect(normaliseTitle("WARNING: at ../../b/linux/fs/fuse/inode.c:12 fuse_evict_inode")).toBe(
      "WARNING: at fs/fuse/inode.c:12 fuse_evict_inode",
    );
    expect(normaliseTitle("kernel BUG at /tmp/vmk/mod/provoke.c:16")).toBe("kernel BUG at /tmp/vmk/mod/provoke.c:16");
  });
});

describe("blocked-task stacks (sysrq w)", () => {
  it("reads the dump after a killed virtiofsd: the reader waits in fuse_direct_IO", () => {
    const dump = extractBlockedState(load(stacks, "x86-sysrq-w-virtiofsd-killed.txt"))!;
    expect(dump.split("\n")[0]).toMatch(/sysrq: Show Blocked State/);
    expect(blockedTasks(dump)).toEqual([
      "vmrig-probe: __wait_for_common < fuse_direct_IO < generic_file_read_iter < vfs_read < ksys_read",
    ]);
  });

  it("survives a line torn by two CPUs printing at once", () => {
    const text = load(stacks, "x86-sysrq-w-torn-line.txt");
    expect(text).toMatch(/ s\[ +\d+\.\d+\] +schedule_timeout/);
    expect(blockedTasks(extractBlockedState(text)!)).toEqual([
      "vmrig-probe: __wait_for_common < fuse_direct_IO < generic_file_read_iter < vfs_read < ksys_read",
    ]);
  });

  it("asks over SSH, and through the console when SSH does not answer", async () => {
    const dump = load(stacks, "x86-sysrq-w-virtiofsd-killed.txt");
    const fake = (ssh: "exited" | "timeout") => {
      let text = "[    9.0] boot noise\r\n";
      const typed: string[] = [];
      return {
        typed,
        guest: {
          exec: async () => {
            if (ssh === "exited") text += dump;
            return ssh === "exited"
              ? { kind: "exited" as const, code: 0, stdout: "", stderr: "", ms: 1 }
              : { kind: "timeout" as const, stdout: "", stderr: "", ms: 1 };
          },
          writeConsole: (line: string) => {
            typed.push(line);
            text += `${line}\r\n${dump}`;
            return true;
          },
          consoleLength: () => text.length,
          consoleSince: (offset: number) => text.slice(offset),
          deathReason: () => undefined,
        },
      };
    };
    const viaSsh = fake("exited");
    const a = await blockedTaskStacks(viaSsh.guest, 3000);
    expect(a).toMatchObject({
      via: "ssh",
      tasks: [expect.stringMatching(/^vmrig-probe: __wait_for_common < fuse_direct_IO/)],
    });
    expect(viaSsh.typed).toEqual([]);
    const viaConsole = fake("timeout");
    const b = await blockedTaskStacks(viaConsole.guest, 3000);
    expect(b.via).toBe("console");
    expect(viaConsole.typed).toEqual(["echo w > /proc/sysrq-trigger"]);
    expect(b.text).not.toMatch(/echo w/);
    expect(b.tasks).toEqual(a.tasks);
    const dead = await blockedTaskStacks({ ...viaConsole.guest, deathReason: () => "QEMU exited (status 1)" }, 1000);
    expect(dead).toEqual({ via: "none", text: "no stacks: QEMU exited (status 1)", tasks: [] });
  }, 20_000);

  it("drops what user space echoed on the console and finds nothing without the header", () => {
    const text = `echo w > /proc/sysrq-trigger\r\n${load(stacks, "x86-sysrq-w-virtiofsd-killed.txt")}`;
    expect(extractBlockedState(text)).not.toMatch(/echo w/);
    expect(extractBlockedState("[    1.0] nothing here\n")).toBeUndefined();
  });
});

describe("a fatal report still being printed", () => {
  const full = load(consoles, "x86-dnotify-bad-inode-bug-1.log");
  it("is complete once its end-trace line (or the panic after it) is on the console", () => {
    expect(fatalReportComplete(full, 0)).toBe(true);
    expect(firstFatalFinding(full, 0)!.signature).toMatch(
      /^kernel BUG at fs\/notify\/dnotify\/dnotify\.c:134 \| dnotify_free_mark/,
    );
  });
  it("is not complete with only its first lines: the signature would lack the call trace", () => {
    const lines = full.split("\n");
    const partial = lines.slice(0, lines.findIndex((l) => l.includes("kernel BUG at")) + 2).join("\n");
    expect(fatalReportComplete(partial, 0)).toBe(false);
    expect(firstFatalFinding(partial, 0)!.signature).toBe("kernel BUG at fs/notify/dnotify/dnotify.c:134");
  });
  it("a console with nothing fatal has nothing to wait for", () => {
    expect(fatalReportComplete(load(consoles, "x86-clean.log"), 0)).toBe(true);
  });
});
