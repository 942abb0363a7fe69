// Each workload kind: what it prepares on the host side of the share, the guest command, and
// how a finished command becomes a cell. Timeouts, lost guests and errno liveness checks are
// the runner's, the same for every kind.
import { createReadStream } from "node:fs";
import { mkdir, open, stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { createEntries } from "./host-entries.ts";
import type { WorkloadSpec } from "../types.ts";
import { formatSize } from "../util/size.ts";
import { Fnv1a64 } from "./fnv.ts";
import { PROBE, parseProbeOutput, shellQuote, type ProbeReport } from "./probe.ts";

import type { Exited, Judgement, WorkloadKind } from "./kinds-types.ts";
export type { Judgement, WorkloadContext, WorkloadKind } from "./kinds-types.ts";
import { getdentsSweep } from "./getdents-sweep.ts";
import { nestedQemuKind } from "./nested-kind.ts";
import { fuseLieKind as fuseLie } from "./fuse-lies.ts";
import { countOutcome, overlayReaddir } from "./overlay-readdir.ts";

/** The guest-visible directory a share workload uses (one per workload: no cross-talk). */
const dirOf = (w: WorkloadSpec, base: string) => path.posix.join(base, w.id);

async function probeJudgement(exec: Exited, onOk: (r: ProbeReport) => Promise<Judgement> | Judgement): Promise<Judgement> {
  const run = parseProbeOutput(exec);
  if (run.kind === "no-report") {
    return {
      kind: "outcome",
      outcome: { kind: "infra", reason: `probe printed no result (exit ${exec.code}): ${exec.stderr.trim().slice(0, 200)}` },
      evidence: { stdout: exec.stdout, stderr: exec.stderr },
    };
  }
  const r = run.report;
  if (!r.ok && r.errno) return { kind: "errno", errno: r.errno, detail: `${r.op}: ${r.errno}`, evidence: { probe: r } };
  if (!r.ok) return { kind: "outcome", outcome: { kind: "fail", detail: `${r.op} failed: ${JSON.stringify(r)}` }, evidence: { probe: r } };
  return onOk(r);
}

async function hashFile(file: string): Promise<{ hash: string; bytes: number }> {
  const h = new Fnv1a64();
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hash: h.hex(), bytes };
}

const readdir: WorkloadKind<Extract<WorkloadSpec, { kind: "readdir" }>> = {
  prepare: (w, ctx) => createEntries(dirOf(w, ctx.hostDir!), w.entries, "vmrig-readdir-probe"),
  command: (w, ctx) => `${PROBE} getdents ${shellQuote(dirOf(w, ctx.guestDir!))} ${w.bufferBytes}`,
  judge: (w, exec) =>
    probeJudgement(exec, (r) => {
      // Fewer entries than the host has, without an error, is SHORT (silent loss), never PASS.
      return { kind: "outcome", outcome: countOutcome(Number(r.entries), w.entries), evidence: { probe: r } };
    }),
};

const read: WorkloadKind<Extract<WorkloadSpec, { kind: "read" }>> = {
  async prepare(w, ctx) {
    const dir = dirOf(w, ctx.hostDir!);
    await mkdir(dir, { recursive: true });
    const f = await open(path.join(dir, "data"), "w");
    const h = new Fnv1a64();
    try {
      for (let left = w.sizeBytes; left > 0; ) {
        const chunk = randomBytes(Math.min(left, 1 << 20));
        h.update(chunk);
        await f.write(chunk);
        left -= chunk.length;
      }
    } finally {
      await f.close();
    }
    return { hostHash: h.hex(), hostBytes: w.sizeBytes };
  },
  command: (w, ctx) =>
    `${PROBE} read ${shellQuote(path.posix.join(dirOf(w, ctx.guestDir!), "data"))} ${w.blockBytes}${w.direct ? " --direct" : ""}${w.repeatForMs ? ` --for-ms ${w.repeatForMs}` : ""}`,
  judge: (w, exec, facts) => {
    const hostHash = facts.hostHash as string; // prepare's hex digest, passed back through the runner's untyped facts
    return probeJudgement(exec, (r) => {
      if (Number(r.differingPasses ?? 0) > 0) return { kind: "outcome", outcome: { kind: "fail", detail: `${r.differingPasses} of ${r.passes} passes read different bytes than the first` }, evidence: { probe: r } };
      if (Number(r.bytes) !== w.sizeBytes) return { kind: "outcome", outcome: { kind: "fail", detail: `read ${r.bytes} of ${w.sizeBytes} bytes` }, evidence: { probe: r } };
      if (r.fnv1a64 !== hostHash) {
        const detail = `checksum mismatch (guest ${r.fnv1a64}, host ${hostHash})`;
        return { kind: "outcome", outcome: { kind: "fail", detail }, evidence: { probe: r } };
      }
      return { kind: "outcome", outcome: { kind: "pass", detail: `${formatSize(w.sizeBytes)} verified${Number(r.passes) > 1 ? ` (${r.passes} passes)` : ""}` }, evidence: { probe: r, facts } };
    });
  },
};

const write: WorkloadKind<Extract<WorkloadSpec, { kind: "write" }>> = {
  async prepare(w, ctx) {
    await mkdir(dirOf(w, ctx.hostDir!), { recursive: true });
    return {};
  },
  command: (w, ctx) =>
    `${PROBE} write ${shellQuote(path.posix.join(dirOf(w, ctx.guestDir!), "data"))} ${w.sizeBytes} ${w.blockBytes} --seed 1${w.direct ? " --direct" : ""}`,
  judge: (w, exec, _facts, ctx) =>
    probeJudgement(exec, async (r) => {
      const file = path.join(dirOf(w, ctx.hostDir!), "data");
      const size = (await stat(file).catch(() => undefined))?.size;
      if (size !== w.sizeBytes) return { kind: "outcome", outcome: { kind: "fail", detail: `host sees ${size ?? "no"} bytes of ${w.sizeBytes}` }, evidence: { probe: r } };
      const { hash } = await hashFile(file);
      if (hash !== r.fnv1a64) return { kind: "outcome", outcome: { kind: "fail", detail: `host checksum ${hash} differs from guest ${r.fnv1a64}` }, evidence: { probe: r } };
      return { kind: "outcome", outcome: { kind: "pass", detail: `${formatSize(w.sizeBytes)} verified on host` }, evidence: { probe: r, hostHash: hash } };
    }),
};

const shell: WorkloadKind<Extract<WorkloadSpec, { kind: "shell" }>> = {
  prepare: async () => ({}),
  command: (w) => w.command,
  async judge(w, exec) {
    const evidence = { exitCode: exec.code, stdout: exec.stdout.slice(-4000), stderr: exec.stderr.slice(-4000) };
    if (exec.code === w.expectExit) return { kind: "outcome", outcome: { kind: "pass" }, evidence };
    const tail = (exec.stderr.trim() || exec.stdout.trim()).split("\n").pop()?.slice(0, 120) ?? "";
    return { kind: "outcome", outcome: { kind: "fail", detail: `exit ${exec.code}, expected ${w.expectExit}${tail ? `: ${tail}` : ""}` }, evidence };
  },
};

const kinds = { readdir, getdentsSweep, read, write, shell, fuseLie, overlayReaddir, nestedQemu: nestedQemuKind } as const;

export function workloadKind<W extends WorkloadSpec>(w: W): WorkloadKind<W> {
  return kinds[w.kind] as unknown as WorkloadKind<W>;
}

export function workloadShare(w: WorkloadSpec): string | undefined {
  return "share" in w ? w.share : undefined;
}
