// The cell's rules (harness/classify/cell-outcome.ts), one row per rule, each fed what real
// steps left behind: kernel consoles captured under QEMU (test/fixtures/consoles/README.md),
// the probe's getdents lines captured on Debian 6.18.15 (as in getdents-sweep.test.ts), a
// killed daemon's /proc stat (as in daemon-death.test.ts), and the faults of
// scenarios/virtiofsd-faults.yaml as the loader and FaultPlan make them. The liveness results
// come from livenessFromProbe over the probe's `alive` output, so each row chains the real rules.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { CellOutcome } from "../../harness/types.ts";
import type { ExecResult } from "../../harness/guest/ssh.ts";
import {
  daemonDiedVerdict,
  faultsStopTheVm,
  hostPreparationFailed,
  judgedVerdict,
  livenessFromProbe,
  lostGuestVerdict,
  timedOutVerdict,
  unplannedDaemonDeath,
  verdictAfterFaults,
  type CellVerdict,
  type FaultsOutcome,
} from "../../harness/classify/cell-outcome.ts";
import { findingsForEvidence, firstFatalFinding } from "../../harness/classify/console-witness.ts";
import { readdir } from "../../harness/workloads/readdir.ts";
import { judgeSweep, parseSweep } from "../../harness/workloads/getdents-sweep.ts";
import { judgeFuseLie } from "../../harness/workloads/fuse-lies.ts";
import { describeExit, parseZombieExit } from "../../harness/virtiofs/daemon.ts";
import { parseScenario } from "../../harness/scenario/load.ts";
import { FaultPlan } from "../../harness/run/faults.ts";
import { repoRoot } from "../../harness/util/paths.ts";

const consoleText = (f: string) => readFileSync(path.join(repoRoot, "test/fixtures/consoles", f), "utf8");
const crashIn = (f: string) => firstFatalFinding(consoleText(f), 0);
const reportedIn = (f: string) => findingsForEvidence(consoleText(f), 0);
const verdict = (outcome: CellOutcome, guestSpoiled: boolean): CellVerdict => ({ outcome, guestSpoiled });
const crashCell = (f: string, title: string, signature: string): CellVerdict =>
  verdict({ kind: "crash", title, excerpt: crashIn(f)!.excerpt, signature }, true);

const SYSRQ_PANIC = "x86-7.3-sysrq-panic.log";
const SYSRQ_TITLE = "Kernel panic - not syncing: sysrq triggered crash";
const SYSRQ_SIGNATURE =
  `${SYSRQ_TITLE} | ` + "sysrq_handle_crash < __handle_sysrq < write_sysrq_trigger < proc_reg_write < vfs_write";
// A hung-task report (virtiofsd SIGSTOPped mid-read): on the console, but not fatal.
const HUNG_TASK = "x86-hung-task-virtiofsd-stopped-1.log";
const BOOT = "x86-7.3-vmrig-boot.log";

const exited = (code: number, stdout: string, stderr = ""): Extract<ExecResult, { kind: "exited" }> => ({
  kind: "exited",
  code,
  stdout,
  stderr,
  ms: 12,
});
// Captured from Debian 6.18.15 with swiotlb=force (getdents-sweep.test.ts): one probe line per size.
const SWEEP_SIZES = [4096, 65536, 131072, 262144, 524288, 1048576, 2097152];
const sweepLine = (b: number) =>
  b <= 262144
    ? `{"op":"getdents","bufferSize":${b},"entries":5000,"calls":3,"ok":true}`
    : `{"op":"getdents","ok":false,"errno":"ENOMEM","errnoNum":12,"syscall":"getdents64",` +
      `"entries":0,"bufferSize":${b}}`;
const GETDENTS_OK = exited(0, `${sweepLine(4096)}\n`);
const GETDENTS_ENOMEM = exited(1, `${sweepLine(524288)}\n`);
// The guest's answer when the probe binary was missing from the image (probe-judgement.test.ts).
const PROBE_MISSING = exited(127, "", "sh: vmrig-probe: not found\n");

