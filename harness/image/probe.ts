// Builds the static guest probe (images/probe/vmrig-probe.c), cached by source and compiler.

import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import type { Arch } from "../types.ts";
import { HostError } from "../util/errors.ts";
import { cachePaths, repoRoot } from "../util/paths.ts";

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

/** gcc for the host's own architecture, the Debian cross compiler otherwise. */
function compilerFor(arch: Arch): { command: string; debianPackages: string } {
  const native = (arch === "x86_64" && process.arch === "x64") || (arch === "aarch64" && process.arch === "arm64");
  if (native) return { command: "gcc", debianPackages: "gcc libc6-dev" };
  return arch === "aarch64"
    ? { command: "aarch64-linux-gnu-gcc", debianPackages: "gcc-aarch64-linux-gnu libc6-dev-arm64-cross" }
    : { command: "x86_64-linux-gnu-gcc", debianPackages: "gcc-x86-64-linux-gnu libc6-dev-amd64-cross" };
}

export function buildProbe(arch: Arch, signal: AbortSignal): Promise<ProbeBinary> {
  return buildStaticProgram(arch, PROBE_SOURCE, "vmrig-probe", signal);
}

/** Any single-file static guest program (the probe, the reproducers under images/repro/). */
export async function buildStaticProgram(arch: Arch, sourceFile: string, name: string, signal: AbortSignal): Promise<ProbeBinary> {
  const compiler = compilerFor(arch);
  // The shared headers are part of what the binary is built from, so part of its cache key.
  const source = Buffer.concat([await fs.readFile(sourceFile), ...(await Promise.all(COMMON_HEADERS.map((h) => fs.readFile(path.join(COMMON_INCLUDE, h)))))]);
  let version: string;
  try {
    version = (await execa(compiler.command, ["--version"], { cancelSignal: signal })).stdout.split("\n")[0]!;
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") {
      throw new HostError(`${compiler.command} not found: install ${compiler.debianPackages} to build the ${arch} guest probe`);
    }
    throw e;
  }
  const key = createHash("sha256").update(source).update(name === "vmrig-probe" ? "" : `\0${name}`).update(`\0${compiler.command}\0${version}\0${CFLAGS.join(" ")}`).digest("hex");
  const dir = path.join(cachePaths.probes(), arch, key.slice(0, 24));
  const binary = path.join(dir, name);
  try {
    return { path: binary, sha256: await sha256File(binary) };
  } catch {
    // not built yet
  }

  // Compile beside the final place and rename, so a reader never sees a half-written probe.
  await fs.mkdir(path.dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  await fs.mkdir(tmp);
  try {
    await execa(compiler.command, [...CFLAGS, `-I${COMMON_INCLUDE}`, "-o", path.join(tmp, name), sourceFile], { cancelSignal: signal });
    await fs.rename(tmp, dir).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOTEMPTY" && e.code !== "EEXIST") throw e; // another build won the race
    });
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return { path: binary, sha256: await sha256File(binary) };
}

export async function sha256File(file: string): Promise<string> {
  return createHash("sha256").update(await fs.readFile(file)).digest("hex");
}
