// A kernel's `build` entry, as the scenario schema validated it (harness/scenario/build.ts):
// where the tree comes from, for which architecture, which config base and fragments, which
// patches. What needs the filesystem is checked here, when the kernel is about to be built.
import fs from "node:fs/promises";
import path from "node:path";
import type { Arch, BuildSource, BuildSpec } from "../../types.ts";
import { formatIssue, SpecError, VmrigError } from "../../util/errors.ts";
import { repoRoot } from "../../util/paths.ts";

export type { BuildSource, BuildSpec, ConfigBase } from "../../types.ts";

/** A build written in code rather than a scenario (benchmarks, tests): Debian's linux-source package. */
export function debianSourceBuild(
  label: string,
  pkg: string,
  arch: Arch,
  fragments: string[],
  patches: string[] = [],
): BuildSpec {
  return { label, source: { kind: "debian", package: pkg }, arch, base: "tinyconfig", fragments, patches };
}

/** Which kernel a build problem is about, and where its scenario wrote each key (when it came from one). */
export type BuildNaming = Pick<BuildSpec, "label" | "writtenAt">;

/**
 * A build-time problem with one `build.<key>` ("patches[1]", "source.ref", "config"): from a
 * scenario, at the line that wrote the key, as the loader reports everything else; otherwise
 * by kernel label.
 */
export function buildProblem(build: BuildNaming, key: string, message: string): string {
  const at = build.writtenAt?.[key];
  return at ? formatIssue({ ...at, message }) : `Kernel "${build.label}": build.${key}: ${message}`;
}

/**
 * Checks that every fragment and patch is a readable file. A missing one that vmrig ships
 * (same name under kernels/ or kernels/patches/) gets a hint: relative paths are resolved
 * against the scenario's directory, not the repository's.
 */
export async function checkBuildFiles(spec: BuildSpec): Promise<void> {
  const problems: Array<{ key: string; message: string }> = [];
  const check = async (key: string, file: string) => {
    try {
      const st = await fs.stat(file);
      if (!st.isFile()) problems.push({ key, message: `${file} is not a file` });
    } catch {
      const shipped = await shippedAlternative(file);
      problems.push({
        key,
        message:
          `${file} does not exist` +
          (shipped ? ` (relative paths are resolved against the scenario's directory; vmrig ships ${shipped})` : ""),
      });
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
      problems.push({ key: "source.git", message: `${spec.source.repo} does not exist` });
    }
  }
  if (!problems.length) return;
  // From a scenario: at the lines that name the files, as the loader reports everything else.
  const at = spec.writtenAt;
  if (at && problems.every((p) => at[p.key])) {
    throw new SpecError(problems.map((p) => ({ ...at[p.key]!, message: p.message })));
  }
  const lines = problems.map((p) => `build.${p.key}: ${p.message}`);
  throw new VmrigError(`Kernel "${spec.label}":${lines.length === 1 ? ` ${lines[0]}` : `\n  ${lines.join("\n  ")}`}`);
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
