// readdir: the guest lists a directory of `entries` files with one getdents64 buffer size and
// the count is checked against what the host created.
import { createEntries } from "./host-entries.ts";
import { defineWorkloadKind, workloadDir } from "./kind.ts";
import { countOutcome } from "./overlay-readdir.ts";
import { PROBE, probeJudgement, shellQuote } from "./probe.ts";
import { entryCount, shareName, size, strict } from "./fields.ts";

export const readdir = defineWorkloadKind({
  name: "readdir",
  schema: strict({
    share: shareName(),
    entries: entryCount(),
    // glibc's opendir buffer for a filesystem with small st_blksize.
    bufferSize: size().prefault("32K"),
  }),
  toSpec: ({ share, entries, bufferSize }) => ({ share, entries, bufferBytes: bufferSize }),
  searchable: { bufferSize: { field: "bufferBytes", unit: "bytes" }, entries: { field: "entries", unit: "count" } },
  prepareHost: (w, ctx) => createEntries(workloadDir(w, ctx.hostDir!), w.entries, "vmrig-readdir-probe"),
  guestCommand: (w, ctx) => `${PROBE} getdents ${shellQuote(workloadDir(w, ctx.guestDir!))} ${w.bufferBytes}`,
  judge: (w, exec) =>
    probeJudgement(exec, (r) => {
      // Fewer entries than the host has, without an error, is SHORT (silent loss), never PASS.
      return { kind: "outcome", outcome: countOutcome(Number(r.entries), w.entries), evidence: { probe: r } };
    }),
});
