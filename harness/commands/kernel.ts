// `vmrig kernel build <scenario> [label]`, `vmrig kernel list`, `vmrig kernel gc`.
import fs from "node:fs/promises";
import path from "node:path";
import type { KernelArtifact } from "../types.ts";
import { loadScenario } from "../scenario/load.ts";
import { createProgress, type Progress } from "../run/progress.ts";
import { ExitCode, VmrigError } from "../util/errors.ts";
import { type BuildOutcome, artifactOf, buildKernel } from "../kernels/from-source/builder.ts";
import { collectGarbage, listEntries } from "../kernels/from-source/cache.ts";
import { formatElapsed } from "../kernels/from-source/make.ts";
import { buildPaths, lastUsed } from "../kernels/from-source/paths.ts";
import { resolveKernel } from "../kernels/provider.ts";
import { fetchDebianVmlinux } from "../kernels/debian-debug.ts";
import { kernelArch } from "../scenario/platform.ts";

export interface CommandIO {
  out?: (line: string) => void;
  progress?: Progress;
  signal?: AbortSignal;
}

const stdout = (line: string) => process.stdout.write(line + "\n");

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ${units[i]}`;
}

/**
 * `vmrig kernel build`: builds the `build` kernels of a scenario (or only `label`), reusing the
 * cache, and prints one line per kernel: label, key, release and image path.
 */
export async function kernelBuildCommand(scenarioFile: string, label?: string, io: CommandIO = {}): Promise<number> {
  await buildScenarioKernels(scenarioFile, label, io);
  return ExitCode.ok;
}

/** What `vmrig kernel build` does, returning the artifacts and how each was obtained. */
export async function buildScenarioKernels(
  scenarioFile: string,
  label?: string,
  io: CommandIO = {},
): Promise<Array<{ artifact: KernelArtifact; outcome: BuildOutcome }>> {
  const out = io.out ?? stdout;
  const progress = io.progress ?? createProgress();
  const signal = io.signal ?? new AbortController().signal;
  const scenario = await loadScenario(path.resolve(scenarioFile));
  const builds = scenario.kernels.filter((k) => k.source.kind === "build");
  let chosen = builds;
  if (label !== undefined) {
    const k = scenario.kernels.find((x) => x.label === label);
    if (!k)
      throw new VmrigError(
        `${scenario.file}: no kernel "${label}" (kernels: ${scenario.kernels.map((x) => x.label).join(", ")})`,
      );
    if (k.source.kind !== "build")
      throw new VmrigError(
        `${scenario.file}: kernel "${label}" is a ${k.source.kind} kernel, not one built from source`,
      );
    chosen = [k];
  }
  if (chosen.length === 0)
    throw new VmrigError(`${scenario.file}: no kernel is built from source (no \`build:\` entries)`);

  // The loader checked every spec (and its arch against the row's) before the first long build.
  const specs = chosen.flatMap((k) => (k.source.kind === "build" ? [k.source.spec] : []));
  const results: Array<{ artifact: KernelArtifact; outcome: BuildOutcome }> = [];
  for (const spec of specs) {
    const started = Date.now();
    const outcome = await buildKernel(spec, { arch: spec.arch, signal, log: (l) => progress.stage(spec.label, l) });
    const artifact = artifactOf(spec, outcome.manifest);
    const how =
      outcome.how === "built"
        ? `built in ${formatElapsed(outcome.make?.ms ?? Date.now() - started)}, ` +
          `${outcome.manifest.compiledObjects} objects compiled`
        : `cached (${formatElapsed(Date.now() - started)})`;
    progress.info(`${spec.label}: ${artifact.description}: ${how}`);
    results.push({ artifact, outcome });
  }
  out("");
  for (const { artifact } of results)
    out(`${artifact.label}  ${artifact.identity}  ${artifact.release ?? "?"}  ${artifact.image}`);
  return results;
}

/**
 * `vmrig kernel debug-symbols <scenario> LABEL`: prints the path of that row's vmlinux with
 * symbols, fetching it first (a Debian kernel's -dbg package, or the build of a built one).
 * Only the path goes to stdout, so `gdb "$(vmrig kernel debug-symbols ...)"` works.
 */
