// exec: a dynamically linked host program, with its loader and libraries, executed from a share.
// The kernel maps the program and ld.so maps its libraries from the share's page cache, so a
// kernel that corrupts mapped file pages fails here even when read(2) of the same files is right.
// The expectation is the host's own run of the same program in the same tree, unless the scenario
// writes one.
import { readFileSync, statSync } from "node:fs";
import { copyFile, mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import { z } from "zod";
import { hostArchOf } from "../arch.ts";
import type { Arch } from "../types.ts";
import { elfInterpreter } from "../image/elf.ts";
import { parseLdd } from "../image/binaries.ts";
import { defineWorkloadKind, workloadDir, type Exited, type Judgement } from "./kind.ts";
import { shellQuote } from "./probe.ts";
import { isMapping, shareName, strict } from "./fields.ts";

/** Where the program's tree goes inside the workload's directory; the guest chroots into it. */
const ROOT = "root";
/** Ends each run's output in the guest's stdout: `<marker> <run> <exit status>`. */
const RUN_END = "@@vmrig-exec-end";

export const exec = defineWorkloadKind({
  name: "exec",
  schema: strict({
    share: shareName(),
    program: z
      .string()
      .regex(/^\/[^\0]*$/, { error: "must be an absolute path of a host program" })
      .default("/usr/bin/sha256sum")
      .meta({ description: "A dynamically linked host program; with its loader and libraries it is copied." }),
    args: z
      .array(z.string().max(4096))
      .max(64)
      .optional()
      .meta({ description: "Its arguments, in a chroot of the copied tree (default: the program's own path)." }),
    runs: z.number().int().min(1).max(20).default(3).meta({
      description: "How many times the guest runs it: later runs map the pages the first one brought into the cache.",
    }),
    expectExit: z.number().int().min(0).max(255).optional(),
    expectStdout: z
      .string()
      .optional()
      .meta({ description: "The exact standard output; default: what the same command prints on the host." }),
  }),
  toSpec: ({ share, program, args, runs, expectExit, expectStdout }) => ({
    share,
    program,
    args: args ?? [program],
    runs,
    expectExit,
    expectStdout,
  }),
  checkInFile({ written, file, problem }) {
    const machine = isMapping(file) && isMapping(file.machine) ? file.machine : {};
    const arch = (typeof machine.arch === "string" ? machine.arch : "x86_64") as Arch;
    if (hostArchOf() !== arch) {
      problem([], written, `runs host programs (${process.arch}): this scenario's guests are ${arch}`);
    }
    const program = isMapping(written) ? written.program : undefined;
    if (typeof program !== "string") return;
    if (!isFile(program)) problem(["program"], program, `${program} is not a file on this host`);
    else if (elfInterpreter(readFileSync(program)) === undefined) {
      problem(["program"], program, `${program} is not a dynamically linked program (it has no ELF interpreter)`);
    }
  },
  async prepareHost(w, ctx) {
    const root = path.join(workloadDir(w, ctx.hostDir!), ROOT);
    const files = await programFiles(w.program);
    for (const file of files) {
      await mkdir(path.join(root, path.dirname(file)), { recursive: true });
      await copyFile(file, path.join(root, file));
    }
    const host = await execa("chroot", [root, w.program, ...w.args], { reject: false, stripFinalNewline: false });
    // 125: chroot itself failed (not root, say), so the host's run says nothing about the program.
    if (host.exitCode === 125 && host.stderr.startsWith("chroot:")) throw new Error(host.stderr.trim());
    return { files, hostExit: host.exitCode, hostStdout: host.stdout, hostStderr: host.stderr };
  },
  guestCommand(w, ctx) {
    const run = ["chroot", path.posix.join(workloadDir(w, ctx.guestDir!), ROOT), w.program, ...w.args];
    const numbers = Array.from({ length: w.runs }, (_, i) => i + 1).join(" ");
    const end = `printf '\\n${RUN_END} %s %s\\n' "$i" "$?"`;
    return `for i in ${numbers}; do ${run.map(shellQuote).join(" ")}; ${end}; done`;
  },
  judge: (w, run, facts) => judgeExec(w, run, facts),
});

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The program, every library ldd lists for it and its ELF interpreter: absolute host paths. */
async function programFiles(program: string): Promise<string[]> {
  const interpreter = elfInterpreter(await readFile(program));
  if (interpreter === undefined) throw new Error(`${program} is no longer a dynamically linked program`);
  const { stdout } = await execa("ldd", [program]);
  return [...new Set([program, ...parseLdd(stdout), interpreter])];
}

interface ExecExpectation {
  runs: number;
  expectExit?: number;
  expectStdout?: string;
}

export interface ExecRun {
  run: number;
  exit: number;
  stdout: string;
}

/** The guest's stdout cut at the end markers: one entry per run that finished. */
export function splitRuns(stdout: string): ExecRun[] {
  const runs: ExecRun[] = [];
  const marker = new RegExp(`\\n${RUN_END} (\\d+) (\\d+)\\n`, "g");
  let from = 0;
  for (const m of stdout.replace(/\r\n/g, "\n").matchAll(marker)) {
    runs.push({ run: Number(m[1]), exit: Number(m[2]), stdout: stdout.replace(/\r\n/g, "\n").slice(from, m.index) });
    from = m.index + m[0].length;
  }
  return runs;
}

export function judgeExec(w: ExecExpectation, run: Exited, facts: Record<string, unknown>): Judgement {
  const exit = w.expectExit ?? (facts.hostExit as number);
  const stdout = w.expectStdout ?? (facts.hostStdout as string);
  const runs = splitRuns(run.stdout);
  const evidence = {
    runs: runs.map((r) => ({ run: r.run, exit: r.exit, stdout: r.stdout.slice(-2000) })),
    stderr: run.stderr.slice(-4000),
    expected: { exitCode: exit, stdout: stdout.slice(-4000), from: w.expectStdout === undefined ? "host" : "scenario" },
  };
  const fail = (detail: string): Judgement => ({ kind: "outcome", outcome: { kind: "fail", detail }, evidence });
  const said = run.stderr.trim().split("\n").pop()?.slice(0, 120) ?? "";
  const bad = runs.filter((r) => r.exit !== exit || normalize(r.stdout) !== normalize(stdout));
  if (runs.length !== w.runs) return fail(`${runs.length} of ${w.runs} runs finished${said ? `: ${said}` : ""}`);
  if (bad.length === 0) return { kind: "outcome", outcome: { kind: "pass" }, evidence };
  const first = bad[0]!;
  const how =
    first.exit !== exit
      ? `exit ${first.exit}, expected ${exit}`
      : `output differs from the ${evidence.expected.from}'s`;
  const which = `run${bad.length > 1 ? "s" : ""} ${bad.map((r) => r.run).join(", ")} of ${w.runs}`;
  return fail(`${which}: ${how}${said ? `: ${said}` : ""}`);
}

// The guest's output comes back through SSH, which may turn line ends into CRLF.
const normalize = (s: string) => s.replace(/\r\n/g, "\n").replace(/\n+$/, "");
