// write: the guest writes `size` bytes of a seeded pattern through the share with the probe;
// the host must then hold the same bytes.
import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { formatSize } from "../util/size.ts";
import { defineWorkloadKind, workloadDir, type Judgement } from "./kind.ts";
import { PROBE, probeJudgement, shellQuote } from "./probe.ts";
import { strict } from "./fields.ts";
import { blockBytesOf, blockSizeWithinSize, hashFile, streamFields } from "./stream.ts";

export const write = defineWorkloadKind({
  name: "write",
  schema: strict(streamFields).superRefine(blockSizeWithinSize),
  toSpec: (w) => ({ share: w.share, sizeBytes: w.size, blockBytes: blockBytesOf(w), direct: w.direct }),
  searchable: { size: { field: "sizeBytes", unit: "bytes" }, blockSize: { field: "blockBytes", unit: "bytes" } },
  async prepareHost(w, ctx) {
    await mkdir(workloadDir(w, ctx.hostDir!), { recursive: true });
    return {};
  },
  guestCommand: (w, ctx) =>
    `${PROBE} write ${shellQuote(path.posix.join(workloadDir(w, ctx.guestDir!), "data"))}` +
    ` ${w.sizeBytes} ${w.blockBytes} --seed 1${w.direct ? " --direct" : ""}`,
  judge: (w, exec, _facts, ctx) =>
    probeJudgement(exec, async (r) => {
      const fail = (detail: string): Judgement => ({
        kind: "outcome",
        outcome: { kind: "fail", detail },
        evidence: { probe: r },
      });
      const file = path.join(workloadDir(w, ctx.hostDir!), "data");
      const size = (await stat(file).catch(() => undefined))?.size;
      if (size !== w.sizeBytes) return fail(`host sees ${size ?? "no"} bytes of ${w.sizeBytes}`);
      const { hash } = await hashFile(file);
      if (hash !== r.fnv1a64) return fail(`host checksum ${hash} differs from guest ${r.fnv1a64}`);
      const pass = { kind: "pass" as const, detail: `${formatSize(w.sizeBytes)} verified on host` };
      return { kind: "outcome", outcome: pass, evidence: { probe: r, hostHash: hash } };
    }),
});