// `vmrig-probe alive DIR` as images/probe/vmrig-probe.c prints it, and what SSH gives when it cannot.
const ALIVE = exited(0, `{"op":"alive","ok":true}\n`);
const ALIVE_ENOTCONN = exited(1, `{"op":"alive","ok":false,"errno":"ENOTCONN","errnoNum":107,"syscall":"stat"}\n`);
const NO_ANSWER: ExecResult = { kind: "timeout", stdout: "", stderr: "", ms: 5000 };
const SSH_LOST: ExecResult = { kind: "lost", error: "SSH connection closed", stdout: "", stderr: "", ms: 3 };
const SHARE = "/mnt/share";
const answers = livenessFromProbe(ALIVE, SHARE, 5000);
const wedged = livenessFromProbe(NO_ANSWER, SHARE, 5000);

const readdirOf = (entries: number) => ({
  id: "readdir",
  kind: "readdir" as const,
  share: "share",
  entries,
  bufferBytes: 4096,
});
const judgeReaddir = (exec: typeof GETDENTS_OK, hostEntries = 5000) =>
  readdir.judge(readdirOf(hostEntries), exec, {}, { guestDir: SHARE });

// The syzbot reproducer's report when the kernel refuses the lie (vmrig-fuse-lie.c's format):
// a PASS the kind believes only once the guest is found healthy.
const refusedLie = judgeFuseLie(
  "mode-flip-dnotify",
  exited(
    0,
    JSON.stringify({
      op: "fuse-lie",
      entry: "dir",
      dnotify: true,
      mnt: "/tmp/vmrig-fuse-lie-131",
      ok: true,
      steps: { mount: "ok", open: "ok", dnotify: "ok", fstat: "EIO", read: "skipped", close: "ok", umount: "ok" },
      requests: { lookup: 1, getattr: 2, open: 1, read: 0, release: 1 },
      replyErrors: [],
    }) + "\n",
  ),
);
const REFUSED = { kind: "pass", detail: "refused: fstat -> -EIO" } as const;
// The dnotify BUG came from a worker after the reproducer had printed its report: when the
// command returned the console held only the boot lines before it.
const DNOTIFY = "x86-dnotify-bad-inode-bug-1.log";
const dnotifyBefore = consoleText(DNOTIFY).split("------------[ cut here ]")[0]!;

interface Row {
  rule: string;
  actual: () => unknown;
  expected: unknown;
}

const judgedRows: Row[] = [
  {
    rule: "a probe report of every entry is PASS, the guest kept; a hung-task report (not fatal) changes nothing",
    actual: async () => judgedVerdict({ judgement: await judgeReaddir(GETDENTS_OK), crash: crashIn(HUNG_TASK) }),
    expected: verdict({ kind: "pass", detail: "5000 entries" }, false),
  },
  {
    rule: "a probe report with more entries than the host made is FAIL, the guest kept",
    actual: async () => judgedVerdict({ judgement: await judgeReaddir(GETDENTS_OK, 4000) }),
    expected: verdict({ kind: "fail", detail: "saw 5000 entries, the host has 4000" }, false),
  },
  {
    rule: "a probe that printed no report is INFRA, the guest kept",
    actual: async () => judgedVerdict({ judgement: await judgeReaddir(PROBE_MISSING) }),
    expected: verdict(
      { kind: "infra", reason: "probe printed no result (exit 127): sh: vmrig-probe: not found" },
      false,
    ),
  },
  {
    rule: "an errno on a mount that still answers is ERRNO, mount healthy, where it happened kept, the guest kept",
    actual: () =>
      judgedVerdict({
        judgement: judgeSweep(parseSweep(SWEEP_SIZES.map(sweepLine).join("\n"), SWEEP_SIZES), 5000),
        liveness: answers,
      }),
    expected: verdict(
      {
        kind: "errno",
        errno: "ENOMEM",
        mountHealthy: true,
        detail: "getdents64 ENOMEM at 512K (largest that worked: 256K)",
        at: "512K",
      },
      false,
    ),
  },
  {
    rule: "an errno after which the mount no longer answers is ERRNO, mount unhealthy, the guest spoiled",
    actual: async () => judgedVerdict({ judgement: await judgeReaddir(GETDENTS_ENOMEM), liveness: wedged }),
    expected: verdict({ kind: "errno", errno: "ENOMEM", mountHealthy: false, detail: "getdents: ENOMEM" }, true),
  },
  {
    rule: "a crash during an otherwise passing command is CRASH, the guest spoiled",
    actual: async () => judgedVerdict({ judgement: await judgeReaddir(GETDENTS_OK), crash: crashIn("x86-bug-1.log") }),
    expected: crashCell(
      "x86-bug-1.log",
      "kernel BUG at /tmp/vmk/mod/provoke.c:16",
      "kernel BUG at /tmp/vmk/mod/provoke.c:16 | " +
        "provoke_BUG < direct_write < full_proxy_write < vfs_write < ksys_write",
    ),
  },
  {
    rule: "a crash also outranks an errno (no liveness probe needed)",
    actual: async () => judgedVerdict({ judgement: await judgeReaddir(GETDENTS_ENOMEM), crash: crashIn(SYSRQ_PANIC) }),
    expected: crashCell(SYSRQ_PANIC, SYSRQ_TITLE, SYSRQ_SIGNATURE),
  },
  {
    rule: "a checked PASS with a guest that answers and a quiet kernel stays PASS, the guest kept",
    actual: () => judgedVerdict({ judgement: refusedLie, liveness: answers, reported: reportedIn(BOOT) }),
    expected: verdict(REFUSED, false),
  },
  {
    rule: "a checked PASS on a guest that no longer answers is FAIL, the guest spoiled",
    actual: () =>
      judgedVerdict({ judgement: refusedLie, liveness: livenessFromProbe(SSH_LOST, "/", 5000), reported: [] }),
    expected: verdict(
      { kind: "fail", detail: "refused, but the guest is unhealthy afterwards: guest lost: SSH connection closed" },
      true,
    ),
  },
  {
    rule: "a checked PASS after which the kernel reported anything (a WARNING) is FAIL, the guest spoiled",
    actual: () => judgedVerdict({ judgement: refusedLie, liveness: answers, reported: reportedIn("x86-warning.log") }),
    expected: verdict(
      {
        kind: "fail",
        detail: "refused, but the kernel reported: WARNING: at /tmp/vmk/mod/provoke.c:15 provoke_WARNING",
      },
      true,
    ),
  },
  {
    rule: "a crash the kernel printed after a checked PASS returned outranks it",
    actual: () =>
      judgedVerdict({
        judgement: refusedLie,
        liveness: answers,
        reported: findingsForEvidence(dnotifyBefore, 0),
        crash: crashIn(DNOTIFY),
      }),
    expected: crashCell(
      DNOTIFY,
      "kernel BUG at fs/notify/dnotify/dnotify.c:134",
      "kernel BUG at fs/notify/dnotify/dnotify.c:134 | dnotify_free_mark",
    ),
  },
];

