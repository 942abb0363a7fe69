// Boot to the first SSH command: vmrig's bootGuest against a hand-written QEMU + `ssh` loop of
// the same kernel and initramfs, alternated A B A B so drift hits both, with where the seconds go
// (QEMU up, kernel banner, init, sshd, first command) on the host's clock for both.
import { execa } from "execa";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { resolveKernel } from "../harness/kernels/provider.ts";
import { buildGuestImage } from "../harness/image/build.ts";
import { tcg } from "../harness/qemu/accel.ts";
import { bootGuest } from "../harness/guest/boot.ts";
import { generateClientKey } from "../harness/guest/ssh.ts";
import { provisionVirtiofsd } from "../harness/virtiofs/provision.ts";
import { authKeyCmdlineWord } from "../harness/image/guest-protocol.ts";
import { BOOT_PHASE_LABELS, BootTimeline, CONSOLE_MILESTONES, type BootPhase } from "../harness/guest/boot-phases.ts";
import { FileTail } from "../harness/qemu/console-tail.ts";
import type { GuestImage, KernelArtifact, KernelEntry } from "../harness/types.ts";
import { formatStall, measureLoopStall, type LoopStall } from "./event-loop.ts";
import { virtmeNgBoot } from "./virtme-ng.ts";
import { benchParallel } from "../harness/util/env.ts";

const signal = new AbortController().signal;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

interface BootSample {
  totalMs: number;
  phases: BootPhase[];
}

/** Marks the console milestones of `file` as QEMU writes them, like bootGuest does for its own. */
function followMilestones(file: string, timeline: BootTimeline): FileTail {
  let text = "";
  return new FileTail(file, (bytes) => {
    text += bytes.toString("latin1");
    for (const { phase, needle } of CONSOLE_MILESTONES) if (text.includes(needle)) timeline.mark(phase);
  });
}

