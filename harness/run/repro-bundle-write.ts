// Writes a cell's repro bundle (repro-bundle.ts plans it) beside the guest's logs: files are
// hard-linked from vmrig's cache where they can be (copied across file systems), the shares'
// contents prepared by the workload kind's own host step, and the whole directory renamed into
// place at the end, so a bundle is either complete or absent.
import { chmod, copyFile, link, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import type { CellResult, ShareSpec, WorkloadSpec } from "../types.ts";
import { workloadKind, workloadShare } from "../workloads/registry.ts";
import { relaySourcePath } from "../virtiofs/relay.ts";
import type { DaemonCommand } from "../virtiofs/daemon.ts";
import { planReproBundle, type ShippedFile } from "./repro-bundle.ts";

export interface BundleRequest {
  scenario: string;
  cell: CellResult;
  w: WorkloadSpec;
  /** The guest's directory: its qemu-cmdline.txt is there, and the bundle goes there. */
  guestDir: string;
  shares: ShareSpec[];
  virtiofsd: DaemonCommand;
  relay?: DaemonCommand;
  virtiofsdLogLevel?: string;
  bootSeconds: number;
  stepSeconds: number;
}

/** The bundle's directory name for a workload. */
export const reproDirName = (workload: string) => `repro-${workload}`;

/** Writes guestDir/repro-<workload>/ and returns its repro.sh; throws (nothing left behind) when it cannot. */
export async function writeReproBundle(req: BundleRequest): Promise<string> {
  const plan = planReproBundle({
    scenario: req.scenario,
    kernel: req.cell.kernel,
    workload: req.cell.workload,
    outcome: req.cell.outcome,
    evidence: req.cell.evidence,
    qemuCmdline: await readFile(path.join(req.guestDir, "qemu-cmdline.txt"), "utf8"),
    shares: req.shares,
    virtiofsd: req.virtiofsd,
    ...(req.relay ? { relay: { binary: req.relay.argv0, source: relaySourcePath } } : {}),
    ...(req.virtiofsdLogLevel ? { virtiofsdLogLevel: req.virtiofsdLogLevel } : {}),
    bootSeconds: req.bootSeconds,
    stepSeconds: req.stepSeconds,
  });
  const final = path.join(req.guestDir, reproDirName(req.cell.workload));
  const tmp = await mkdtemp(`${final}.partial-`);
  try {
    for (const f of plan.files) await ship(f, path.join(tmp, f.to));
    await prepareShares(req.w, plan.shares, path.join(tmp, "share"));
    await writeFile(path.join(tmp, "repro.sh"), plan.script);
    await chmod(path.join(tmp, "repro.sh"), 0o755);
    await rm(final, { recursive: true, force: true });
    await rename(tmp, final);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return path.join(final, "repro.sh");
}

/** A hard link where the file system allows one (no bytes copied), else a copy. */
async function ship(f: ShippedFile, to: string): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true });
  if (f.tree) {
    const linked = await execa("cp", ["-al", f.from, to], { reject: false });
    if (linked.exitCode !== 0) await execa("cp", ["-a", f.from, to]);
    return;
  }
  await link(f.from, to).catch(() => copyFile(f.from, to));
}

/** The workload's host side, as the cell had it: the kind's own preparation in share/<tag>. */
async function prepareShares(w: WorkloadSpec, tags: string[], dir: string): Promise<void> {
  for (const tag of tags) await mkdir(path.join(dir, tag), { recursive: true });
  const tag = workloadShare(w);
  if (!tag) return;
  await workloadKind(w).prepareHost?.(w, { hostDir: path.join(dir, tag), guestDir: `/mnt/${tag}` });
}