const lost = { workloadId: "sysrq-crash", error: "SSH connection closed", consoleSinceStart: consoleText(BOOT) };
const lostRows: Row[] = [
  {
    rule: "SSH lost with a crash on the console is that CRASH, outranking pvpanic",
    actual: () =>
      lostGuestVerdict({
        ...lost,
        crash: crashIn(SYSRQ_PANIC),
        guestPanicked: true,
        deathReason: "guest kernel panicked (pvpanic)",
        consoleSinceStart: consoleText(SYSRQ_PANIC),
      }),
    expected: crashCell(SYSRQ_PANIC, SYSRQ_TITLE, SYSRQ_SIGNATURE),
  },
  {
    rule: "SSH lost with no crash on the console but pvpanic is CRASH, with the console's last 4000 characters",
    actual: () => lostGuestVerdict({ ...lost, guestPanicked: true, deathReason: "guest kernel panicked (pvpanic)" }),
    expected: verdict(
      { kind: "crash", title: "Kernel panic (pvpanic)", excerpt: consoleText(BOOT).slice(-4000) },
      true,
    ),
  },
  {
    rule: "SSH lost and QEMU gone without a panic is INFRA naming the death, the guest spoiled",
    actual: () => lostGuestVerdict({ ...lost, guestPanicked: false, deathReason: "QEMU exited (signal SIGKILL)" }),
    expected: verdict(
      { kind: "infra", reason: "lost the guest during sysrq-crash: QEMU exited (signal SIGKILL)" },
      true,
    ),
  },
  {
    rule: "SSH lost with nothing dead is INFRA naming SSH's error",
    actual: () => lostGuestVerdict({ ...lost, crash: crashIn(HUNG_TASK), guestPanicked: false }),
    expected: verdict({ kind: "infra", reason: "lost the guest during sysrq-crash: SSH connection closed" }, true),
  },
];

// The scenario's `kill` cell: virtiofsd SIGKILLed 1.5 s into the read; it fired at 1.503 s.
const scenarioFile = path.join(repoRoot, "scenarios/virtiofsd-faults.yaml");
const scenario = parseScenario(readFileSync(scenarioFile, "utf8"), scenarioFile);
const planFor = (workload: string) =>
  new FaultPlan(
    {} as ConstructorParameters<typeof FaultPlan>[0],
    scenario.faults!.filter((f) => f.during === workload),
  );
