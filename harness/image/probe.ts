// Builds the static guest probe (images/probe/vmrig-probe.c), cached by source and compiler.

import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import type { Arch } from "../types.ts";
import { requireCapabilities } from "../host/check.ts";
import { compilerFor } from "../host/requirements.ts";
import { cachePaths, repoRoot } from "../util/paths.ts";
import { buildDirAtomic } from "../util/atomic-fs.ts";

export const PROBE_SOURCE = path.join(repoRoot, "images", "probe", "vmrig-probe.c");
/** Headers every guest program shares (the JSON line and errno names). */
const COMMON_INCLUDE = path.join(repoRoot, "images", "common");
const COMMON_HEADERS = ["json-line.h"];
const CFLAGS = ["-static", "-O2", "-Wall", "-Wextra", "-s"];

export interface ProbeBinary {
  path: string;
  /** sha256 of the binary. */
  sha256: string;
}

export function buildProbe(arch: Arch, signal: AbortSignal): Promise<ProbeBinary> {
  return buildStaticProgram(arch, PROBE_SOURCE, "vmrig-probe", signal);
}

/** Any single-file static guest program (the probe, the reproducers under images/repro/). */
export async function buildStaticProgram(
  arch: Arch,
  sourceFile: string,
  name: string,
  signal: AbortSignal,
): Promise<ProbeBinary> {
  const compiler = { command: compilerFor(arch).gcc };
  // The shared headers are part of what the binary is built from, so part of its cache key.
  const source = Buffer.concat([
    await fs.readFile(sourceFile),
    ...(await Promise.all(COMMON_HEADERS.map((h) => fs.readFile(path.join(COMMON_INCLUDE, h))))),
  ]);
  const found = await execa(compiler.command, ["--version"], { cancelSignal: signal, reject: false });
  // No compiler: the shared preflight names everything missing and the command that installs it.
  if (found.exitCode !== 0) await requireCapabilities([`guests-${arch}`]);
  const version = found.stdout.split("\n")[0]!;
  const key = createHash("sha256")
    .update(source)
    .update(name === "vmrig-probe" ? "" : `\0${name}`)
    .update(`\0${compiler.command}\0${version}\0${CFLAGS.join(" ")}`)
    .digest("hex");
  const dir = path.join(cachePaths.probes(), arch, key.slice(0, 24));
  const binary = path.join(dir, name);
  try {
    return { path: binary, sha256: await sha256File(binary) };
  } catch {
    // not built yet
  }

  // Compile beside the final place and rename, so a reader never sees a half-written probe.
  await buildDirAtomic(dir, async (tmp) => {
    const args = [...CFLAGS, `-I${COMMON_INCLUDE}`, "-o", path.join(tmp, name), sourceFile];
    await execa(compiler.command, args, { cancelSignal: signal });
  });
  return { path: binary, sha256: await sha256File(binary) };
}

export async function sha256File(file: string): Promise<string> {
  return createHash("sha256")
    .update(await fs.readFile(file))
    .digest("hex");
}
