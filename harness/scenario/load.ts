// Scenario file -> Scenario. Every problem in the file is reported at once, each as
// `file:line:column key: message`, in one SpecError.

import { statSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { isMap, isScalar, LineCounter, parseDocument, visit, type Document } from "yaml";
import type { z } from "zod";
import type {
  Arch,
  BuildSpec,
  FaultAction,
  FaultStep,
  KernelEntry,
  KernelSource,
  Scenario,
  ShareSpec,
  WorkloadSpec,
} from "../types.ts";
import { workloadKeys } from "../workloads/registry.ts";
import { SpecError, VmrigError, type SourceLocation } from "../util/errors.ts";
import { keyPath, keyText, locate } from "./locate.ts";
import { specErrorMap } from "./messages.ts";
import { scenarioFileSchema, type ScenarioFile } from "./schema.ts";
import type { WrittenBuild } from "./build.ts";
import { debianFlavourFor } from "./platform.ts";
import { toMemorySpec, toVfioSpec } from "./vfio.ts";
import { toParamSearch } from "./param-search.ts";

type Issue = SourceLocation & { message: string };
/** Where a key path of the file was written. */
type WrittenAt = (at: PropertyKey[]) => SourceLocation;

export async function loadScenario(file: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EISDIR") throw new VmrigError(await directoryMessage(file));
    throw new VmrigError(
      code === "ENOENT"
        ? `scenario file not found: ${file}`
        : `cannot read scenario file ${file}: ${(err as Error).message}`,
    );
  }
  return parseScenario(text, file);
}

/** A directory where a scenario file was expected: name the scenario files it holds. */
async function directoryMessage(dir: string): Promise<string> {
  const yaml = (await readdir(dir).catch(() => [] as string[])).filter((n) => /\.ya?ml$/.test(n)).sort();
  const shown = yaml.slice(0, 8).map((n) => path.join(dir, n));
  const more = yaml.length > shown.length ? ` and ${yaml.length - shown.length} more` : "";
  return (
    `${dir} is a directory, not a scenario file` +
    (shown.length ? `; it holds ${shown.join(", ")}${more}` : "; it holds no .yaml file")
  );
}

/** `file` names the source in messages (as given) and anchors relative paths (made absolute). */
export function parseScenario(text: string, file: string): Scenario {
  const lineCounter = new LineCounter();
  // `merge` lets kernels share settings through `<<: *anchor`, as in CI files.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true });
  if (doc.errors.length > 0) {
    throw new SpecError(
      doc.errors.map((e) => ({ file, ...position(lineCounter, e.pos[0]), message: `invalid YAML: ${e.message}` })),
    );
  }
  keysAsWritten(doc);

  const parsed = scenarioFileSchema().safeParse(expandAliases(doc, lineCounter, file), { error: specErrorMap });
  if (!parsed.success)
    throw new SpecError(sortByPosition(parsed.error.issues.flatMap((i) => locateIssue(i, doc, lineCounter, file))));
  // Positions outlive the load for checks that need the filesystem (a build's files, at build time).
  const writtenAt: WrittenAt = (at) => ({ file, ...locate(doc, lineCounter, at), key: keyPath(at) });
  const scenario = toScenario(parsed.data, kernelOrder(doc), path.resolve(file), writtenAt);
  checkShellFiles(scenario.workloads, writtenAt);
  return scenario;
}

/** A host file a shell workload copies into its share is read at every run: one that is missing is refused now. */
function checkShellFiles(workloads: WorkloadSpec[], writtenAt: WrittenAt): void {
  const missing = workloads.flatMap((w, i) =>
    w.kind === "shell" && w.files
      ? w.files.flatMap((f, j) =>
          isFile(f) ? [] : [{ ...writtenAt(["workloads", i, "shell", "files", j]), message: `${f} is not a file` }],
        )
      : [],
  );
  if (missing.length) throw new SpecError(missing);
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

// ---- YAML details --------------------------------------------------------------------------

/** Aliases that expand past MAX_ALIAS_EXPANSION nodes ("billion laughs") are refused, not expanded. */
const MAX_ALIAS_EXPANSION = 100;

function expandAliases(doc: Document, lineCounter: LineCounter, file: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSION });
  } catch (e) {
    if (!(e instanceof ReferenceError)) throw e;
    let at: number | undefined;
    visit(doc, { Alias: (_, node) => void (at ??= node.range?.[0]) });
    const where = at === undefined ? {} : position(lineCounter, at);
    const message = `aliases expand too far (more than ${MAX_ALIAS_EXPANSION} nodes each): ${e.message}`;
    throw new SpecError([{ file, ...where, message }]);
  }
}

