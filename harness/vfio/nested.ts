// Hardware-free VFIO (vfio.nested): per kernel row, vmrig boots a level-1 guest (TCG) with an
// emulated intel-iommu and an emulated PCI device at NESTED_DEVICE_BDF (neither when it passes only
// mdevs, which level 1's kernel makes), and this machine's root shared read-only over virtio-fs so
// level 1 runs the host's own QEMU without carrying it.
// Level 1 is then the VFIO host: each `nestedQemu` workload runs the same preflight and binding
// code as a real host (over SSH: vfio/host-fs.ts), starts the level-2 QEMU with the scenario's
// virtio-mem and vfio-pci devices, judges what QEMU printed against the predictor, and restores
// level 1. Other workloads run in level 1 as usual. The rows are ordinary rows of the one row
// runner (run/runner.ts), which takes what nestedRowHooks adds: boot retry, load-scaled timeouts,
// --jobs and a fresh level 1 after a spoiled one come with it.
import type { CellOutcome, Scenario, ShareSpec, WorkloadSpec } from "../types.ts";
import type { Guest } from "../guest/boot.ts";
import {
  memoryOption,
  qemuBinary,
  qemuInvocation,
  vfioArgs,
  vfioDeviceId,
  virtioMemArgs,
  formatCommandLine,
  type QemuCommand,
  type VfioDevicePlan,
} from "../qemu/argv.ts";
import type { CellRun } from "../run/cell.ts";
import type { AfterBoot, RowHooks } from "../run/row-hooks.ts";
import type { PreparedKernel } from "../run/run-env.ts";
import { NESTED_DEVICE_BDF } from "../scenario/vfio.ts";
import { bindVfioHost } from "./bind.ts";
import { guestHostFs, type HostFs } from "./host-fs.ts";
import { summary } from "./host-run.ts";
import { compareWithQemu, parseQemuDmaWarnings } from "./mapping-budget.ts";
import { vfioPreflight, type VfioPreflight } from "./preflight.ts";

/** Where level 1 mounts this machine's root, and its share tag. */
export const HOST_ROOT_MOUNT = "/vmrig-host";
export const HOST_ROOT_TAG = "vmrig-hostroot";

const hostRootShare: ShareSpec = {
  tag: HOST_ROOT_TAG,
  cache: "auto",
  queueSize: 128,
  sandbox: "none",
  extraArgs: ["--readonly"],
  accessPlatform: false,
};

/** The emulated device level 1 gets at NESTED_DEVICE_BDF, behind the vIOMMU. */
export function nestedDeviceArg(device: string): string {
  const slot = `addr=0x${NESTED_DEVICE_BDF.split(":")[2]!.split(".")[0]}`;
  // virtio without ACCESS_PLATFORM would bypass the vIOMMU; with it, its DMA is translated like a real device's.
  if (device === "virtio-net-pci") return `virtio-net-pci,${slot},romfile=,iommu_platform=on,disable-legacy=on`;
  return `${device},${slot},romfile=`;
}

/** Mount the host root read-only with level 1's own /dev, /proc, /sys, /tmp, /run inside, for chroot. */
export const HOST_ROOT_SETUP = [
  `mkdir -p ${HOST_ROOT_MOUNT}`,
  `mount -t virtiofs -o ro ${HOST_ROOT_TAG} ${HOST_ROOT_MOUNT}`,
  `for m in dev proc sys tmp run; do mount --rbind /$m ${HOST_ROOT_MOUNT}/$m || exit 1; done`,
].join(" && ");

/**
 * Pure: the level-2 QEMU command line (no kernel: its firmware enumerating PCI is the
 * passthrough check), run by the row's QEMU build when it names one (QEMU builds as rows).
 */
export function levelTwoArgv(
  s: Scenario,
  devices: VfioDevicePlan[],
  qemu?: QemuCommand,
): { binary: string; args: string[] } {
  const virtioMem = s.memory?.virtioMem ?? [];
  const args = [
    "-nodefaults",
    "-machine",
    "q35,accel=tcg",
    "-cpu",
    "max",
    "-m",
    memoryOption(s.vfio!.nested!.memoryBytes, virtioMem),
    "-smp",
    "1",
    "-display",
    "none",
    "-no-reboot",
    "-monitor",
    "stdio",
    ...virtioMemArgs(virtioMem, false),
    ...vfioArgs(devices),
  ];
  return qemu ? qemuInvocation(qemu, args) : { binary: qemuBinary("x86_64"), args };
}

