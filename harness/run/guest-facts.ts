// What a freshly booted guest is, checked before any workload: kernel release, page size, the
// virtio-fs devices' negotiated features; then the shares are mounted. A guest that is not what
// the scenario asked for is INFRA with the reason, never a result.
import type { PageSize, Scenario } from "../types.ts";
import type { Guest } from "../guest/boot.ts";
import { PROBE, parseProbeOutput, shellQuote } from "../workloads/probe.ts";
import { parseSize } from "../util/size.ts";

export interface GuestFacts {
  evidence: Record<string, unknown>;
  /** Set when the guest cannot run this scenario at all. */
  problem?: string;
  /** share tag -> why it could not be mounted. */
  unmounted: Record<string, string>;
}

/** VIRTIO_F_ACCESS_PLATFORM: buffers go through the DMA API (and so through swiotlb). */
export const VIRTIO_F_ACCESS_PLATFORM = 33;
const VIRTIO_ID_FS = 26;

/** Pure: /sys/bus/virtio/devices/<dev>/features is one '0'/'1' character per feature bit. */
export function hasFeatureBit(featureString: string, bit: number): boolean {
  return featureString.trim()[bit] === "1";
}

/** `pageSize`: what this row's kernel must have (kernels.X.pageSize), default machine.pageSize. */
export async function collectGuestFacts(
  guest: Guest,
  s: Scenario,
  deadlineMs: number,
  pageSizeWanted: PageSize | undefined = s.machine.pageSize,
): Promise<GuestFacts> {
  const evidence: Record<string, unknown> = {};
  const unmounted: Record<string, string> = {};
  const run = async (cmd: string) => {
    const r = await guest.exec(cmd, deadlineMs);
    return r.kind === "exited" ? r : undefined;
  };

  evidence.uname = (await run("uname -r"))?.stdout.trim();
  evidence.cmdline = (await run("cat /proc/cmdline"))?.stdout.trim().replace(/vmrig\.authkey=\S+/, "vmrig.authkey=…");
  const ps = await run(`${PROBE} pagesize`);
  const probed = ps ? parseProbeOutput(ps) : undefined;
  const pageSize = probed?.kind === "report" ? Number(probed.report.pageSize) : NaN;
  evidence.pageSize = Number.isFinite(pageSize) ? pageSize : "unknown";
  if (pageSizeWanted) {
    const want = parseSize(pageSizeWanted);
    if (pageSize !== want) {
      const has = Number.isFinite(pageSize)
        ? `${pageSize / 1024}K (${pageSize} bytes)`
        : "an unknown page size (the probe did not say)";
      return {
        evidence,
        unmounted,
        problem: `page size mismatch: the scenario says ${pageSizeWanted}, the running kernel has ${has}`,
      };
    }
  }

  const devs = await run(
    "for d in /sys/bus/virtio/devices/*; do " +
      '[ -e "$d/device" ] && echo "$(basename $d) $(cat $d/device) $(cat $d/features)"; done',
  );
  const fsDevices = (devs?.stdout ?? "")
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((c) => c.length === 3 && parseInt(c[1]!, 16) === VIRTIO_ID_FS)
    .map(([name, , features]) => ({
      name,
      features: features!,
      accessPlatform: hasFeatureBit(features!, VIRTIO_F_ACCESS_PLATFORM),
    }));
  evidence.virtioFsDevices = fsDevices;

  for (const share of s.shares) {
    const mnt = `/mnt/${share.tag}`;
    const r = await guest.exec(
      `mkdir -p ${shellQuote(mnt)} && mount -t virtiofs ${shellQuote(share.tag)} ${shellQuote(mnt)}`,
      deadlineMs,
    );
    if (r.kind !== "exited" || r.code !== 0) {
      unmounted[share.tag] =
        `mount -t virtiofs ${share.tag} failed: ${r.kind === "exited" ? r.stderr.trim() || `exit ${r.code}` : r.kind}`;
    }
  }
  if (s.shares.some((x) => x.accessPlatform)) {
    if (!fsDevices.some((d) => d.accessPlatform)) {
      return { evidence, unmounted, problem: "ACCESS_PLATFORM not negotiated: no virtio-fs device has feature bit 33" };
    }
  }
  return { evidence, unmounted };
}

/**
 * swiotlb after the workloads: did bouncing really happen? Needs debugfs; a kernel without it
 * says "unknown", never zero.
 */
export async function collectSwiotlbEvidence(guest: Guest, deadlineMs: number): Promise<Record<string, unknown>> {
  const dir = "/sys/kernel/debug/swiotlb";
  const r = await guest.exec(
    "for f in io_tlb_nslabs io_tlb_used io_tlb_used_hiwater; do " +
      `[ -r ${dir}/$f ] && echo "$f $(cat ${dir}/$f)"; done; true`,
    deadlineMs,
  );
  if (r.kind !== "exited") return { swiotlb: "unknown" };
  const values = Object.fromEntries(
    r.stdout
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter((c) => c.length === 2)
      .map(([k, v]) => [k!, Number(v)]),
  );
  return { swiotlb: Object.keys(values).length ? values : "unknown" };
}
