// Planned faults: the `faults:` steps a scenario declares (validated with file:line errors), the
// plan that fires them against a guest, and the console channel vmrig falls back on.
import { describe, expect, it, vi } from "vitest";
import { parseScenario } from "../../harness/scenario/load.ts";
import { parseDuration } from "../../harness/scenario/faults.ts";
import { SpecError } from "../../harness/util/errors.ts";
import { FaultPlan } from "../../harness/run/faults.ts";
import { execa } from "execa";
import { consoleCommandLine, consoleRun, parseConsoleReply } from "../../harness/guest/console-shell.ts";
import { consoleJob } from "../../harness/run/console-job.ts";
import type { FaultStep } from "../../harness/types.ts";

const scenario = (faults: string, extra = "") => `name: t
timeouts: { step: 20 }
kernels: { k: { path: { kernel: /k } } }
shares:
  - { tag: share }
workloads:
  - { id: rd, read: { share: share, size: 1M } }
  - { id: sleepy, shell: { command: "sleep 9" } }
${extra}faults:
${faults}`;

function problems(text: string): string[] {
  try {
    parseScenario(text, "f.yaml");
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    return (e as Error).message.split("\n");
  }
  throw new Error("loaded");
}

describe("faults in a scenario file", () => {
  it("loads timed steps as milliseconds with where they were written", () => {
    const s = parseScenario(
      scenario(`  - { during: rd, after: 2s, action: virtiofsd-stop, share: share }
  - { during: rd, after: 9500ms, action: virtiofsd-cont, share: share }
  - { during: sleepy, after: 1.5, action: guest-sysrq-crash }
  - { during: sleepy, after: 0, action: network-cut }
`),
      "f.yaml",
    );
    expect(s.faults).toEqual([
      { during: "rd", afterMs: 2000, action: "virtiofsd-stop", share: "share", where: "faults[0]" },
      { during: "rd", afterMs: 9500, action: "virtiofsd-cont", share: "share", where: "faults[1]" },
      { during: "sleepy", afterMs: 1500, action: "guest-sysrq-crash", where: "faults[2]" },
      { during: "sleepy", afterMs: 0, action: "network-cut", where: "faults[3]" },
    ]);
    expect(parseScenario(scenario("  []\n").replace("faults:\n  []\n", ""), "f.yaml").faults).toBeUndefined();
  });

  it("names the step, the line and the problem: unknown workload, unknown share, missing share", () => {
    expect(
      problems(
        scenario(`  - { during: rdd, after: 1s, action: virtiofsd-kill, share: share }
  - { during: rd, after: 1s, action: virtiofsd-kill, share: shared }
  - { during: rd, after: 1s, action: virtiofsd-kill }
  - { during: sleepy, after: 1s, action: network-cut, share: share }
`),
      ),
    ).toEqual([
      `f.yaml:10:15 faults[0].during: unknown workload "rdd" (did you mean rd?) (workloads: rd, sleepy)`,
      `f.yaml:11:61 faults[1].share: unknown share "shared" (declared: share)`,
      "f.yaml:12:38 faults[2].action: virtiofsd-kill needs share: " +
        "the tag of the share whose virtiofsd it hits (declared: share)",
      "f.yaml:13:62 faults[3].share: network-cut does not take a share " +
        "(only virtiofsd-stop, virtiofsd-cont, virtiofsd-kill, virtiofsd-restart do)",
    ]);
  });

  it("refuses bad timing: not a time, after the step's deadline, a cont with no stop before it", () => {
    expect(
      problems(
        scenario(`  - { during: rd, after: soon, action: virtiofsd-stop, share: share }
  - { during: rd, after: 25s, action: virtiofsd-kill, share: share }
  - { during: sleepy, after: 3s, action: virtiofsd-cont, share: share }
  - { during: sleepy, after: 4s, action: virtiofsd-stop, share: share }
  - { during: rd, after: -1, action: network-cut }
`),
      ),
    ).toEqual([
      `f.yaml:10:26 faults[0].after: expected a time like 2s, 500ms or 1.5 (seconds), got "soon"`,
      "f.yaml:11:26 faults[1].after: fires at 25 s, but the step's deadline is timeouts.step = 20 s: " +
        "the fault would land after the workload gave up",
      'f.yaml:12:42 faults[2].action: virtiofsd-cont of share "share" during "sleepy" ' +
        "has no earlier virtiofsd-stop to undo",
      "f.yaml:14:26 faults[4].after: expected a time like 2s, 500ms or 1.5 (seconds), got -1",
    ]);
  });

  it("refuses an unknown action with the known ones", () => {
    expect(problems(scenario("  - { during: rd, after: 1s, action: virtiofsd-pause, share: share }\n"))[0]).toMatch(
      /^f\.yaml:10:38 faults\[0\]\.action: unknown fault action "virtiofsd-pause" .*known: virtiofsd-stop, virtiofsd-cont, virtiofsd-kill, virtiofsd-restart, guest-sysrq-crash, network-cut/,
    );
  });

  it("reads a read's repeatFor as milliseconds and refuses one that outlasts the step's deadline", () => {
    const withRead = (read: string) => `name: t
timeouts: { step: 20 }
kernels: { k: { path: { kernel: /k } } }
shares: [{ tag: share }]
workloads:
  - { id: rd, read: ${read} }
`;
    expect(
      parseScenario(withRead("{ share: share, size: 1M, direct: true, repeatFor: 16s }"), "f.yaml").workloads[0],
    ).toMatchObject({ kind: "read", repeatForMs: 16_000 });
    expect(parseScenario(withRead("{ share: share, size: 1M }"), "f.yaml").workloads[0]).toMatchObject({
      repeatForMs: 0,
    });
    expect(problems(withRead("{ share: share, size: 1M, repeatFor: 30s }"))).toEqual([
      "f.yaml:6:58 workloads[0].read.repeatFor: reads for 30 s, but the step's deadline is timeouts.step = 20 s: " +
        "the workload would be cut off as a HANG",
    ]);
    expect(problems(withRead("{ share: share, size: 1M, repeatFor: a while }"))).toEqual([
      `f.yaml:6:58 workloads[0].read.repeatFor: expected a time like 2s, 500ms or 1.5 (seconds), got "a while"`,
    ]);
    expect(
      problems(
        withRead("{ share: share, size: 1M }")
          .replace("read:", "write:")
          .replace("size: 1M }", "size: 1M, repeatFor: 2s }"),
      )[0],
    ).toMatch(/^f\.yaml:6:\d+ workloads\[0\]\.write.*repeatFor/);
  });

  it("parses durations", () => {
    expect([
      parseDuration("2s"),
      parseDuration("500ms"),
      parseDuration("1m"),
      parseDuration(0.25),
      parseDuration("x"),
      parseDuration(-1),
    ]).toEqual([2000, 500, 60000, 250, undefined, undefined]);
  });
});