/**
 * Pure: the level-1 shell script that runs level 2. The monitor is a FIFO on stdin so vmrig can
 * wait for QEMU to be up (its monitor prompt) before giving the firmware `runSeconds`, then ask
 * `info pci` and quit. Prints QEMU's monitor output on stdout, its stderr on stderr, exits as it did.
 */
export function levelTwoScript(commandLine: string, runSeconds: number): string {
  const tenths = Math.round(runSeconds * 10);
  return [
    "trap '' PIPE",
    "d=$(mktemp -d)",
    "mkfifo $d/in",
    `(chroot ${HOST_ROOT_MOUNT} ${commandLine} <$d/in >$d/out 2>$d/err; echo $? >$d/rc) &`,
    "exec 3>$d/in",
    // Up to 120 s for QEMU to start (nested TCG is slow); then the firmware's time.
    "i=0; while ! grep -q '(qemu)' $d/out 2>/dev/null && [ ! -e $d/rc ] && [ $i -lt 1200 ]; " +
      "do usleep 100000; i=$((i+1)); done",
    'echo "vmrig-l2-ready-after-ds=$i" >&2',
    `i=0; while [ ! -e $d/rc ] && [ $i -lt ${tenths} ]; do usleep 100000; i=$((i+1)); done`,
    // A QEMU that refused to start (QEMU >= 10.2 over the mapping budget) has closed the FIFO:
    // writing to it would kill this shell with SIGPIPE and lose QEMU's message and status.
    "[ -e $d/rc ] || { echo 'info pci' >&3; usleep 500000; echo quit >&3; }; exec 3>&-; wait",
    "cat $d/out; cat $d/err >&2; rc=$(cat $d/rc); rm -rf $d; exit $rc",
  ].join("\n");
}

/**
 * Pure: the device in `info pci` output, by its QEMU id (`id "hostdev0"`, set by vfioArgs) or by
 * vendor:device, and how many BARs the firmware mapped (I/O or memory).
 */
export function findInInfoPci(
  infoPci: string,
  by: { qemuId: string } | { vendor: string; device: string },
): { present: boolean; barsMapped: number; ids?: string; text?: string } {
  const blocks = infoPci.split(/(?=^\s*Bus\s+\d+, device)/m);
  const hit =
    "qemuId" in by
      ? blocks.find((b) => b.includes(`id "${by.qemuId}"`))
      : blocks.find((b) =>
          b
            .toLowerCase()
            .includes(`pci device ${`${by.vendor.replace(/^0x/, "")}:${by.device.replace(/^0x/, "")}`.toLowerCase()}`),
        );
  if (!hit) return { present: false, barsMapped: 0 };
  const ids = /PCI device ([0-9a-f]{4}:[0-9a-f]{4})/i.exec(hit)?.[1];
  return {
    present: true,
    barsMapped: (hit.match(/BAR\d+: .* at 0x/g) ?? []).length,
    ...(ids ? { ids } : {}),
    text: hit.trim(),
  };
}

/**
 * What a vfio.nested scenario adds to each kernel row's guests (the one row runner runs them):
 * the vIOMMU, the emulated device and the host root share; level 1's own check once it is up;
 * and the nestedQemu cells. The row's `qemu:` runs level 2, so level 1 boots on the host's QEMU.
 */
export function nestedRowHooks(s: Scenario, k: Pick<PreparedKernel, "qemu">): RowHooks | undefined {
  const nested = s.vfio?.nested;
  if (!nested) return undefined;
  const common: RowHooks = {
    bootOnHostQemu: true,
    shares: [{ spec: hostRootShare, hostDir: "/" }],
    afterBoot: (guest, t) => levelOneReady(guest, k.qemu, t.stepMs),
    cellRunners: { nestedQemu: (w, guest, t) => nestedQemuCell(guest, s, w as NestedQemu, t.stepMs, k.qemu) },
  };
  const mdevs = s.vfio!.devices.flatMap((d) => (d.kind === "mdev" ? [`${d.type} on ${d.parent}`] : []));
  // An mdev is made by level 1's own kernel and needs no IOMMU: no vIOMMU, no emulated device to slow TCG down.
  if (mdevs.length === s.vfio!.devices.length) {
    return { ...common, guestName: "level 1 (mdev host, host root over virtio-fs)", evidence: { levelOne: { mdevs } } };
  }
  return {
    ...common,
    guestName: "level 1 (intel-iommu, host root over virtio-fs)",
    evidence: { levelOne: { device: nested.device, at: NESTED_DEVICE_BDF, viommu: "intel" } },
    cmdline: ["intel_iommu=on"],
    qemuExtras: { viommu: "intel", extraDevices: [nestedDeviceArg(nested.device)] },
  };
}

