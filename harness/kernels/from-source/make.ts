// Running make for a kernel: everything goes to build.log; the caller's log gets the stage,
// the elapsed time and the current kbuild step every few seconds; a failure carries the tail.
import { createWriteStream, type WriteStream } from "node:fs";
import readline from "node:readline";
import { spawnChild } from "../../util/children.ts";
import { VmrigError } from "../../util/errors.ts";

/** "  CC      fs/fuse/readdir.o" -> ["CC", "fs/fuse/readdir.o"]: kbuild's quiet step lines. */
export function kbuildStep(line: string): { tool: string; target: string } | undefined {
  const m = /^ {2}([A-Z][A-Z0-9_-]*) +(\S.*)$/.exec(line);
  return m ? { tool: m[1]!, target: m[2]!.trim() } : undefined;
}

/** Compiler steps: the objects make actually rebuilt (what "incremental" means, measurably). */
const COMPILE_TOOLS = new Set(["CC", "AS", "CPP", "LDS"]);

export function formatElapsed(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/**
 * The host environment minus what would silently change a kernel build behind the cache key:
 * kbuild and kconfig variables (KCONFIG_CONFIG, KBUILD_*, KCFLAGS, LLVM, ARCH, ...) and an outer
 * make's MAKEFLAGS.
 */
export function cleanBuildEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const drop =
    /^(KCONFIG_.*|KBUILD_.*|K(C|CPP|A|RUST)FLAGS|LLVM|LLVM_IAS|CROSS_COMPILE|ARCH|SUBARCH|LOCALVERSION|INSTALL_.*|MAKEFLAGS|MFLAGS|MAKELEVEL|MAKEFILES|GNUMAKEFLAGS|[OVWCM])$/;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !drop.test(k)) out[k] = v;
  return out;
}

export interface MakeResult {
  ms: number;
  /** Targets of CC/AS steps, in order (host tools excluded). */
  compiled: string[];
}

export interface MakeContext {
  label: string;
  cwd: string;
  /** Shared log stream (build.log). */
  logStream: WriteStream;
  logFile: string;
  env: Record<string, string>;
  signal: AbortSignal;
  log: (line: string) => void;
  /** Seconds between progress lines (default 5 on a terminal, 30 otherwise). */
  heartbeatSeconds?: number;
}

/** Opens (truncating) the build log. */
export function openBuildLog(file: string): WriteStream {
  return createWriteStream(file, { flags: "w" });
}

export async function runMake(ctx: MakeContext, args: string[], stage: string): Promise<MakeResult> {
  const started = Date.now();
  ctx.logStream.write(`\n### ${new Date().toISOString()} ${stage}\n### make ${args.join(" ")}\n`);
  ctx.log(stage);
  const child = spawnChild("make", args, {
    cwd: ctx.cwd,
    env: { ...cleanBuildEnv(process.env), ...ctx.env, LC_ALL: "C" },
    extendEnv: false,
    stdout: "pipe",
    stderr: "pipe",
    cancelSignal: ctx.signal,
  });
  const tail: string[] = [];
  const compiled: string[] = [];
  let current = "";
  const onLine = (line: string) => {
    ctx.logStream.write(line + "\n");
    tail.push(line);
    if (tail.length > 60) tail.shift();
    const step = kbuildStep(line);
    if (step) {
      current = `${step.tool} ${step.target}`;
      if (COMPILE_TOOLS.has(step.tool)) compiled.push(step.target);
    }
  };
  const readers = [child.stdout, child.stderr].map(async (s) => {
    if (!s) return;
    for await (const line of readline.createInterface({ input: s, crlfDelay: Infinity })) onLine(line);
  });
  const beat = setInterval(
    () => {
      ctx.log(`${stage}: ${formatElapsed(Date.now() - started)}${current ? `, ${current}` : ""}`);
    },
    (ctx.heartbeatSeconds ?? (process.stderr.isTTY ? 5 : 30)) * 1000,
  );
  let result;
  try {
    [result] = await Promise.all([child, ...readers]);
  } finally {
    clearInterval(beat);
  }
  const ms = Date.now() - started;
  ctx.logStream.write(`### exit ${result.exitCode ?? result.signal} after ${formatElapsed(ms)}\n`);
  if (ctx.signal.aborted) throw ctx.signal.reason ?? new Error("aborted");
  if ((result as { code?: string }).code === "ENOENT")
    throw new VmrigError("make is not installed: install the make package.");
  if (result.exitCode !== 0) {
    const errors = tail.filter((l) => /\berror\b|Error \d|\*\*\*/.test(l));
    const shown = (errors.length ? errors : tail)
      .slice(-25)
      .map((l) => `    ${l}`)
      .join("\n");
    throw new VmrigError(
      `Kernel "${ctx.label}": ${stage} failed (exit ${result.exitCode ?? result.signal}) after ${formatElapsed(ms)}. ` +
        `Full log: ${ctx.logFile}\n  last lines:\n${shown}`,
    );
  }
  return { ms, compiled };
}
