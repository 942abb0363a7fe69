// shell: any command in the guest; the cell is its exit status.
import { z } from "zod";
import { defineWorkloadKind } from "./kind.ts";
import { strict } from "./fields.ts";

export const shell = defineWorkloadKind({
  name: "shell",
  schema: strict({
    command: z.string().min(1),
    expectExit: z.number().int().min(0).max(255).default(0),
  }),
  toSpec: ({ command, expectExit }) => ({ command, expectExit }),
  guestCommand: (w) => w.command,
  judge(w, exec) {
    const evidence = { exitCode: exec.code, stdout: exec.stdout.slice(-4000), stderr: exec.stderr.slice(-4000) };
    if (exec.code === w.expectExit) return { kind: "outcome", outcome: { kind: "pass" }, evidence };
    const tail = (exec.stderr.trim() || exec.stdout.trim()).split("\n").pop()?.slice(0, 120) ?? "";
    const detail = `exit ${exec.code}, expected ${w.expectExit}${tail ? `: ${tail}` : ""}`;
    return { kind: "outcome", outcome: { kind: "fail", detail }, evidence };
  },
});