export async function kernelDebugSymbolsCommand(
  scenarioFile: string,
  label: string,
  io: CommandIO = {},
): Promise<number> {
  const out = io.out ?? stdout;
  const progress = io.progress ?? createProgress();
  const signal = io.signal ?? new AbortController().signal;
  const scenario = await loadScenario(path.resolve(scenarioFile));
  const k = scenario.kernels.find((x) => x.label === label);
  if (!k)
    throw new VmrigError(
      `${scenario.file}: no kernel "${label}" (kernels: ${scenario.kernels.map((x) => x.label).join(", ")})`,
    );
  if (k.source.kind === "build") {
    const [built] = await buildScenarioKernels(scenarioFile, label, { ...io, out: () => undefined, progress });
    if (!built?.artifact.vmlinux) throw new VmrigError(`${label}: its build kept no vmlinux`);
    out(built.artifact.vmlinux);
    return ExitCode.ok;
  }
  if (k.source.kind !== "debian")
    throw new VmrigError(
      `${scenario.file}: kernel "${label}" is a ${k.source.kind} kernel: vmrig has no symbols for it`,
    );
  const log = (l: string) => progress.info(`${label}: ${l}`);
  const artifact = await resolveKernel(k, { arch: kernelArch(scenario, k), signal, log });
  out(await fetchDebianVmlinux(artifact, { signal, log }));
  return ExitCode.ok;
}

/** Lists built kernels, most recently used first, and what the work directories hold. */
export async function kernelListCommand(io: CommandIO = {}): Promise<number> {
  const out = io.out ?? stdout;
  const entries = await listEntries();
  if (entries.length === 0) out(`no built kernels in ${buildPaths.entries()}`);
  else {
    const rows = entries.map((e) => [
      e.key,
      e.manifest.release ?? "?",
      e.manifest.builtAt.slice(0, 16).replace("T", " "),
      e.lastUsed ? e.lastUsed.toISOString().slice(0, 16).replace("T", " ") : "?",
      formatBytes(e.bytes),
      e.manifest.description,
    ]);
    const head = ["KEY", "RELEASE", "BUILT", "LAST USED", "SIZE", "DESCRIPTION"];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [head, ...rows])
      out(
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
          .join("  ")
          .trimEnd(),
      );
  }
  const slots = await fs.readdir(buildPaths.work()).catch(() => [] as string[]);
  if (slots.length) {
    const newest = (await Promise.all(slots.map((s) => lastUsed(path.join(buildPaths.work(), s))))).reduce<
      Date | undefined
    >((a, b) => (b && (!a || b > a) ? b : a), undefined);
    out(
      `${slots.length} build work director${slots.length === 1 ? "y" : "ies"} in ${buildPaths.work()} ` +
        `(last used ${newest?.toISOString().slice(0, 10) ?? "?"}); \`vmrig kernel gc --work\` removes them`,
    );
  }
  return ExitCode.ok;
}

export interface GcCommandOptions extends CommandIO {
  maxAgeDays?: number;
  /** Also remove every build work directory (incremental builds start over, from ccache). */
  work?: boolean;
  dryRun?: boolean;
}

/** Removes interrupted builds' leftovers and what was not used for a while. */
export async function kernelGcCommand(opts: GcCommandOptions = {}): Promise<number> {
  const out = opts.out ?? stdout;
  const report = await collectGarbage({ maxAgeDays: opts.maxAgeDays, dropWork: opts.work, dryRun: opts.dryRun });
  for (const r of report.removed)
    out(`${opts.dryRun ? "would remove" : "removed"} ${r.path} (${formatBytes(r.bytes)}): ${r.why}`);
  const freed = report.removed.reduce((s, r) => s + r.bytes, 0);
  out(`${opts.dryRun ? "would free" : "freed"} ${formatBytes(freed)}; kept ${report.kept}`);
  return ExitCode.ok;
}
