// Accelerators: KVM where it really works, TCG otherwise. /dev/kvm existing proves nothing (on a
// nested software hypervisor it exists and guests crawl, then die), so "works" means a tiny
// guest really booted under KVM before a short deadline. The verdict is cached per host boot.
import { access, constants, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { AccelName, Arch } from "../types.ts";
import { hostArchOf } from "../arch.ts";
import { spawnChild, stopChild } from "../util/children.ts";
import { cacheDir } from "../util/paths.ts";
import { writeFileAtomic } from "../util/atomic-fs.ts";
import { baseCmdline, machineArgs, qemuBinary, qemuOptionValue } from "./argv.ts";
import { FileTail } from "./console-tail.ts";
import { ConsoleText } from "./console-text.ts";

export interface Accelerator {
  name: AccelName;
  /** Multiplier for every timeout written in KVM seconds. */
  timeScale: number;
  /** One line telling the user what was chosen and why. */
  note: string;
}

const hostArch: Arch | undefined = hostArchOf(process.arch);

/** Pure: how much slower than KVM a guest runs; emulating another architecture costs more. */
export function tcgTimeScale(guest: Arch): number {
  return guest === hostArch ? 4 : 8;
}

export function tcg(arch: Arch, why: string): Accelerator {
  return { name: "tcg", timeScale: tcgTimeScale(arch), note: `accelerator: TCG (${why})` };
}

export interface ProbeGuest {
  kernel: string;
  initrd: string;
  /** A line the guest prints on its console once userspace runs. */
  readyMarker: string;
}

export async function chooseAccelerator(
  requested: "auto" | AccelName,
  arch: Arch,
  probeGuest: ProbeGuest,
  opts: { deadlineMs?: number; signal?: AbortSignal } = {},
): Promise<Accelerator> {
  if (requested === "tcg") return tcg(arch, "the scenario asks for it");
  const kvm: Accelerator = { name: "kvm", timeScale: 1, note: "accelerator: KVM (a probe guest booted)" };
  if (arch !== hostArch) {
    if (requested === "kvm") throw new Error(`accel: kvm cannot run an ${arch} guest on an ${process.arch} host`);
    return tcg(arch, `${arch} guest on a ${hostArch ?? process.arch} host`);
  }
  try {
    await access("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch {
    if (requested === "kvm") throw new Error("accel: kvm requested but /dev/kvm is missing or not accessible");
    return tcg(arch, "/dev/kvm is missing or not accessible");
  }
  const verdict = await cachedProbe(arch, () =>
    probeBoot(arch, probeGuest, { accel: "kvm", deadlineMs: opts.deadlineMs ?? 20_000, signal: opts.signal }),
  );
  if (verdict.ok) return kvm;
  if (requested === "kvm") throw new Error(`accel: kvm requested but unusable: ${verdict.why}`);
  return tcg(arch, `KVM unusable here: ${verdict.why}`);
}

export interface ProbeVerdict {
  ok: boolean;
  why: string;
}

async function cachedProbe(arch: Arch, probe: () => Promise<ProbeVerdict>): Promise<ProbeVerdict> {
  const bootId = (await readFile("/proc/sys/kernel/random/boot_id", "utf8").catch(() => "unknown")).trim();
  const file = path.join(cacheDir(), "accel", `kvm-${arch}-${os.hostname()}.json`);
  try {
    const cached = JSON.parse(await readFile(file, "utf8")) as ProbeVerdict & { bootId: string };
    if (cached.bootId === bootId) return cached;
  } catch {
    // no verdict for this boot yet
  }
  const verdict = await probe();
  // Another vmrig may read the verdict while this one writes it: never half of one.
  await writeFileAtomic(file, JSON.stringify({ ...verdict, bootId }));
  return verdict;
}

/**
 * Boot the probe guest and wait for its ready marker on the console (KVM for the verdict; TCG
 * lets tests prove the probe itself). The console goes to a file chardev, which never drops a
 * byte (a pipe can refuse one and lose the marker).
 */
export async function probeBoot(
  arch: Arch,
  g: ProbeGuest,
  opts: { accel: AccelName; deadlineMs: number; signal?: AbortSignal },
): Promise<ProbeVerdict> {
  const { deadlineMs, signal } = opts;
  const dir = await mkdtemp(path.join(os.tmpdir(), "vmrig-kvm-probe-"));
  const consoleFile = path.join(dir, "console.log");
  await writeFile(consoleFile, "");
  // prettier-ignore
  const args = [
    "-nodefaults", ...machineArgs(arch, opts.accel), "-m", "512M", "-smp", "1", "-display", "none", "-no-reboot",
    "-chardev", `file,id=con0,path=${qemuOptionValue(consoleFile)}`, "-serial", "chardev:con0",
    "-kernel", g.kernel, "-initrd", g.initrd, "-append", [...baseCmdline(arch, opts.accel), "vmrig.probe=1"].join(" "),
  ];
  const console = new ConsoleText();
  const tail = new FileTail(consoleFile, (bytes) => console.appendBytes(bytes));
  const child = spawnChild(qemuBinary(arch), args, { stdout: "ignore", stderr: "pipe" });
  let err = "";
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race<ProbeVerdict>([
      console.waitFor(g.readyMarker).then(() => ({ ok: true, why: "probe guest booted" })),
      new Promise((resolve) => {
        const why = `a probe guest did not boot within ${deadlineMs / 1000} s`;
        timer = setTimeout(() => resolve({ ok: false, why }), deadlineMs);
        signal?.addEventListener("abort", () => resolve({ ok: false, why: "probe aborted" }));
      }),
      child.then(async (r) => {
        await tail.read();
        if (console.text().includes(g.readyMarker)) return { ok: true, why: "probe guest booted" };
        const msg = (err.trim().split("\n").pop() ?? "").slice(0, 160);
        return { ok: false, why: `QEMU exited (${r.exitCode ?? r.signal}) ${msg}`.trim() };
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await stopChild(child, 500);
    await tail.close();
    await rm(dir, { recursive: true, force: true });
  }
}
