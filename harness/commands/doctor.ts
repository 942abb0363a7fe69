// `vmrig doctor`: what this host can do, in a few lines a user can paste into a bug report.
import { existsSync } from "node:fs";
import path from "node:path";
import { loadScenario } from "../scenario/load.ts";
import { resolveKernel } from "../kernels/provider.ts";
import { buildGuestImage } from "../image/build.ts";
import { chooseAccelerator } from "../qemu/accel.ts";
import { READY_MARKER } from "../guest/boot.ts";
import { findVirtiofsd } from "../virtiofs/provision.ts";
import { ExitCode } from "../util/errors.ts";
import { cacheDir, repoRoot } from "../util/paths.ts";
import { qemuVersion } from "../run/host-tools.ts";
import { readinessReport } from "../host/check.ts";
import { capabilities } from "../host/requirements.ts";
import { archRecord } from "../arch.ts";

export async function runDoctor(signal: AbortSignal): Promise<number> {
  const out = (l: string) => process.stdout.write(l + "\n");
  let ok = true;
  const [x86, arm] = [archRecord("x86_64").qemu.binary, archRecord("aarch64").qemu.binary];
  const qx = await qemuVersion(x86);
  const qa = await qemuVersion(arm);
  out(`${x86}: ${qx ?? "missing"}`);
  out(`${arm}: ${qa ?? "missing"}`);
  if (!qx) ok = false;
  const vfs = await findVirtiofsd();
  out(`virtiofsd: ${vfs ? `${vfs.version} (${vfs.source})` : "missing (run npm run setup)"}`);
  if (!vfs) ok = false;
  out(`/dev/kvm: ${existsSync("/dev/kvm") ? "present" : "absent"}`);
  // The same probes the preflights of runs and kernel builds use.
  const readiness = await readinessReport(capabilities);
  for (const line of readiness.lines) out(line);
  if (!readiness.ready) ok = false;
  out(`cache: ${cacheDir()}`);
  if (qx) {
    try {
      const s = await loadScenario(path.join(repoRoot, "scenarios", "default.yaml"));
      const k = s.kernels.find((x) => x.source.kind !== "build")!;
      const artifact = await resolveKernel(k, { arch: "x86_64", signal, log: () => undefined });
      const image = await buildGuestImage({ arch: "x86_64", kernel: artifact, signal, log: () => undefined });
      const accel = await chooseAccelerator(
        "auto",
        "x86_64",
        { kernel: artifact.image, initrd: image.initrd, readyMarker: READY_MARKER },
        { signal },
      );
      out(accel.note);
    } catch (e) {
      out(`accelerator probe: could not run (${(e as Error).message})`);
    }
  }
  return ok ? ExitCode.ok : ExitCode.usage;
}
