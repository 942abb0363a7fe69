// The host programs a run needs, found (or provisioned into vmrig's cache) before anything boots.
import { execa } from "execa";
import type { Scenario } from "../types.ts";
import { qemuBinary } from "../qemu/argv.ts";
import { provisionVirtiofsd } from "../virtiofs/provision.ts";
import { buildRelay, relayArgs } from "../virtiofs/relay.ts";
import type { BootRequest } from "../guest/boot.ts";
import type { DaemonCommand } from "../virtiofs/daemon.ts";
import { HostError } from "../util/errors.ts";
import { virtiofsdLogLevelDefault } from "../util/env.ts";
import { scenarioArches } from "../scenario/platform.ts";
import { requireCapabilities } from "../host/check.ts";
import type { Capability } from "../host/requirements.ts";

export interface HostTools {
  qemuVersion: string;
  virtiofsd: DaemonCommand & { version: string };
  relay?: BootRequest["relay"];
  virtiofsdLogLevel?: string;
}

export async function qemuVersion(binary: string): Promise<string | undefined> {
  const r = await execa(binary, ["--version"], { reject: false });
  if (r.exitCode !== 0) return undefined;
  return /version\s+(\S+)/.exec(r.stdout)?.[1];
}

export async function requireHostTools(s: Scenario, signal: AbortSignal): Promise<HostTools> {
  await requireCapabilities(scenarioArches(s).map((arch): Capability => `guests-${arch}`));
  // Every architecture the rows use (kernels.X.arch may differ from machine.arch).
  let version: string | undefined;
  for (const arch of scenarioArches(s)) {
    const bin = qemuBinary(arch);
    const v = await qemuVersion(bin);
    if (!v) throw new HostError(`${bin} not found or not runnable: run \`npm run setup\` (installs QEMU 10)`);
    version ??= v;
  }
  if (!version) throw new HostError("the scenario has no kernels");
  const virtiofsd = await provisionVirtiofsd(signal);
  let relay: HostTools["relay"];
  if (s.shares.some((x) => x.accessPlatform)) {
    const binary = await buildRelay(signal);
    relay = {
      command: { argv0: binary, prefixArgs: [] },
      args: (listen, connect, log) => relayArgs({ listen, connect, log }),
    };
  }
  return { qemuVersion: version, virtiofsd, relay, virtiofsdLogLevel: virtiofsdLogLevelDefault() };
}
