// shell: any command in the guest; the cell is its exit status. With a share it runs in the workload's own directory
// there, after vmrig copied the host files it needs into it (a program the guest image does not carry).
import { copyFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { defineWorkloadKind, workloadDir } from "./kind.ts";
import { shareName, strict } from "./fields.ts";
import { shellQuote } from "./probe.ts";

export const shell = defineWorkloadKind({
  name: "shell",
  schema: strict({
    command: z.string().min(1),
    expectExit: z.number().int().min(0).max(255).default(0),
    share: shareName().optional(),
    files: z
      .array(z.string().min(1))
      .min(1)
      .max(16)
      .optional()
      .meta({
        description:
          "Host files (absolute, or relative to the scenario file) copied into the workload's directory in the " +
          "share before the command, which runs in that directory.",
      }),
  })
    .refine((w) => w.files === undefined || w.share !== undefined, {
      error: "files go into a share: name it in `share`",
      path: ["files"],
    })
    // They land side by side in one directory: a second file of the same name would replace the first.
    .refine((w) => new Set((w.files ?? []).map((f) => path.basename(f))).size === (w.files ?? []).length, {
      error: "two files with the same name would overwrite each other in the share",
      path: ["files"],
    }),
  toSpec: ({ command, expectExit, share, files }, at) => ({
    command,
    expectExit,
    ...(share !== undefined ? { share } : {}),
    ...(files ? { files: files.map((f) => path.resolve(at.dir, f)) } : {}),
  }),
  async prepareHost(w, ctx) {
    if (w.share === undefined) return {};
    const dir = workloadDir(w, ctx.hostDir!);
    await mkdir(dir, { recursive: true });
    // copyFile keeps the mode, so a program stays executable.
    for (const file of w.files ?? []) await copyFile(file, path.join(dir, path.basename(file)));
    return {};
  },
  // A subshell of its own: the command's `;` or `||` cannot reach around the cd.
  guestCommand: (w, ctx) =>
    w.share === undefined ? w.command : `cd ${shellQuote(workloadDir(w, ctx.guestDir!))} && (\n${w.command}\n)`,
  judge(w, exec) {
    const evidence = { exitCode: exec.code, stdout: exec.stdout.slice(-4000), stderr: exec.stderr.slice(-4000) };
    if (exec.code === w.expectExit) return { kind: "outcome", outcome: { kind: "pass" }, evidence };
    const tail = (exec.stderr.trim() || exec.stdout.trim()).split("\n").pop()?.slice(0, 120) ?? "";
    const detail = `exit ${exec.code}, expected ${w.expectExit}${tail ? `: ${tail}` : ""}`;
    return { kind: "outcome", outcome: { kind: "fail", detail }, evidence };
  },
});