type Signal = NodeJS.Signals;
function fakeGuest() {
  const signals: Array<[string, Signal]> = [];
  const daemon = (tag: string) => ({ pid: 42, signal: (s: Signal) => signals.push([tag, s]) });
  const guest = {
    daemon: vi.fn(daemon),
    exec: vi.fn(async () => ({ kind: "exited" as const, code: 0, stdout: "", stderr: "", ms: 1 })),
    writeConsole: vi.fn(() => true),
    cutNetwork: vi.fn(async () => "host forwarding rule for tcp:127.0.0.1:4242 removed"),
    restartDaemon: vi.fn(async () => undefined),
  };
  return { guest, signals };
}
const step = (action: FaultStep["action"], afterMs: number, share?: string): FaultStep => ({
  during: "w",
  afterMs,
  action,
  ...(share ? { share } : {}),
  where: "faults[0]",
});

describe("FaultPlan", () => {
  it("fires each step at its time, logs it, and continues a stopped virtiofsd when the cell ends", async () => {
    vi.useFakeTimers();
    try {
      const { guest, signals } = fakeGuest();
      const plan = new FaultPlan(guest as never, [
        step("virtiofsd-stop", 1000, "share"),
        step("virtiofsd-kill", 5000, "share"),
      ]);
      plan.start();
      await vi.advanceTimersByTimeAsync(1500);
      expect(signals).toEqual([["share", "SIGSTOP"]]);
      const log = await plan.finish();
      expect(signals).toEqual([
        ["share", "SIGSTOP"],
        ["share", "SIGCONT"],
      ]);
      expect(log[0]).toMatchObject({ action: "virtiofsd-stop", firedMs: 1000, result: "SIGSTOP to pid 42" });
      expect(log[1]).toMatchObject({ action: "virtiofsd-kill", result: "not fired: the workload finished first" });
      expect(plan.unfired().map((e) => e.action)).toEqual(["virtiofsd-kill"]);
      expect(plan.describeFired()).toBe("virtiofsd-stop share at 1.0 s");
    } finally {
      vi.useRealTimers();
    }
  });

  it("knows a virtiofsd death it caused is planned, and no other", async () => {
    vi.useFakeTimers();
    try {
      const { guest } = fakeGuest();
      const plan = new FaultPlan(guest as never, [step("virtiofsd-kill", 10, "share")]);
      expect(plan.plannedDeath("virtiofsd[share] exited (signal SIGKILL)")).toBe(false);
      plan.start();
      await vi.advanceTimersByTimeAsync(20);
      expect(plan.plannedDeath("virtiofsd[share] exited (signal SIGKILL)")).toBe(true);
      expect(plan.plannedDeath("virtiofsd[other] exited (signal SIGKILL)")).toBe(false);
      expect(plan.plannedDeath("QEMU exited (status 1)")).toBe(false);
      expect(plan.killedDaemon).toBe(true);
      await plan.finish();
    } finally {
      vi.useRealTimers();
    }
  });

  it("cuts the network through the guest and says so", async () => {
    const { guest } = fakeGuest();
    const plan = new FaultPlan(guest as never, [step("network-cut", 0)]);
    expect(plan.cutsNetwork).toBe(true);
    plan.start();
    await plan.networkCut;
    expect(plan.cutNetworkDone).toBe(true);
    expect((await plan.finish())[0]!.result).toBe("host forwarding rule for tcp:127.0.0.1:4242 removed");
  });

  it("types the sysrq crash on the console when SSH refuses it", async () => {
    const { guest } = fakeGuest();
    guest.exec.mockResolvedValueOnce({ kind: "exited", code: 1, stdout: "", stderr: "permission denied", ms: 1 });
    const plan = new FaultPlan(guest as never, [step("guest-sysrq-crash", 0)]);
    plan.start();
    await new Promise((r) => setTimeout(r, 20));
    const [entry] = await plan.finish();
    expect(entry!.result).toBe("sysrq c via the console (SSH refused it)");
    expect(guest.writeConsole).toHaveBeenCalledWith("echo c > /proc/sysrq-trigger");
    expect(plan.crashed).toBe(true);
  });
});