/**
 * Keys are names, never numbers: a kernel labelled `6.10` must not become "6.1". Plain scalar
 * keys that YAML typed as numbers or booleans keep the text the user wrote.
 */
function keysAsWritten(doc: Document): void {
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && typeof pair.key.value !== "string" && pair.key.source !== undefined)
        pair.key.value = pair.key.source;
    },
  });
}

/** Row order is the order written; a JS object would put integer-like labels ("7") first. */
function kernelOrder(doc: Document): string[] {
  const kernels = doc.get("kernels", true);
  return isMap(kernels) ? kernels.items.map(keyText) : [];
}

function position(lineCounter: LineCounter, offset: number): { line: number; column: number } {
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

function locateIssue(issue: z.core.$ZodIssue, doc: Document, lineCounter: LineCounter, file: string): Issue[] {
  const at = (issuePath: PropertyKey[], where: "key" | "value", message: string): Issue => ({
    file,
    ...locate(doc, lineCounter, issuePath, where),
    ...(issuePath.length > 0 ? { key: keyPath(issuePath) } : {}),
    message,
  });
  switch (issue.code) {
    case "unrecognized_keys":
      // One line per key, each at the key, so an editor jumps to the typo.
      return issue.keys.map((key) => at([...issue.path, key], "key", issue.message));
    case "custom":
      return [at(issue.path, issue.params?.at === "key" ? "key" : "value", issue.message)];
    default:
      return [at(issue.path, "value", issue.message)];
  }
}

function sortByPosition(issues: Issue[]): Issue[] {
  return issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

// ---- spec -> Scenario ----------------------------------------------------------------------

function toScenario(spec: ScenarioFile, kernelLabels: string[], file: string, writtenAt: WrittenAt): Scenario {
  const dir = path.dirname(file);
  const { machine, timeouts } = spec;
  return {
    name: spec.name,
    ...(spec.description !== undefined ? { description: spec.description } : {}),
    file,
    machine: {
      arch: machine.arch,
      memoryBytes: machine.memory,
      cpus: machine.cpus,
      accel: machine.accel,
      cmdline: machine.cmdline,
      ...(machine.pageSize ? { pageSize: machine.pageSize } : {}),
      ...(machine.tcgPageZeroing ? {} : { tcgPageZeroing: false }),
    },
    kernels: kernelLabels.map((label) => toKernelEntry(label, spec.kernels[label]!, dir, machine, writtenAt)),
    shares: spec.shares.map(toShare),
    workloads: spec.workloads.map((w) => toWorkload(w, dir)),
    expectDefault: spec.expect.default,
    timeouts: { bootSeconds: timeouts.boot, stepSeconds: timeouts.step, livenessSeconds: timeouts.liveness },
    ...(spec.faults.length ? { faults: spec.faults.map(toFault) } : {}),
    ...(spec.memory ? { memory: toMemorySpec(spec.memory, dir) } : {}),
    ...(spec.vfio ? { vfio: toVfioSpec(spec.vfio) } : {}),
  };
}

function toKernelEntry(
  label: string,
  kernel: ScenarioFile["kernels"][string],
  dir: string,
  machine: ScenarioFile["machine"],
  writtenAt: WrittenAt,
): KernelEntry {
  // No Debian flavour named: the row's arch and page size pick it (checkPlatforms refused 64K).
  const flavour = debianFlavourFor(kernel.arch ?? machine.arch, kernel.pageSize ?? machine.pageSize);
  const buildAt: WrittenAt = (at) => writtenAt(["kernels", label, "build", ...at]);
  const source = kernel.build
    ? toBuildSource(label, kernel.build, kernel.arch ?? machine.arch, dir, buildAt)
    : toPackagedSource(kernel, dir, flavour, (at) => writtenAt(["kernels", label, "path", ...at]));
  return {
    label,
    source,
    cmdline: kernel.cmdline,
    expect: kernel.expect,
    ...(kernel.arch ? { arch: kernel.arch } : {}),
    ...(kernel.pageSize ? { pageSize: kernel.pageSize } : {}),
    ...(kernel.qemu
      ? {
          qemu: {
            kind: "debian" as const,
            version: kernel.qemu.debian,
            ...(kernel.qemu.suite ? { suite: kernel.qemu.suite } : {}),
          },
        }
      : {}),
  };
}

/** A kernel that is already built: Debian's package or files on disk. */
function toPackagedSource(
  kernel: ScenarioFile["kernels"][string],
  dir: string,
  defaultFlavour: string | undefined,
  pathAt: WrittenAt,
): KernelSource {
  const resolve = (p: string) => path.resolve(dir, p);
  if (kernel.debian)
    return { kind: "debian", ...kernel.debian, flavour: kernel.debian.flavour ?? defaultFlavour ?? "" };
  // The schema guarantees exactly one source, and the caller took `build`: this is `path`.
  const { kernel: image, modules, config } = kernel.path!;
  return {
    kind: "path",
    kernel: resolve(image),
    ...(modules !== undefined ? { modules: resolve(modules) } : {}),
    ...(config !== undefined ? { config: resolve(config) } : {}),
    writtenAt: Object.fromEntries(
      ["kernel", "modules", "config"].filter((k) => k in kernel.path!).map((k) => [k, pathAt([k])]),
    ),
  };
}

/** Paths in `build` are relative to the scenario's directory, like every other path in the file. */
function toBuildSource(
  label: string,
  build: WrittenBuild,
  rowArch: Arch,
  dir: string,
  writtenAt: WrittenAt,
): KernelSource {
  const resolve = (p: string) => path.resolve(dir, p);
  const at: Record<string, SourceLocation> = { source: writtenAt(["source"]), config: writtenAt(["config"]) };
  let source = build.source;
  if (source.kind === "git") {
    source = { ...source, repo: resolve(source.repo) };
    at["source.git"] = writtenAt(["source", "git"]);
    at["source.ref"] = writtenAt(["source", "ref"]);
  } else if (source.kind === "tarball") {
    source = { ...source, file: resolve(source.file) };
    at["source.tarball"] = writtenAt(["source", "tarball"]);
  }
  const files = (key: "config" | "patches", list: string[]) =>
    list.map((f, i) => {
      at[`${key}[${i}]`] = writtenAt([key, i]);
      return resolve(f);
    });
  const spec: BuildSpec = {
    label,
    source,
    arch: build.arch ?? rowArch,
    base: build.base,
    fragments: files("config", build.config),
    patches: files("patches", build.patches ?? []),
    writtenAt: at,
  };
  return { kind: "build", spec };
}

function toFault(f: ScenarioFile["faults"][number], i: number): FaultStep {
  return {
    during: f.during,
    afterMs: f.after,
    action: f.action as FaultAction,
    ...(f.share !== undefined ? { share: f.share } : {}),
    where: `faults[${i}]`,
  };
}

function toShare(share: ScenarioFile["shares"][number]): ShareSpec {
  const { threadPoolSize, log, ...rest } = share;
  return {
    ...rest,
    ...(threadPoolSize !== undefined ? { threadPoolSize } : {}),
    ...(log !== undefined ? { logLevel: log } : {}),
  };
}

/** The one kind key the schema let through, through that kind's mapping. */
function toWorkload(workload: ScenarioFile["workloads"][number], dir: string): WorkloadSpec {
  const { id } = workload;
  const written = workload as Record<string, unknown>;
  const key = workloadKeys().find((k) => written[k.name] !== undefined)!;
  const kind = "runsAs" in key ? key.runsAs.name : key.name;
  // The schema let a search through only on a kind (not an alias) that declares its parameter.
  const search = workload.search && !("runsAs" in key) ? { search: toParamSearch(workload.search, key) } : {};
  return { id, kind, ...key.toSpec(written[key.name], { dir }), ...search } as WorkloadSpec;
}