/** Mounts the host root in level 1 and asks the level-2 QEMU its version: can level 1 run it? */
async function levelOneReady(guest: Guest, qemu: QemuCommand | undefined, stepMs: number): Promise<AfterBoot> {
  const probe = qemu ? qemuInvocation(qemu, ["--version"]) : { binary: qemuBinary("x86_64"), args: ["--version"] };
  const askVersion = formatCommandLine(probe.binary, probe.args);
  const setup = await guest.exec(`${HOST_ROOT_SETUP} && chroot ${HOST_ROOT_MOUNT} ${askVersion}`, stepMs);
  const version = setup.kind === "exited" && setup.code === 0 ? /version\s+(\S+)/.exec(setup.stdout)?.[1] : undefined;
  if (!version) {
    const said = setup.kind === "exited" ? (setup.stderr.trim() || setup.stdout.trim()).slice(-300) : setup.kind;
    return { problem: `level 1 cannot run the host's QEMU from ${HOST_ROOT_MOUNT}: ${said}` };
  }
  const whose = qemu ? `Debian's, ${qemu.source.split(" ")[1]}` : "this host's";
  return {
    evidence: { levelTwoQemu: version, ...(qemu ? { levelTwoQemuSource: qemu.source } : {}) },
    descriptionSuffix: `; level 2: QEMU ${version} (${whose}, over virtio-fs)`,
  };
}

type NestedQemu = Extract<WorkloadSpec, { kind: "nestedQemu" }>;

/**
 * One level-2 start in level 1: preflight, bind, QEMU, restore; the outcome says what QEMU did
 * and whether the predictor agreed. A level 1 that is gone, still runs a level 2, or was not put
 * back is spoiled: the row's remaining workloads get a fresh one.
 */
async function nestedQemuCell(
  guest: Guest,
  s: Scenario,
  w: NestedQemu,
  stepMs: number,
  qemu?: QemuCommand,
): Promise<CellRun> {
  const started = Date.now();
  const evidence: Record<string, unknown> = {};
  const artifacts: Record<string, string> = {};
  const done = (outcome: CellOutcome, spoiled = false): CellRun => {
    const guestSpoiled = spoiled || Boolean(guest.deathReason());
    return { outcome, evidence, artifacts, durationMs: Date.now() - started, guestSpoiled };
  };
  const fs = guestHostFs((c, ms) => guest.exec(c, ms), { name: "level-1 guest", deadlineMs: Math.min(stepMs, 60_000) });
  const vfio = { ...s.vfio!, ...(w.dmaEntryLimit !== undefined ? { dmaEntryLimit: w.dmaEntryLimit } : {}) };
  // Level 2 has anonymous RAM: memory.backend is about the guest vmrig boots, not level 2.
  const memory = s.memory ? { virtioMem: s.memory.virtioMem } : undefined;
  const pre = await vfioPreflight(fs, {
    vfio,
    ...(memory ? { memory } : {}),
    memoryBytes: vfio.nested!.memoryBytes,
    accel: "tcg",
    arch: "x86_64",
  });
  evidence.preflight = summary(pre);
  evidence.prediction = pre.budget;
  if (pre.problems.length) {
    return done({ kind: "infra", reason: `level-1 preflight refused: ${pre.problems.join("; ")}` });
  }

  const log: string[] = [];
  let binding;
  try {
    binding = await bindVfioHost(fs, pre, { timeoutMs: Math.min(stepMs, 60_000), log: (l) => log.push(l) });
  } catch (e) {
    evidence.binding = log;
    return done({ kind: "infra", reason: `binding in level 1 failed: ${(e as Error).message}` }, true);
  }
  evidence.changes = binding.changes;
  let outcome: CellOutcome;
  let spoiled = true;
  try {
    const { binary, args } = levelTwoArgv(s, binding.qemuDevices, qemu);
    const commandLine = formatCommandLine(binary, args);
    evidence.levelTwoCommand = commandLine;
    artifacts[`level2-${w.id}.cmdline.txt`] = commandLine + "\n";
    const r = await guest.exec(levelTwoScript(commandLine, w.runSeconds), stepMs);
    if (r.kind === "timeout") {
      outcome = { kind: "hang", what: `level-2 QEMU did not quit in ${Math.round(stepMs / 1000)} s`, wedged: false };
    } else if (r.kind === "lost") {
      outcome = { kind: "infra", reason: `lost level 1: ${r.error}` };
    } else {
      artifacts[`level2-${w.id}.stderr.txt`] = r.stderr;
      const verdict = levelTwoVerdict(pre, binding.qemuDevices, r, w.mappingWarning);
      Object.assign(evidence, verdict.evidence);
      [outcome, spoiled] = [verdict.outcome, false];
    }
  } finally {
    const restore = await binding.restore();
    evidence.restore = restore;
    evidence.binding = log;
    // Only a level 1 that answered the restore can be asked again.
    const mdevs = restore.failed.length ? [] : await mdevsAfterRestore(fs, binding.qemuDevices);
    if (mdevs.length) evidence.mdevsAfterRestore = mdevs;
    const left = mdevs.flatMap((m) =>
      "unanswered" in m ? [`${m.sysfsdev}: ${m.unanswered}`] : m.present ? [`${m.sysfsdev} is still there`] : [],
    );
    if (restore.failed.length || left.length) {
      const reason = `could not restore level 1: ${[...restore.failed, ...left].join("; ")}`;
      [outcome, spoiled] = [{ kind: "infra", reason }, true];
    }
  }
  return done(outcome, spoiled);
}