describe("the console channel", () => {
  it("types a line whose echo cannot be mistaken for the reply", () => {
    const line = consoleCommandLine("cat /run/x", "ab12");
    expect(line).toBe(`echo "@@ab12""-begin"; cat /run/x; echo "@@ab12""-end $?"`);
    expect(line).not.toContain("@@ab12-begin");
    expect(() => consoleCommandLine("x".repeat(5000), "n")).toThrow(/at most 4000 bytes/);
  });

  it("types a command of several lines as one line that a shell runs whole", async () => {
    const command = "for w in one 'two three'; do\n  echo \"$w\"\ndone\nexit 7";
    const line = consoleCommandLine(command, "ab12");
    expect(line).not.toMatch(/[\r\n]/);
    const r = await execa("busybox", ["sh", "-c", `${line}; echo agent alive`], { reject: false });
    expect(r.stdout).toBe("@@ab12-begin\none\ntwo three\n@@ab12-end 7\nagent alive");
  });

  it("finds the reply between the markers, without kernel lines or CRs", () => {
    const text = [
      `echo "@@ab12""-begin"; cat /run/x; echo "@@ab12""-end $?"\r`,
      "@@ab12-begin\r",
      '{"op":"read","ok":true}\r',
      "[   12.345678] virtio_net virtio1 eth0: link down\r",
      "second line\r",
      "@@ab12-end 0\r",
    ].join("\n");
    expect(parseConsoleReply(text, "ab12")).toEqual({ code: 0, stdout: '{"op":"read","ok":true}\nsecond line\n' });
    expect(parseConsoleReply(text.replace("@@ab12-end 0", ""), "ab12")).toBeUndefined();
    expect(parseConsoleReply(text, "zzzz")).toBeUndefined();
  });

  it("runs a command through a console that answers, and gives up on a dead guest", async () => {
    let console = "";
    const guest = {
      writeConsole: (line: string) => {
        const nonce = /@@(\w+)""-begin/.exec(line)![1];
        console += `${line}\r\n@@${nonce}-begin\r\nhello\r\n@@${nonce}-end 3\r\n`;
        return true;
      },
      consoleLength: () => console.length,
      consoleSince: (offset: number) => console.slice(offset),
      deathReason: () => undefined,
    };
    expect(await consoleRun(guest, "echo hello", 1000)).toMatchObject({ kind: "exited", code: 3, stdout: "hello\n" });
    const dead = {
      writeConsole: () => true,
      consoleLength: () => 0,
      consoleSince: () => "",
      deathReason: () => "QEMU exited (status 1)",
    };
    expect(await consoleRun(dead, "true", 1000)).toMatchObject({ kind: "lost", error: "QEMU exited (status 1)" });
    expect(await consoleRun({ ...dead, writeConsole: () => false }, "true", 1000)).toMatchObject({ kind: "lost" });
  });

  it("wraps a workload so its result outlives the SSH session", () => {
    const job = consoleJob("/usr/bin/vmrig-probe alive /mnt/share", "c0ffee");
    expect(job.base).toBe("/run/vmrig-job-c0ffee");
    expect(job.command).toBe(
      "setsid sh -c '/usr/bin/vmrig-probe alive /mnt/share > /run/vmrig-job-c0ffee.out " +
        "2> /run/vmrig-job-c0ffee.err; echo $? > /run/vmrig-job-c0ffee.rc' " +
        "< /dev/null > /dev/null 2>&1 & wait $!; " +
        "cat /run/vmrig-job-c0ffee.out; cat /run/vmrig-job-c0ffee.err >&2; exit $(cat /run/vmrig-job-c0ffee.rc)",
    );
  });
});
