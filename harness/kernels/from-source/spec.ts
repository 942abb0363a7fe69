// The `build` object of a kernel entry, validated: where the tree comes from, for which
// architecture, which config base and fragments, which patches. Pure except for checkBuildFiles.
import fs from "node:fs/promises";
import path from "node:path";
import type { Arch } from "../../types.ts";
import { ARCHES, archNamed } from "../../arch.ts";
import { VmrigError } from "../../util/errors.ts";
import { repoRoot } from "../../util/paths.ts";

export type BuildSource =
  /** Debian's `linux-source-X.Y` package; `version` pins a Debian version, `suite` one suite. */
  | { kind: "debian"; package: string; version?: string; suite?: string }
  /** A local repository (clone or worktree) at a ref; exported, never checked out in place. */
  | { kind: "git"; repo: string; ref: string }
  /** A local .tar(.gz|.xz|.zst|.bz2) holding one kernel tree. */
  | { kind: "tarball"; file: string };

export type ConfigBase = "tinyconfig" | "defconfig";
export const CONFIG_BASES: readonly ConfigBase[] = ["tinyconfig", "defconfig"];

export interface BuildSpec {
  label: string;
  source: BuildSource;
  arch: Arch;
  base: ConfigBase;
  /** Absolute paths of config fragments, merged in this order (later lines win). */
  fragments: string[];
  /** Absolute paths of patches, applied in this order with -p1. */
  patches: string[];
}

const KEYS = ["source", "arch", "base", "config", "patches"] as const;

const sourceHelp =
  'expected "debian:linux-source-X.Y" (optionally "=<debian version>" and/or "@<suite>"), ' +
  "{ git: <repository>, ref: <branch, tag or commit> } or { tarball: <file.tar.xz> }";

function show(v: unknown): string {
  // Parsed YAML always stringifies; JSON.stringify gives undefined only for functions and symbols.
  return v === undefined ? "nothing" : JSON.stringify(v) ?? typeof v;
}

/**
 * Validates the opaque `build` object of kernel `label`. `machineArch` is the scenario's
 * machine: a kernel built for another architecture could not boot there. Every problem is
 * collected and reported together, each naming the kernel and the key.
 */
export function parseBuildSpec(label: string, raw: Record<string, unknown>, machineArch: Arch): BuildSpec {
  const problems: string[] = [];
  const bad = (key: string, message: string) => problems.push(`build.${key}: ${message}`);

  for (const key of Object.keys(raw)) {
    if (!(KEYS as readonly string[]).includes(key)) bad(key, `unknown key (known: ${KEYS.join(", ")})`);
  }

  const source = parseSource(raw.source, bad);

  let arch: Arch = machineArch;
  if (raw.arch !== undefined) {
    const a = typeof raw.arch === "string" ? archNamed(raw.arch) : undefined;
    if (!a) bad("arch", `expected one of ${ARCHES.join(", ")}, got ${show(raw.arch)}`);
    else if (a !== machineArch) bad("arch", `is ${a}, but the scenario's machine is ${machineArch}: the kernel could not boot there`);
    else arch = a;
  }

  let base: ConfigBase = "tinyconfig";
  if (raw.base !== undefined) {
    if (typeof raw.base === "string" && (CONFIG_BASES as readonly string[]).includes(raw.base)) base = raw.base as ConfigBase;
    else bad("base", `expected ${CONFIG_BASES.join(" or ")}, got ${show(raw.base)}`);
  }

  const fragments = fileList("config", raw.config, bad);
  if (raw.config === undefined) bad("config", "missing: list the config fragments to merge over the base (e.g. kernels/guest-x86_64.config)");
  else if (fragments.length === 0 && problems.every((p) => !p.startsWith("build.config"))) {
    bad("config", "is empty: list at least one fragment (the guest image needs options tinyconfig lacks)");
  }
  const patches = raw.patches === undefined ? [] : fileList("patches", raw.patches, bad);

  if (problems.length || !source) {
    throw new VmrigError(`Kernel "${label}":${problems.length === 1 ? ` ${problems[0]}` : `\n  ${problems.join("\n  ")}`}`);
  }
  return { label, source, arch, base, fragments, patches };
}