type MdevCheck = { sysfsdev: string; present: boolean } | { sysfsdev: string; unanswered: string };

/** Each mdev the cell created, looked up again once restored: a removed one is gone from sysfs. */
function mdevsAfterRestore(fs: HostFs, devices: VfioDevicePlan[]): Promise<MdevCheck[]> {
  const created = devices.flatMap((d) => ("sysfsdev" in d ? [d.sysfsdev] : []));
  return Promise.all(
    created.map((sysfsdev) =>
      fs.exists(sysfsdev).then(
        (present) => ({ sysfsdev, present }),
        (e: Error) => ({ sysfsdev, unanswered: e.message }),
      ),
    ),
  );
}

/**
 * Pure: what a level-2 QEMU that exited did, judged against the preflight's prediction: a
 * predictor that disagrees with QEMU is vmrig's problem (INFRA); a refused device, a failed
 * start or a mapping warning is FAIL; the device in level 2's `info pci` is PASS.
 */
export function levelTwoVerdict(
  pre: Pick<VfioPreflight, "budget" | "devices">,
  devices: VfioDevicePlan[],
  r: { code: number; stdout: string; stderr: string },
  mappingWarning: "fail" | "pass" = "fail",
): { outcome: CellOutcome; evidence: Record<string, unknown> } {
  const evidence: Record<string, unknown> = { qemuExit: r.code };
  const ready = /vmrig-l2-ready-after-ds=(\d+)/.exec(r.stderr);
  if (ready) evidence.levelTwoStartMs = Number(ready[1]) * 100;
  evidence.qemuStderr = r.stderr.slice(-4000);
  const warnings = parseQemuDmaWarnings(r.stderr);
  evidence.qemuDmaWarnings = warnings;
  const check = compareWithQemu(pre.budget, warnings);
  evidence.predictorAgrees = check;
  const dev = pre.devices[0];
  const seen = findInInfoPci(r.stdout, { qemuId: vfioDeviceId(0) });
  evidence.levelTwoPci = seen;
  const refused = warnings.find((x) => x.severity === "error");
  const fail = (detail: string) => ({ outcome: { kind: "fail" as const, detail }, evidence });
  if (!check.agrees) {
    const reason = `the predictor disagrees with QEMU: ${check.mismatches.join("; ")}`;
    return { outcome: { kind: "infra", reason }, evidence };
  }
  if (refused) return fail(`QEMU refused the device (${pre.budget.summary}): ${refused.line}`);
  const lastLine = r.stderr.trim().split("\n").pop()?.slice(0, 300) ?? "";
  if (r.code !== 0) return fail(`level-2 QEMU exited ${r.code}: ${lastLine}`);
  const warned = warnings.length
    ? `QEMU warned ${warnings.length}x, as predicted (${pre.budget.summary}): possibly running out of DMA mappings; ` +
      `its limit ${warnings[0]!.maxMappings}, memslots ${warnings[0]!.maxMemslots}; the VM runs on`
    : undefined;
  if (warned && mappingWarning === "fail") return fail(warned);
  if (!seen.present) return fail(`level 2 does not show ${dev?.label ?? "the device"} in info pci`);
  const ids = dev?.vendor && dev.deviceId ? `${dev.vendor}:${dev.deviceId}` : seen.ids;
  const plan = devices[0];
  const as = dev?.device.kind === "mdev" ? ` as ${plan && "sysfsdev" in plan ? plan.sysfsdev : "an mdev"}` : "";
  const bars = `${seen.barsMapped} BARs mapped by its firmware`;
  const detail =
    `${dev!.label}${ids ? ` [${ids}]` : ""} passed to level 2${as} (${bars}); ${pre.budget.summary}` +
    (warned ? `; ${warned} (mappingWarning: pass)` : "");
  return { outcome: { kind: "pass", detail }, evidence };
}
