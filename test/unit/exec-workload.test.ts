// The exec workload's judgement on captured guest output: Debian 7.3 runs the copied host programs
// from virtio-fs three times alike; a 7.3 built from vmrig's fragment segfaults once the pages are cached.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { exec, judgeExec, splitRuns } from "../../harness/workloads/exec.ts";
import type { Exited } from "../../harness/workloads/kind.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { parseScenario } from "../../harness/scenario/load.ts";

interface CapturedCell {
  kernel: string;
  workload: string;
  exec: Exited;
  host: { exit: number; stdout: string };
  outcome: unknown;
}
const captured = JSON.parse(readFileSync(path.join(repoRoot, "test/fixtures/exec/cells.json"), "utf8")) as {
  cells: CapturedCell[];
};
const facts = (c: CapturedCell) => ({ hostExit: c.host.exit, hostStdout: c.host.stdout });

describe("exec workload", () => {
  it.each(captured.cells.map((c) => [`${c.kernel} ${c.workload}`, c] as const))("judges %s as the run did", (_, c) => {
    expect(judgeExec({ runs: 3 }, c.exec, facts(c))).toMatchObject({ kind: "outcome", outcome: c.outcome });
  });

  it("names the runs that failed and how", () => {
    const sha = captured.cells.find((c) => c.kernel === "built-7.3" && c.workload === "sha256sum")!;
    const j = judgeExec({ runs: 3 }, sha.exec, facts(sha));
    expect(j).toMatchObject({
      outcome: { kind: "fail", detail: "runs 2, 3 of 3: exit 139, expected 0: Segmentation fault" },
    });
    expect(splitRuns(sha.exec.stdout).map((r) => r.exit)).toEqual([0, 139, 139]);
  });

  it("fails on output that differs from the host's, and on a guest that stopped before the last run", () => {
    const ok = captured.cells.find((c) => c.kernel === "debian-7.3" && c.workload === "sha256sum")!;
    const changed = { ...ok.exec, stdout: ok.exec.stdout.replace("6cd7", "0000") };
    expect(judgeExec({ runs: 3 }, changed, facts(ok))).toMatchObject({
      outcome: { kind: "fail", detail: "run 1 of 3: output differs from the host's" },
    });
    const cut = { ...ok.exec, stdout: ok.exec.stdout.slice(0, ok.exec.stdout.indexOf("@@vmrig-exec-end 2")) };
    expect(judgeExec({ runs: 3 }, cut, facts(ok))).toMatchObject({
      outcome: { kind: "fail", detail: "1 of 3 runs finished" },
    });
  });

  it("a scenario's expectation wins over the host's", () => {
    const f = captured.cells.find((c) => c.kernel === "debian-7.3" && c.workload === "false")!;
    expect(judgeExec({ runs: 3, expectExit: 0 }, f.exec, facts(f))).toMatchObject({ outcome: { kind: "fail" } });
    expect(judgeExec({ runs: 3, expectExit: 1, expectStdout: "" }, f.exec, facts(f))).toMatchObject({
      outcome: { kind: "pass" },
    });
  });

  it("the guest command runs the program in a chroot of the copied tree, each run ended by its status", () => {
    const w = {
      id: "x",
      kind: "exec" as const,
      share: "s",
      program: "/usr/bin/ls",
      args: ["-l", "a b"],
      runs: 2,
      expectExit: undefined,
      expectStdout: undefined,
    };
    expect(exec.guestCommand(w, { guestDir: "/mnt/s" })).toBe(
      "for i in 1 2; do chroot /mnt/s/x/root /usr/bin/ls -l 'a b'; printf '\\n@@vmrig-exec-end %s %s\\n' \"$i\" \"$?\"; done",
    );
  });

  it("is refused at load with file:line for another architecture, a missing program or a static one", () => {
    const yaml = (arch: string, program: string) =>
      [
        "name: e",
        `machine: { arch: ${arch} }`,
        'kernels: { k: { debian: { version: "7.3" } } }',
        "shares: [{ tag: s }]",
        `workloads: [{ id: x, exec: { share: s, program: ${program} } }]`,
      ].join("\n");
    expect(() => parseScenario(yaml("x86_64", "/usr/bin/sha256sum"), "e.yaml")).not.toThrow();
    expect(() => parseScenario(yaml("aarch64", "/usr/bin/sha256sum"), "e.yaml")).toThrow(
      /e\.yaml:5:\d+ workloads\[0\]\.exec: runs host programs \(x64\): this scenario's guests are aarch64/,
    );
    expect(() => parseScenario(yaml("x86_64", "/bin/busybox"), "e.yaml")).toThrow(
      /e\.yaml:5:\d+ workloads\[0\]\.exec\.program: \/bin\/busybox is not a dynamically linked program/,
    );
    expect(() => parseScenario(yaml("x86_64", "/usr/bin/nosuch"), "e.yaml")).toThrow(
      /e\.yaml:5:\d+ workloads\[0\]\.exec\.program: \/usr\/bin\/nosuch is not a file on this host/,
    );
  });
});
