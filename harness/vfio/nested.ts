// Hardware-free VFIO (vfio.nested): per kernel row, vmrig boots a level-1 guest (TCG) with an
// emulated intel-iommu and an emulated PCI device at NESTED_DEVICE_BDF, and this machine's root
// shared read-only over virtio-fs so level 1 runs the host's own QEMU without carrying it.
// Level 1 is then the VFIO host: each `nestedQemu` workload runs the same preflight and binding
// code as a real host (over SSH: vfio/host-fs.ts), starts the level-2 QEMU with the scenario's
// virtio-mem and vfio-pci devices, judges what QEMU printed against the predictor, and restores
// level 1. Other workloads run in level 1 as usual.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { CellOutcome, CellResult, KernelRowResult, RunResult, Scenario, ShareSpec, WorkloadSpec } from "../types.ts";
import { bootGuest, BootFailure, type Guest } from "../guest/boot.ts";
import { generateClientKey } from "../guest/ssh.ts";
import { memoryOption, qemuBinary, qemuInvocation, vfioArgs, vfioDeviceId, virtioMemArgs, formatCommandLine, type QemuCommand, type VfioDevicePlan } from "../qemu/argv.ts";
import { expectationMet } from "../classify/expect.ts";
import { runCell, workloadShare } from "../run/cell.ts";
import { collectGuestFacts } from "../run/guest-facts.ts";
import type { PreparedKernel, RunEnv } from "../run/run-env.ts";
import { NESTED_DEVICE_BDF } from "../scenario/vfio.ts";
import { bindVfioHost } from "./bind.ts";
import { guestHostFs } from "./host-fs.ts";
import { summary } from "./host-run.ts";
import { compareWithQemu, parseQemuDmaWarnings } from "./mapping-budget.ts";
import { vfioPreflight } from "./preflight.ts";

/** Where level 1 mounts this machine's root, and its share tag. */
export const HOST_ROOT_MOUNT = "/vmrig-host";
export const HOST_ROOT_TAG = "vmrig-hostroot";

