import { loadScenario } from "../scenario/load.ts";
import { kernelArch } from "../scenario/platform.ts";
import { resolveKernel } from "../kernels/provider.ts";
import { buildGuestImage } from "../image/build.ts";
import { scenarioKselftests } from "../workloads/ktap.ts";
import { provisionVirtiofsd } from "../virtiofs/provision.ts";
import { hostQemu, provideQemu } from "../qemu/provision.ts";
import { buildRelay } from "../virtiofs/relay.ts";
import { cacheDir } from "../util/paths.ts";
import { installHostPackages } from "./setup-packages.ts";
import { runDoctor } from "./doctor.ts";

const say = (l: string) => process.stderr.write(`setup: ${l}\n`);

export async function runSetup(scenarios: string[], signal: AbortSignal): Promise<number> {
  say(`cache: ${cacheDir()}`);
  await installHostPackages(say);
  const vfs = await provisionVirtiofsd(signal);
  say(`virtiofsd ${vfs.version} (${vfs.source})`);
  say(`vhost-user relay: ${await buildRelay(signal)}`);
  for (const file of scenarios) {
    const s = await loadScenario(file);
    for (const k of s.kernels) {
      if (k.qemu) {
        const arch = kernelArch(s, k);
        const q = await provideQemu(k.qemu, arch, hostQemu(arch, "host"), {
          signal,
          log: (l: string) => say(`${k.label}: ${l}`),
        });
        say(`${s.name}/${k.label}: QEMU ${q.version} (${q.source})`);
      }
      if (k.source.kind === "build") {
        say(`${s.name}/${k.label}: built kernels are not provisioned by setup yet`);
        continue;
      }
      const arch = kernelArch(s, k);
      const artifact = await resolveKernel(k, { arch, signal, log: (l: string) => say(`${k.label}: ${l}`) });
      const image = await buildGuestImage({
        arch,
        kernel: artifact,
        signal,
        log: (l: string) => say(`${k.label}: ${l}`),
        kselftests: scenarioKselftests(s),
      });
      say(`${s.name}/${k.label}: ${artifact.description}; image ${image.identity.slice(0, 12)}`);
    }
  }
  return runDoctor(signal);
}