const killPlan = planFor("kill");
killPlan.log[0]!.firedMs = 1503;

const timeout = { workloadId: "kill", stepMs: 12_000 };
const timedOutRows: Row[] = [
  {
    rule: "past its deadline, the mount answering: HANG, not wedged, the guest spoiled (a hung task is no CRASH)",
    actual: () => timedOutVerdict({ ...timeout, crash: crashIn(HUNG_TASK), liveness: answers }),
    expected: verdict({ kind: "hang", what: "kill did not finish in 12 s", wedged: false }, true),
  },
  {
    rule: "a step past its deadline whose mount no longer answers is HANG, wedged",
    actual: () => timedOutVerdict({ ...timeout, liveness: wedged }),
    expected: verdict(
      { kind: "hang", what: "kill did not finish in 12 s; the mount no longer answers (wedged)", wedged: true },
      true,
    ),
  },
  {
    rule: "a HANG names the planned faults that fired",
    actual: () => timedOutVerdict({ ...timeout, firedFaults: killPlan.describeFired(), liveness: answers }),
    expected: verdict(
      { kind: "hang", what: "kill did not finish in 12 s after planned virtiofsd-kill share at 1.5 s", wedged: false },
      true,
    ),
  },
  {
    rule: "a crash on the console outranks the step's deadline",
    actual: () => timedOutVerdict({ ...timeout, crash: crashIn(SYSRQ_PANIC) }),
    expected: crashCell(SYSRQ_PANIC, SYSRQ_TITLE, SYSRQ_SIGNATURE),
  },
];

// A SIGKILLed zombie's /proc/<pid>/stat, captured on the project host (daemon-death.test.ts).
const killedZombie =
  "1137 (python3) Z 1076 1073 4626 0 -1 4228172 231 0 0 0 0 0 0 0 20 0 1 0 216434 0 0 18446744073709551615 " +
  "0 0 0 0 0 0 0 16781312 2 1 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 9\n";
const virtiofsdKilled = describeExit({ name: "virtiofsd[share]", ...parseZombieExit(killedZombie)! });
const unplanned = () => false;
const daemonRows: Row[] = [
  {
    rule: "a daemon's death the plan did not cause is a daemon death",
    actual: () => unplannedDaemonDeath(virtiofsdKilled, unplanned),
    expected: "virtiofsd[share] exited (signal SIGKILL)",
  },
  {
    rule: "a daemon's death the plan caused is not",
    actual: () => unplannedDaemonDeath(virtiofsdKilled, (r) => r === virtiofsdKilled),
    expected: undefined,
  },
  {
    rule: "QEMU's exit is not a daemon's death (the lost guest's rules judge it)",
    actual: () => unplannedDaemonDeath("QEMU exited (status 1)", unplanned),
    expected: undefined,
  },
  {
    rule: "the guest kernel's panic is not a daemon's death",
    actual: () => unplannedDaemonDeath("guest kernel panicked (pvpanic)", unplanned),
    expected: undefined,
  },
  {
    rule: "an unplanned daemon death is INFRA, the VM stopped, the guest spoiled",
    actual: () => daemonDiedVerdict("stop-cont", virtiofsdKilled),
    expected: verdict(
      { kind: "infra", reason: "virtiofsd[share] exited (signal SIGKILL) during stop-cont; VM stopped" },
      true,
    ),
  },
];