const hostRootShare: ShareSpec = {
  tag: HOST_ROOT_TAG, cache: "auto", queueSize: 128, sandbox: "none", extraArgs: ["--readonly"], accessPlatform: false,
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
export function levelTwoArgv(s: Scenario, devices: VfioDevicePlan[], qemu?: QemuCommand): { binary: string; args: string[] } {
  const virtioMem = s.memory?.virtioMem ?? [];
  const args = [
      "-nodefaults", "-machine", "q35,accel=tcg", "-cpu", "max",
      "-m", memoryOption(s.vfio!.nested!.memoryBytes, virtioMem), "-smp", "1",
      "-display", "none", "-no-reboot", "-monitor", "stdio",
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
    "trap '' PIPE", "d=$(mktemp -d)", "mkfifo $d/in",
    `(chroot ${HOST_ROOT_MOUNT} ${commandLine} <$d/in >$d/out 2>$d/err; echo $? >$d/rc) &`,
    "exec 3>$d/in",
    // Up to 120 s for QEMU to start (nested TCG is slow); then the firmware's time.
    "i=0; while ! grep -q '(qemu)' $d/out 2>/dev/null && [ ! -e $d/rc ] && [ $i -lt 1200 ]; do usleep 100000; i=$((i+1)); done",
    "echo \"vmrig-l2-ready-after-ds=$i\" >&2",
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
export function findInInfoPci(infoPci: string, by: { qemuId: string } | { vendor: string; device: string }): { present: boolean; barsMapped: number; ids?: string; text?: string } {
  const blocks = infoPci.split(/(?=^\s*Bus\s+\d+, device)/m);
  const hit = "qemuId" in by
    ? blocks.find((b) => b.includes(`id "${by.qemuId}"`))
    : blocks.find((b) => b.toLowerCase().includes(`pci device ${`${by.vendor.replace(/^0x/, "")}:${by.device.replace(/^0x/, "")}`.toLowerCase()}`));
  if (!hit) return { present: false, barsMapped: 0 };
  const ids = /PCI device ([0-9a-f]{4}:[0-9a-f]{4})/i.exec(hit)?.[1];
  return { present: true, barsMapped: (hit.match(/BAR\d+: .* at 0x/g) ?? []).length, ...(ids ? { ids } : {}), text: hit.trim() };
}

export async function runNestedVfioScenario(s: Scenario, kernels: PreparedKernel[], env: RunEnv, result: RunResult): Promise<RunResult> {
  for (const k of kernels) {
    if (env.signal.aborted) break;
    result.rows.push(await nestedRow(s, k, env, result));
    await env.onUpdate(result);
  }
  return result;
}

async function nestedRow(s: Scenario, k: PreparedKernel, env: RunEnv, run: RunResult): Promise<KernelRowResult> {
  const label = k.entry.label;
  const nested = s.vfio!.nested!;
  const rowDir = path.join(env.runDir, label);
  const rel = (f: string) => path.relative(env.runDir, path.join(rowDir, f));
  const row: KernelRowResult = {
    label,
    description: k.artifact.description,
    accel: env.accel.name,
    artifacts: {
      console: rel("console.log"),
      qemuCmdline: rel("qemu-cmdline.txt"),
      qemuStderr: rel("qemu-stderr.log"),
    },
    cells: [],
    evidence: { kernel: k.artifact.identity, release: k.artifact.release, image: k.image.identity, levelOne: { device: nested.device, at: NESTED_DEVICE_BDF, viommu: "intel" } },
  };
  const scale = env.accel.timeScale;
  const t = { bootMs: s.timeouts.bootSeconds * 1000 * scale, stepMs: s.timeouts.stepSeconds * 1000 * scale, livenessMs: s.timeouts.livenessSeconds * 1000 * scale };
  const record = (w: WorkloadSpec, outcome: CellOutcome, evidence: Record<string, unknown>, durationMs: number) => {
    if (env.signal.aborted) outcome = { kind: "not-run", reason: "run interrupted" };
    const expected = k.entry.expect[w.id] ?? s.expectDefault;
    const cell: CellResult = { kernel: label, workload: w.id, outcome, expected, met: expectationMet(outcome, expected), durationMs, evidence };
    row.cells.push(cell);
    env.progress.cell(label, w.id, outcome);
  };
  const pending = [...s.workloads];
  const work = await mkdtemp(path.join(os.tmpdir(), `vmrig-${label}-`));
  let guest: Guest | undefined;
  try {
    const shares = await Promise.all(s.shares.map(async (spec) => {
      const hostDir = path.join(work, "shares", spec.tag);
      await mkdir(hostDir, { recursive: true });
      return { spec, hostDir };
    }));
    env.progress.stage(label, "booting level 1 (intel-iommu, host root over virtio-fs)");
    try {
      guest = await bootGuest({
        arch: "x86_64",
        accel: env.accel,
        machine: s.machine,
        kernel: k.artifact,
        image: k.image,
        cmdline: [...s.machine.cmdline, "intel_iommu=on", ...k.entry.cmdline],
        shares: [...shares, { spec: hostRootShare, hostDir: "/" }],
        virtiofsd: env.virtiofsd,
        relay: env.relay,
        virtiofsdLogLevel: env.virtiofsdLogLevel,
        clientKey: generateClientKey(),
        artifactsDir: rowDir,
        socketsDir: path.join(work, "sock"),
        bootTimeoutMs: t.bootMs,
        signal: env.signal,
        qemuExtras: { viommu: "intel", extraDevices: [nestedDeviceArg(nested.device)] },
      });
    } catch (e) {
      const f = e instanceof BootFailure ? e : new BootFailure("infra", (e as Error).message, "");
      const outcome: CellOutcome = f.kind === "infra" ? { kind: "infra", reason: f.reason } : { kind: "boot-fail", reason: f.reason };
      for (const w of pending.splice(0)) record(w, outcome, { console: f.console.slice(-4000) }, 0);
      return row;
    }
    Object.assign(row, { bootMs: guest.bootMs, bootPhases: guest.bootPhases });
    env.progress.stage(label, `level 1 up in ${(guest.bootMs / 1000).toFixed(1)} s`);
    const facts = await collectGuestFacts(guest, s, t.stepMs);
    Object.assign(row.evidence, facts.evidence);
    const probe = k.qemu ? qemuInvocation(k.qemu, ["--version"]) : { binary: qemuBinary("x86_64"), args: ["--version"] };
    const setup = await guest.exec(`${HOST_ROOT_SETUP} && chroot ${HOST_ROOT_MOUNT} ${formatCommandLine(probe.binary, probe.args)}`, t.stepMs);
    const version = setup.kind === "exited" && setup.code === 0 ? /version\s+(\S+)/.exec(setup.stdout)?.[1] : undefined;
    const problem = facts.problem ?? (version ? undefined : `level 1 cannot run the host's QEMU from ${HOST_ROOT_MOUNT}: ${setup.kind === "exited" ? (setup.stderr.trim() || setup.stdout.trim()).slice(-300) : setup.kind}`);
    if (problem) {
      for (const w of pending.splice(0)) record(w, { kind: "infra", reason: problem }, {}, 0);
      return row;
    }
    row.evidence.levelTwoQemu = version;
    row.description = `${k.artifact.description}; level 2: QEMU ${version} (${k.qemu ? `Debian's, ${k.qemu.source.split(" ")[1]}` : "this host's"}, over virtio-fs)`;
    if (k.qemu) row.evidence.levelTwoQemuSource = k.qemu.source;

    while (pending.length > 0 && !env.signal.aborted) {
      const w = pending.shift()!;
      env.progress.stage(label, `${w.id} (${s.workloads.indexOf(w) + 1}/${s.workloads.length})`);
      const started = Date.now();
      if (w.kind === "nestedQemu") {
        const c = await nestedQemuCell(guest, s, w, t.stepMs, rowDir, k.qemu);
        record(w, c.outcome, c.evidence, Date.now() - started);
      } else {
        const tag = workloadShare(w);
        const share = shares.find((x) => x.spec.tag === tag);
        const cell = await runCell(guest, w, { hostDir: share?.hostDir, guestDir: tag ? `/mnt/${tag}` : undefined }, t);
        record(w, cell.outcome, cell.evidence, cell.durationMs);
        if (cell.guestSpoiled) break;
      }
      await env.onUpdate({ ...run, rows: [...run.rows, row] });
      if (guest.deathReason()) break;
    }
    for (const w of pending.splice(0)) record(w, { kind: "infra", reason: guest.deathReason() ?? "run interrupted" }, {}, 0);
    if (!guest.deathReason()) {
      const dmesg = await guest.exec("dmesg", 10_000 * scale);
      if (dmesg.kind === "exited") {
        await writeFile(path.join(rowDir, "dmesg.txt"), dmesg.stdout);
        row.artifacts.dmesg = rel("dmesg.txt");
      }
    }
  } finally {
    const exit = await guest?.shutdown();
    if (exit) row.evidence.qemuExit = { code: exit.code, signal: exit.signal, guestPanicked: exit.guestPanicked };
    await rm(work, { recursive: true, force: true });
    env.progress.done(label, row);
  }
  return row;
}

type NestedQemu = Extract<WorkloadSpec, { kind: "nestedQemu" }>;

/** One level-2 start in level 1: preflight, bind, QEMU, restore; the outcome says what QEMU did and whether the predictor agreed. */
async function nestedQemuCell(guest: Guest, s: Scenario, w: NestedQemu, stepMs: number, rowDir: string, qemu?: QemuCommand): Promise<{ outcome: CellOutcome; evidence: Record<string, unknown> }> {
  const evidence: Record<string, unknown> = {};
  const fs = guestHostFs((c, ms) => guest.exec(c, ms), { name: "level-1 guest", deadlineMs: Math.min(stepMs, 60_000) });
  const vfio = { ...s.vfio!, ...(w.dmaEntryLimit !== undefined ? { dmaEntryLimit: w.dmaEntryLimit } : {}) };
  // Level 2 has anonymous RAM: memory.backend is about the guest vmrig boots, not level 2.
  const memory = s.memory ? { virtioMem: s.memory.virtioMem } : undefined;
  const pre = await vfioPreflight(fs, { vfio, ...(memory ? { memory } : {}), memoryBytes: vfio.nested!.memoryBytes, accel: "tcg", arch: "x86_64" });
  evidence.preflight = summary(pre);
  evidence.prediction = pre.budget;
  if (pre.problems.length) return { outcome: { kind: "infra", reason: `level-1 preflight refused: ${pre.problems.join("; ")}` }, evidence };

  const log: string[] = [];
  let binding;
  try {
    binding = await bindVfioHost(fs, pre, { timeoutMs: Math.min(stepMs, 60_000), log: (l) => log.push(l) });
  } catch (e) {
    evidence.binding = log;
    return { outcome: { kind: "infra", reason: `binding in level 1 failed: ${(e as Error).message}` }, evidence };
  }
  evidence.changes = binding.changes;
  let outcome: CellOutcome;
  try {
    const { binary, args } = levelTwoArgv(s, binding.qemuDevices, qemu);
    const commandLine = formatCommandLine(binary, args);
    evidence.levelTwoCommand = commandLine;
    await writeFile(path.join(rowDir, `level2-${w.id}.cmdline.txt`), commandLine + "\n");
    const r = await guest.exec(levelTwoScript(commandLine, w.runSeconds), stepMs);
    if (r.kind === "timeout") {
      outcome = { kind: "hang", what: `level-2 QEMU did not quit in ${Math.round(stepMs / 1000)} s`, wedged: false };
    } else if (r.kind === "lost") {
      outcome = { kind: "infra", reason: `lost level 1: ${r.error}` };
    } else {
      await writeFile(path.join(rowDir, `level2-${w.id}.stderr.txt`), r.stderr);
      evidence.qemuExit = r.code;
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
      if (!check.agrees) {
        outcome = { kind: "infra", reason: `the predictor disagrees with QEMU: ${check.mismatches.join("; ")}` };
      } else if (refused) {
        outcome = { kind: "fail", detail: `QEMU refused the device (${pre.budget.summary}): ${refused.line}` };
      } else if (r.code !== 0) {
        outcome = { kind: "fail", detail: `level-2 QEMU exited ${r.code}: ${r.stderr.trim().split("\n").pop()?.slice(0, 300) ?? ""}` };
      } else if (warnings.length) {
        const x = warnings[0]!;
        outcome = {
          kind: "fail",
          detail: `QEMU warned ${warnings.length}x, as predicted (${pre.budget.summary}): possibly running out of DMA mappings; its limit ${x.maxMappings}, memslots ${x.maxMemslots}; the VM runs on`,
        };
      } else if (!seen.present) {
        outcome = { kind: "fail", detail: `level 2 does not show ${dev?.label ?? "the device"} in info pci` };
      } else {
        const ids = dev?.vendor && dev.deviceId ? `${dev.vendor}:${dev.deviceId}` : seen.ids;
        const as = dev?.device.kind === "mdev" ? ` as ${binding.qemuDevices[0] && "sysfsdev" in binding.qemuDevices[0] ? binding.qemuDevices[0].sysfsdev : "an mdev"}` : "";
        outcome = { kind: "pass", detail: `${dev!.label}${ids ? ` [${ids}]` : ""} passed to level 2${as} (${seen.barsMapped} BARs mapped by its firmware); ${pre.budget.summary}` };
      }
    }
  } finally {
    const restore = await binding.restore();
    evidence.restore = restore;
    evidence.binding = log;
    if (restore.failed.length) outcome = { kind: "infra", reason: `could not restore level 1: ${restore.failed.join("; ")}` };
  }
  return { outcome, evidence };
}

