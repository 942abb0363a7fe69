// What a build's tree makes of a config file: its base, the file merged over it
// (merge_config.sh -m) and olddefconfig, as configure() does for a build, but keeping what
// Kconfig dropped instead of failing (config bisect compares the results). kconfig runs in its
// own O= directory against the pristine tree, so no build slot is touched.
import fs from "node:fs/promises";
import path from "node:path";
import { configure } from "./config.ts";
import { openBuildLog, runMake, type MakeContext } from "./make.ts";
import type { BuildSpec } from "./spec.ts";
import { requireToolchain } from "./toolchain.ts";

export interface ResolveContext {
  signal: AbortSignal;
  log: (line: string) => void;
}

/** The .config text of spec.base + `file` + olddefconfig in `tree`; kconfig's output goes to `out`. */
export async function resolveConfigFile(
  spec: BuildSpec,
  tree: string,
  file: string,
  out: string,
  ctx: ResolveContext,
): Promise<string> {
  const toolchain = await requireToolchain(spec.arch);
  await fs.mkdir(out, { recursive: true });
  const logFile = path.join(out, "kconfig.log");
  const logStream = openBuildLog(logFile);
  const make: MakeContext = { label: spec.label, cwd: out, logStream, logFile, env: {}, ...ctx };
  try {
    return await configure({
      label: spec.label,
      writtenAt: spec.writtenAt,
      src: tree,
      out,
      base: spec.base,
      fragments: [{ file, text: await fs.readFile(file, "utf8") }],
      makeVars: toolchain.makeVars,
      signal: ctx.signal,
      make: (args, stage) => runMake(make, ["-C", tree, `O=${out}`, ...toolchain.makeVars, ...args], stage),
      checkStuck: false,
    });
  } finally {
    await new Promise((r) => logStream.end(r));
  }
}