const noFaultState: FaultsOutcome = { unfired: [], networkCut: false, killedDaemon: false, crashed: false };
const hang: CellOutcome = { kind: "hang", what: "kill did not finish in 12 s", wedged: true };
const pass: CellOutcome = { kind: "pass", detail: "32 MiB verified (4 passes)" };
const faultRows: Row[] = [
  {
    rule: "a planned fault that never fired makes a PASS INFRA: the scenario did not test what it says",
    actual: () =>
      verdictAfterFaults(
        verdict(pass, false),
        { ...noFaultState, unfired: planFor("stop-cont").unfired() },
        "stop-cont",
        812,
      ),
    expected: verdict(
      { kind: "infra", reason: "planned virtiofsd-stop (faults[0], at 1 s) did not fire: stop-cont ended after 0.8 s" },
      false,
    ),
  },
  {
    rule: "an unfired fault leaves a HANG as it is",
    actual: () =>
      verdictAfterFaults(
        verdict(hang, true),
        { ...noFaultState, unfired: planFor("stop-cont").unfired() },
        "stop-cont",
        12_004,
      ),
    expected: verdict(hang, true),
  },
  {
    rule: "an unfired fault leaves a CRASH as it is",
    actual: () =>
      verdictAfterFaults(
        crashCell(SYSRQ_PANIC, SYSRQ_TITLE, SYSRQ_SIGNATURE),
        { ...noFaultState, unfired: planFor("sysrq-crash").unfired() },
        "sysrq-crash",
        900,
      ),
    expected: crashCell(SYSRQ_PANIC, SYSRQ_TITLE, SYSRQ_SIGNATURE),
  },
  {
    rule: "a killed daemon stops the VM: the HANG says so, the guest spoiled",
    actual: () => verdictAfterFaults(verdict(hang, true), { ...noFaultState, killedDaemon: true }, "kill", 12_004),
    expected: verdict({ ...hang, what: "kill did not finish in 12 s; VM stopped" }, true),
  },
  {
    rule: "a network cut stops the VM after a PASS: the guest spoiled, the HANG of a cut is not 'VM stopped'",
    actual: () => [
      verdictAfterFaults(verdict(pass, false), { ...noFaultState, networkCut: true }, "network-cut", 6_400),
      verdictAfterFaults(verdict(hang, true), { ...noFaultState, networkCut: true }, "network-cut", 12_004),
    ],
    expected: [verdict(pass, true), verdict(hang, true)],
  },
  {
    rule: "a planned sysrq crash stops the VM",
    actual: () => faultsStopTheVm({ ...noFaultState, crashed: true }),
    expected: true,
  },
];

const livenessRows: Row[] = [
  {
    rule: "the probe's ok report: the mount answers",
    actual: () => livenessFromProbe(ALIVE, SHARE, 5000),
    expected: { ok: true, detail: "/mnt/share answered in 12 ms" },
  },
  {
    rule: "the probe's errno: the mount does not answer, the errno says why",
    actual: () => livenessFromProbe(ALIVE_ENOTCONN, SHARE, 5000),
    expected: { ok: false, detail: "/mnt/share: ENOTCONN" },
  },
  {
    rule: "no report from the probe: not alive, with its exit code",
    actual: () => livenessFromProbe(PROBE_MISSING, SHARE, 5000),
    expected: { ok: false, detail: "/mnt/share: exit 127" },
  },
  {
    rule: "no answer within the deadline: not alive",
    actual: () => livenessFromProbe(NO_ANSWER, SHARE, 5000),
    expected: { ok: false, detail: "/mnt/share did not answer within 5 s" },
  },
  {
    rule: "SSH lost: not alive, with SSH's error",
    actual: () => livenessFromProbe(SSH_LOST, SHARE, 5000),
    expected: { ok: false, detail: "guest lost: SSH connection closed" },
  },
];

const hostRows: Row[] = [
  {
    rule: "a failure preparing the host is INFRA and leaves the guest usable",
    actual: () => hostPreparationFailed("readdir", "ENOSPC: no space left on device, write"),
    expected: verdict(
      { kind: "infra", reason: "preparing readdir on the host failed: ENOSPC: no space left on device, write" },
      false,
    ),
  },
];

const tables: Array<[string, Row[]]> = [
  ["a command that finished and was judged", judgedRows],
  ["a step whose SSH connection was lost", lostRows],
  ["a step past its deadline", timedOutRows],
  ["the daemons behind the guest", daemonRows],
  ["the planned faults, once the step is over", faultRows],
  ["the liveness probe", livenessRows],
  ["the host's preparation", hostRows],
];

describe.each(tables)("%s", (_, rows) => {
  it.each(rows)("$rule", async ({ actual, expected }) => {
    expect(await actual()).toEqual(expected);
  });
});

describe("evidence a rule needs", () => {
  it("is the runner's bug when missing: no liveness after an errno or a deadline, with nothing crashed", async () => {
    const errno = await judgeReaddir(GETDENTS_ENOMEM);
    expect(() => judgedVerdict({ judgement: errno })).toThrow(/liveness probe's result is missing for an errno/);
    expect(() => judgedVerdict({ judgement: refusedLie })).toThrow(/missing for a checked PASS/);
    expect(() => timedOutVerdict(timeout)).toThrow(/missing for a timed-out step/);
  });
});
