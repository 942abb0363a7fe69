// Bench section `arm64`: boot to the first SSH command for arm64 guests under TCG with 4K, 16K
// and 64K pages, printed beside an x86 guest measured in the same run (alternated round by
// round, so drift from other jobs on the host hits every guest alike). Each boot's page size
// is read back from the guest, so a row cannot claim a page size its kernel does not have.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Arch, GuestImage, KernelArtifact, KernelEntry, PageSize } from "../harness/types.ts";
import { resolveKernel } from "../harness/kernels/provider.ts";
import { buildGuestImage } from "../harness/image/build.ts";
import { tcg, type Accelerator } from "../harness/qemu/accel.ts";
import { bootGuest } from "../harness/guest/boot.ts";
import { generateClientKey } from "../harness/guest/ssh.ts";
import { provisionVirtiofsd } from "../harness/virtiofs/provision.ts";
import { PROBE, parseProbeOutput } from "../harness/workloads/probe.ts";
import { repoRoot } from "../harness/util/paths.ts";
import { debianSourceBuild } from "../harness/kernels/from-source/spec.ts";

interface BenchGuest {
  label: string;
  arch: Arch;
  pageSize: PageSize;
  source: KernelEntry["source"];
}

const fragment64k = path.join(repoRoot, "kernels", "guest-arm64-64k.config");
const BUILT_64K = "arm64 built 7.3 64K";

export const ARM64_BENCH_GUESTS: BenchGuest[] = [
  {
    label: "x86 Debian 7.3 cloud-amd64",
    arch: "x86_64",
    pageSize: "4K",
    source: { kind: "debian", version: "7.3", flavour: "cloud-amd64" },
  },
  {
    label: "arm64 Debian 7.3 arm64",
    arch: "aarch64",
    pageSize: "4K",
    source: { kind: "debian", version: "7.3", flavour: "arm64" },
  },
  {
    label: "arm64 Debian 7.3 arm64-16k",
    arch: "aarch64",
    pageSize: "16K",
    source: { kind: "debian", version: "7.3", flavour: "arm64-16k" },
  },
  {
    label: BUILT_64K,
    arch: "aarch64",
    pageSize: "64K",
    source: { kind: "build", spec: debianSourceBuild(BUILT_64K, "linux-source-7.3", "aarch64", [fragment64k]) },
  },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export async function arm64BootBench(rounds: number, guests: BenchGuest[] = ARM64_BENCH_GUESTS): Promise<void> {
  const signal = new AbortController().signal;
  const virtiofsd = await provisionVirtiofsd(signal);
  const work = await mkdtemp(path.join(os.tmpdir(), "vmrig-bench-arm64-"));
  const log = (label: string) => (l: string) => process.stderr.write(`[${label}] ${l}\n`);
  interface Prepared {
    g: BenchGuest;
    kernel: KernelArtifact;
    image: GuestImage;
    accel: Accelerator;
    times: number[];
    pageBytes: Set<number>;
  }
  const prepared: Prepared[] = [];
  for (const g of guests) {
    const entry: KernelEntry = { label: "bench", source: g.source, cmdline: [], expect: {} };
    const kernel = await resolveKernel(entry, { arch: g.arch, signal, log: log(g.label) });
    const image = await buildGuestImage({ arch: g.arch, kernel, signal, log: log(g.label) });
    prepared.push({ g, kernel, image, accel: tcg(g.arch, "bench"), times: [], pageBytes: new Set() });
  }

  const boot = async (p: Prepared, i: number) => {
    const t0 = Date.now();
    await using guest = await bootGuest({
      arch: p.g.arch,
      accel: p.accel,
      machine: { arch: p.g.arch, memoryBytes: 1 << 30, cpus: 2, accel: "tcg", cmdline: [] },
      kernel: p.kernel,
      image: p.image,
      cmdline: [],
      shares: [],
      virtiofsd,
      clientKey: generateClientKey(),
      artifactsDir: path.join(work, `${prepared.indexOf(p)}-${i}`),
      socketsDir: path.join(work, `sock-${prepared.indexOf(p)}-${i}`),
      bootTimeoutMs: 60_000 * p.accel.timeScale,
      signal,
    });
    const ms = Date.now() - t0;
    const run = parseProbeOutput(await guest.exec(`${PROBE} pagesize`, 30_000 * p.accel.timeScale));
    if (run.kind === "report") p.pageBytes.add(Number(run.report.pageSize));
    return ms;
  };

  for (const p of prepared) await boot(p, -1); // warm-up: page cache, images
  for (let i = 0; i < rounds; i++) {
    // Rotate the order each round so no guest always boots first.
    const order = prepared.map((_, k) => prepared[(k + i) % prepared.length]!);
    for (const p of order) p.times.push(await boot(p, i));
    process.stderr.write(
      `round ${i + 1}/${rounds}: ${order.map((p) => `${p.g.label} ${s(p.times.at(-1)!)}`).join(", ")}\n`,
    );
  }

  const base = median(prepared.find((p) => p.g.arch === "x86_64")?.times ?? [NaN]);
  console.log(
    `\n## boot to first SSH command per page size, TCG on ${os.cpus().length} host cores (${rounds} rounds, rotated)`,
  );
  console.log(
    `${"guest".padEnd(30)} ${"arch".padEnd(8)} ${"page".padEnd(5)} ${"seen".padEnd(6)} ` +
      `${"min".padStart(8)} ${"median".padStart(8)} ${"max".padStart(8)}  vs x86`,
  );
  for (const p of prepared) {
    const seen = [...p.pageBytes].map((b) => `${b / 1024}K`).join("/") || "?";
    const ok = seen === p.g.pageSize ? "" : "  (page size differs!)";
    console.log(
      `${p.g.label.padEnd(30)} ${p.g.arch.padEnd(8)} ${p.g.pageSize.padEnd(5)} ${seen.padEnd(6)} ` +
        `${s(Math.min(...p.times)).padStart(8)} ${s(median(p.times)).padStart(8)} ` +
        `${s(Math.max(...p.times)).padStart(8)}  ` +
        `${(median(p.times) / base).toFixed(2)}x${ok}`,
    );
  }
  await rm(work, { recursive: true, force: true });
}