/** The baseline a kernel engineer would write by hand: fixed port, qemu &, ssh in a loop. */
async function handWrittenBoot(kernel: KernelArtifact, image: GuestImage, work: string): Promise<BootSample> {
  const key = generateClientKey();
  const keyFile = path.join(work, "id");
  await writeFile(keyFile, key.privateKey);
  await chmod(keyFile, 0o600);
  const consoleFile = path.join(work, "hand-console.log");
  await writeFile(consoleFile, "");
  const port = 40000 + Math.floor(Math.random() * 20000);
  const t0 = Date.now();
  const timeline = new BootTimeline(t0);
  const tail = followMilestones(consoleFile, timeline);
  // prettier-ignore
  const q = execa("qemu-system-x86_64", [
    "-machine", "q35,accel=tcg", "-cpu", "max", "-m", "1G", "-smp", "2", "-display", "none", "-no-reboot",
    "-serial", `file:${consoleFile}`, "-kernel", kernel.image, "-initrd", image.initrd,
    "-append", `console=ttyS0 panic=-1 ${authKeyCmdlineWord(key.publicKey)}`,
    "-netdev", `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`, "-device", "virtio-net-pci,netdev=n0,romfile=",
  ], { reject: false });
  // prettier-ignore
  const ssh = ["-i", keyFile, "-p", String(port),
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=5", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "root@127.0.0.1", "true"];
  try {
    for (;;) {
      const r = await execa("ssh", ssh, { reject: false });
      if (r.exitCode === 0) break;
      if (Date.now() - t0 > 120_000) throw new Error(`hand-written loop: no SSH after 120 s: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    timeline.mark("command");
    return { totalMs: Date.now() - t0, phases: timeline.list() };
  } finally {
    q.kill("SIGKILL");
    await q;
    await tail.close();
  }
}

/** Per phase, the median time of the milestone and of the step leading to it. */
function phaseTable(name: string, samples: BootSample[]): string[] {
  const names = [...new Set(samples.flatMap((s) => s.phases.map((p) => p.phase)))];
  const at = (s: BootSample, phase: string) => s.phases.find((p) => p.phase === phase)?.ms;
  const lines = [`${name}:`];
  let prev = 0;
  for (const phase of names) {
    const xs = samples.map((s) => at(s, phase)).filter((x): x is number => x !== undefined);
    const m = median(xs);
    lines.push(`  ${BOOT_PHASE_LABELS[phase].padEnd(30)} at ${fmt(m).padStart(8)}  step ${fmt(m - prev).padStart(8)}`);
    prev = m;
  }
  return lines;
}

/** From "init started" to "first SSH command returned": what vmrig's guest side and SSH cost. */
function initToCommand(s: BootSample): number | undefined {
  const init = s.phases.find((p) => p.phase === "init")?.ms;
  const cmd = s.phases.find((p) => p.phase === "command")?.ms;
  return init !== undefined && cmd !== undefined ? cmd - init : undefined;
}

export async function bootBench(rounds: number): Promise<void> {
  const entry: KernelEntry = {
    label: "bench",
    source: { kind: "debian", version: "6.12", flavour: "cloud-amd64" },
    cmdline: [],
    expect: {},
  };
  const kernel = await resolveKernel(entry, { arch: "x86_64", signal, log: () => undefined });
  const image = await buildGuestImage({ arch: "x86_64", kernel, signal, log: () => undefined });
  const virtiofsd = await provisionVirtiofsd(signal);
  const accel = tcg("x86_64", "bench");
  const work = await mkdtemp(path.join(os.tmpdir(), "vmrig-bench-"));

  const bootOnce = async (dir: string): Promise<BootSample> => {
    const t0 = Date.now();
    // prettier-ignore
    const g = await bootGuest({
      arch: "x86_64", accel, machine: { arch: "x86_64", memoryBytes: 1 << 30, cpus: 2, accel: "tcg", cmdline: [] },
      kernel, image, cmdline: [], shares: [], virtiofsd, clientKey: generateClientKey(),
      artifactsDir: path.join(work, dir), socketsDir: path.join(work, `${dir}-sock`), bootTimeoutMs: 600_000, signal,
    });
    const totalMs = Date.now() - t0;
    await g.shutdown();
    return { totalMs, phases: g.bootPhases };
  };
  // The event loop's longest stall while vmrig boots a guest: console, QMP and SSH all wait on it.
  const stalls: LoopStall[] = [];
  const viaVmrig = async () => {
    const { result, stall } = await measureLoopStall(() => bootOnce("vmrig"));
    stalls.push(stall);
    return result;
  };

  const a: BootSample[] = [];
  const b: BootSample[] = [];
  const c: BootSample[] = [];
  const vng = await virtmeNgBoot(kernel, work);
  await viaVmrig(); // warm-up: page cache, image
  stalls.length = 0;
  for (let i = 0; i < rounds; i++) {
    a.push(await viaVmrig());
    b.push(await handWrittenBoot(kernel, image, work));
    if (vng.boot) c.push(await vng.boot());
    const vngNote = c.length ? `, virtme-ng ${fmt(c.at(-1)!.totalMs)}` : "";
    process.stderr.write(
      `round ${i + 1}/${rounds}: vmrig ${fmt(a.at(-1)!.totalMs)}, by hand ${fmt(b.at(-1)!.totalMs)}${vngNote}\n`,
    );
  }
  const ratios = a.map((x, i) => x.totalMs / b[i]!.totalMs);
  const stats = (xs: number[]) => `min ${fmt(Math.min(...xs))}  median ${fmt(median(xs))}  max ${fmt(Math.max(...xs))}`;
  console.log(`\n## boot to first SSH command (Debian ${kernel.release}, TCG, ${rounds} rounds, alternated)`);
  console.log(`vmrig bootGuest      ${stats(a.map((x) => x.totalMs))}`);
  console.log(`hand-written loop    ${stats(b.map((x) => x.totalMs))}`);
  if (c.length)
    console.log(
      `virtme-ng ${vng.version.padEnd(10)} ${stats(c.map((x) => x.totalMs))} ` +
        "(python start, initramfs, boot, command, power-off)",
    );
  else console.log(`virtme-ng            not measured: ${vng.reason}`);
  const r = (xs: number[]) =>
    `min ${Math.min(...xs).toFixed(3)}  median ${median(xs).toFixed(3)}  max ${Math.max(...xs).toFixed(3)}`;
  console.log(`ratio vmrig/by-hand  ${r(ratios)}  (target <= 1.15)`);
  if (c.length) console.log(`ratio vmrig/virtme-ng ${r(a.map((x, i) => x.totalMs / c[i]!.totalMs))}`);
  const vmrigInit = a.map(initToCommand).filter((x): x is number => x !== undefined);
  const handInit = b.map(initToCommand).filter((x): x is number => x !== undefined);
  console.log(
    `init started -> first command: vmrig median ${fmt(median(vmrigInit))}, by hand ${fmt(median(handInit))}`,
  );
  console.log(`  (target < 0.50 s for vmrig on an idle machine)`);
  for (const line of [...phaseTable("vmrig", a), ...phaseTable("by hand", b)]) console.log(line);
  const worst = stalls.reduce((x, y) => (y.maxMs > x.maxMs ? y : x));
  console.log(`event-loop stall     ${formatStall(worst)} (worst of the ${stalls.length} vmrig boots)`);
  // Under load: several guests at once in one process, the way --jobs and the tests run them.
  const parallel = benchParallel();
  const boots = () => Promise.all(Array.from({ length: parallel }, (_, i) => bootOnce(`vmrig-p${i}`)));
  const burst = await measureLoopStall(boots);
  const slowest = fmt(Math.max(...burst.result.map((x) => x.totalMs)));
  console.log(`${parallel} guests at once     boot max ${slowest}, event-loop stall ${formatStall(burst.stall)}`);
  await rm(work, { recursive: true, force: true });
}