function parseSource(raw: unknown, bad: (key: string, message: string) => void): BuildSource | undefined {
  if (raw === undefined) {
    bad("source", `missing: ${sourceHelp}`);
    return undefined;
  }
  if (typeof raw === "string") {
    const m = /^debian:(linux-source-\d+\.\d+)(?:=([^@\s]+))?(?:@([a-z][a-z0-9-]*))?$/.exec(raw);
    if (!m) {
      bad("source", `${show(raw)} is not a source: ${sourceHelp}`);
      return undefined;
    }
    return { kind: "debian", package: m[1]!, ...(m[2] ? { version: m[2] } : {}), ...(m[3] ? { suite: m[3] } : {}) };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    bad("source", `${sourceHelp}, got ${show(raw)}`);
    return undefined;
  }
  const o = raw as Record<string, unknown>;
  const keys = Object.keys(o);
  if ("git" in o) {
    const extra = keys.filter((k) => k !== "git" && k !== "ref");
    if (extra.length) bad(`source.${extra[0]}`, "unknown key (a git source has git and ref)");
    if (typeof o.git !== "string" || !o.git) bad("source.git", `expected the path of a git repository, got ${show(o.git)}`);
    if (typeof o.ref !== "string" || !o.ref) bad("source.ref", `expected a branch, tag or commit, got ${show(o.ref)}`);
    else if (o.ref.startsWith("-")) bad("source.ref", `${show(o.ref)} is not a ref`);
    return typeof o.git === "string" && typeof o.ref === "string" && o.git && o.ref && !o.ref.startsWith("-") && !extra.length
      ? { kind: "git", repo: path.resolve(o.git), ref: o.ref }
      : undefined;
  }
  if ("tarball" in o) {
    const extra = keys.filter((k) => k !== "tarball");
    if (extra.length) bad(`source.${extra[0]}`, "unknown key (a tarball source has only tarball)");
    if (typeof o.tarball !== "string" || !o.tarball) bad("source.tarball", `expected the path of a .tar.xz/.tar.gz file, got ${show(o.tarball)}`);
    else if (/^[a-z]+:\/\//i.test(o.tarball)) bad("source.tarball", `${show(o.tarball)}: URLs are not supported; download the file and give its path`);
    return typeof o.tarball === "string" && o.tarball && !/^[a-z]+:\/\//i.test(o.tarball) && !extra.length
      ? { kind: "tarball", file: path.resolve(o.tarball) }
      : undefined;
  }
  bad("source", `${sourceHelp}, got ${show(raw)}`);
  return undefined;
}

function fileList(key: string, raw: unknown, bad: (key: string, message: string) => void): string[] {
  if (raw === undefined) return [];
  const items = typeof raw === "string" ? [raw] : raw;
  if (!Array.isArray(items)) {
    bad(key, `expected a list of files, got ${show(raw)}`);
    return [];
  }
  const out: string[] = [];
  items.forEach((item, i) => {
    if (typeof item !== "string" || !item) bad(`${key}[${i}]`, `expected a file path, got ${show(item)}`);
    else out.push(path.resolve(item));
  });
  return out;
}

/**
 * Checks that every fragment and patch is a readable file. A missing one that vmrig ships
 * (same name under kernels/ or kernels/patches/) gets a hint: relative paths are resolved
 * against the scenario's directory, not the repository's.
 */
export async function checkBuildFiles(spec: BuildSpec): Promise<void> {
  const problems: string[] = [];
  const check = async (key: string, file: string) => {
    try {
      const st = await fs.stat(file);
      if (!st.isFile()) problems.push(`build.${key}: ${file} is not a file`);
    } catch {
      const shipped = await shippedAlternative(file);
      problems.push(
        `build.${key}: ${file} does not exist` +
          (shipped ? ` (relative paths are resolved against the scenario's directory; vmrig ships ${shipped})` : ""),
      );
    }
  };
  await Promise.all([
    ...spec.fragments.map((f, i) => check(`config[${i}]`, f)),
    ...spec.patches.map((p, i) => check(`patches[${i}]`, p)),
  ]);
  if (spec.source.kind === "tarball") await check("source.tarball", spec.source.file);
  if (spec.source.kind === "git") {
    try {
      await fs.access(spec.source.repo);
    } catch {
      problems.push(`build.source.git: ${spec.source.repo} does not exist`);
    }
  }
  if (problems.length) {
    throw new VmrigError(`Kernel "${spec.label}":${problems.length === 1 ? ` ${problems[0]}` : `\n  ${problems.join("\n  ")}`}`);
  }
}

async function shippedAlternative(file: string): Promise<string | undefined> {
  for (const dir of [path.join(repoRoot, "kernels"), path.join(repoRoot, "kernels", "patches")]) {
    const candidate = path.join(dir, path.basename(file));
    if (candidate === file) continue;
    try {
      await fs.access(candidate);
      return candidate;
    } catch {
      // not shipped there
    }
  }
  return undefined;
}

/** "linux-source-7.3", "git:linux@v7.3", "linux-7.3.tar.xz": the source as a table shows it. */
export function sourceName(source: BuildSource): string {
  switch (source.kind) {
    case "debian":
      return source.package;
    case "git":
      return `${path.basename(source.repo)}@${source.ref}`;
    case "tarball":
      return path.basename(source.file);
  }
}

/** `built linux-source-7.3 +a.patch (x86_64, tinyconfig+guest-x86_64.config)` */
export function describeBuild(spec: BuildSpec): string {
  const patches = spec.patches.map((p) => ` +${path.basename(p)}`).join("");
  const config = [spec.base, ...spec.fragments.map((f) => path.basename(f))].join("+");
  return `built ${sourceName(spec.source)}${patches} (${spec.arch}, ${config})`;
}
