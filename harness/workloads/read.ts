// read: the host writes `size` random bytes; the guest reads them through the share with the
// probe and the checksums must agree. `repeatFor` keeps reading (every pass verified) so a
// timed fault lands mid-read however fast the host is.
import { mkdir, open } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { formatSize } from "../util/size.ts";
import { Fnv1a64 } from "./fnv.ts";
import { defineWorkloadKind, workloadDir, type Judgement } from "./kind.ts";
import { PROBE, probeJudgement, shellQuote } from "./probe.ts";
import { durationSchema, strict } from "./fields.ts";
import { blockBytesOf, blockSizeWithinSize, streamFields } from "./stream.ts";

export const read = defineWorkloadKind({
  name: "read",
  schema: strict({
    ...streamFields,
    repeatFor: durationSchema()
      .optional()
      .meta({
        description:
          'Read the file again from the start until this much wall-clock time has passed ("16s"); ' +
          "every pass is verified. Keeps a timed fault mid-read however fast the host is.",
      }),
  }).superRefine(blockSizeWithinSize),
  toSpec: (r) => ({
    share: r.share,
    sizeBytes: r.size,
    blockBytes: blockBytesOf(r),
    direct: r.direct,
    /** Re-read from the start until this much wall-clock time has passed (0: one pass). */
    repeatForMs: r.repeatFor ?? 0,
  }),
  searchable: { size: { field: "sizeBytes", unit: "bytes" }, blockSize: { field: "blockBytes", unit: "bytes" } },
  checkInFile({ written, stepSeconds, problem }) {
    // repeatFor is wall-clock time: it must end before the step's deadline.
    const repeatFor = (written as { repeatFor?: unknown } | undefined)?.repeatFor;
    if (typeof repeatFor === "number" && repeatFor >= stepSeconds * 1000) {
      problem(
        ["repeatFor"],
        repeatFor,
        `reads for ${repeatFor / 1000} s, but the step's deadline is ` +
          `timeouts.step = ${stepSeconds} s: the workload would be cut off as a HANG`,
      );
    }
  },
  async prepareHost(w, ctx) {
    const dir = workloadDir(w, ctx.hostDir!);
    await mkdir(dir, { recursive: true });
    const f = await open(path.join(dir, "data"), "w");
    const h = new Fnv1a64();
    try {
      for (let left = w.sizeBytes; left > 0;) {
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
  guestCommand: (w, ctx) =>
    `${PROBE} read ${shellQuote(path.posix.join(workloadDir(w, ctx.guestDir!), "data"))} ${w.blockBytes}` +
    `${w.direct ? " --direct" : ""}${w.repeatForMs ? ` --for-ms ${w.repeatForMs}` : ""}`,
  judge: (w, exec, facts) =>
    probeJudgement(exec, (r) => {
      const fail = (detail: string): Judgement => ({
        kind: "outcome",
        outcome: { kind: "fail", detail },
        evidence: { probe: r },
      });
      if (Number(r.differingPasses ?? 0) > 0) {
        return fail(`${r.differingPasses} of ${r.passes} passes read different bytes than the first`);
      }
      if (Number(r.bytes) !== w.sizeBytes) return fail(`read ${r.bytes} of ${w.sizeBytes} bytes`);
      const hostHash = facts.hostHash as string; // prepareHost's hex digest, back through the runner's facts
      if (r.fnv1a64 !== hostHash) return fail(`checksum mismatch (guest ${r.fnv1a64}, host ${hostHash})`);
      const passes = Number(r.passes) > 1 ? ` (${r.passes} passes)` : "";
      const pass = { kind: "pass" as const, detail: `${formatSize(w.sizeBytes)} verified${passes}` };
      return { kind: "outcome", outcome: pass, evidence: { probe: r, facts } };
    }),
});
