// A run as KCIDB I/O data (KernelCI's common results schema, v5.3): each kernel a checkout and a
// build, each cell a test. Pure: results.json and scenario.yaml in, one JSON object out; the
// command (harness/commands/export.ts) reads and writes. docs/kcidb.md says what goes where.
import path from "node:path";
import { parse as parseYaml } from "yaml";
import type { CellOutcome, CellResult, KernelRowResult, RunResult } from "../types.ts";
import { cellDetail, cellLabel } from "../classify/labels.ts";

export const KCIDB_VERSION = { major: 5, minor: 3 } as const;

/** KCIDB's origin pattern: the part of every id before the colon. */
export const KCIDB_ORIGIN = /^[a-z0-9_]+$/;

export type KcidbStatus = "FAIL" | "ERROR" | "MISS" | "PASS" | "DONE" | "SKIP";

interface Resource {
  name: string;
  url: string;
}
export interface KcidbCheckout {
  id: string;
  origin: string;
  tree_name?: string;
  comment?: string;
  valid: boolean;
  misc: Record<string, unknown>;
}
export interface KcidbBuild {
  id: string;
  checkout_id: string;
  origin: string;
  comment: string;
  architecture?: string;
  config_name?: string;
  status: KcidbStatus;
  misc: Record<string, unknown>;
}
export interface KcidbTest {
  id: string;
  build_id: string;
  origin: string;
  path: string;
  status: KcidbStatus;
  comment: string;
  duration: number;
  environment: { comment: string; misc: Record<string, unknown> };
  log_url?: string;
  log_excerpt?: string;
  output_files: Resource[];
  misc: Record<string, unknown>;
}
export interface KcidbReport {
  version: typeof KCIDB_VERSION;
  checkouts: KcidbCheckout[];
  builds: KcidbBuild[];
  tests: KcidbTest[];
}

export interface KcidbRun {
  result: RunResult;
  /** "<scenario dir>/<stamp>": unique per run, so test ids never collide across runs. */
  id: string;
  /** The scenario file as it ran (the run directory's copy): where a kernel came from. */
  scenarioYaml?: string;
}

export interface KcidbOptions {
  origin: string;
  /** Where the results root is served (ends with "/"): a run's files are under `<run id>/` there. */
  artifactsUrl: string;
}

/**
 * KCIDB's statuses are about the tested code. INFRA says nothing about the kernel (ERROR); a cell
 * that never ran because vmrig stopped is MISS; a kernel that did not boot did fail.
 */
export function kcidbStatus(o: CellOutcome): KcidbStatus {
  switch (o.kind) {
    case "pass":
      return "PASS";
    case "skip":
      return "SKIP";
    case "infra":
      return "ERROR";
    case "not-run":
      return "MISS";
    default:
      return "FAIL";
  }
}

/** The excerpt limit of the schema, less room for the note that it was cut. */
const EXCERPT_MAX = 16384 - 64;
// The schema forbids NUL anywhere in text; a console may hold one.
const noNul = (s: string) => s.replaceAll("\0", "\\0");
const excerpt = (s: string) =>
  noNul(s.length > EXCERPT_MAX ? `${s.slice(0, EXCERPT_MAX)}\n[... cut, ${s.length} chars in all]` : s);

/** A KCIDB test path segment: letters, digits, _ and - only. */
const segment = (s: string) => s.replace(/[^a-zA-Z0-9_-]/g, "_") || "_";

/** `vmrig.<scenario>.<workload>[.<test case>]`: KTAP test cases sit under their workload. */
export const testPath = (scenario: string, workload: string) =>
  ["vmrig", scenario, ...workload.split("/")].map(segment).join(".");

// Kernel architecture names, as KernelCI's builds say them.
const kernelArch: Record<string, string> = { x86_64: "x86_64", aarch64: "arm64" };

type KernelSpec = Record<string, unknown>;

/** The row's `kernels.<label>` entry of the scenario as it ran, when the run kept it. */
function kernelSpecs(yamlText: string | undefined): Record<string, KernelSpec> {
  if (!yamlText) return {};
  try {
    const doc = parseYaml(yamlText) as { kernels?: Record<string, KernelSpec> } | null;
    return doc?.kernels ?? {};
  } catch {
    // A copy that no longer parses still leaves what results.json says.
    return {};
  }
}

interface KernelObjects {
  checkout: KcidbCheckout;
  build: KcidbBuild;
}

/** A Debian kernel: the checkout is Debian's linux source at the package's version. */
function debianKernel(row: KernelRowResult, identity: string, spec: KernelSpec, o: KcidbOptions): KernelObjects {
  const [pkg, version] = identity.replace(/^debian:/, "").split("=") as [string, string];
  const debian = (spec.debian ?? {}) as { flavour?: string; suite?: string };
  const checkout: KcidbCheckout = {
    id: `${o.origin}:debian:linux=${version}`,
    origin: o.origin,
    tree_name: "debian",
    comment: `Debian linux ${version}`,
    valid: true,
    misc: { debian: { source: "linux", version } },
  };
  const build: KcidbBuild = {
    id: `${o.origin}:${identity}`,
    checkout_id: checkout.id,
    origin: o.origin,
    comment: row.description,
    ...(debian.flavour ? { config_name: debian.flavour } : {}),
    status: "PASS",
    misc: { debian: { package: pkg, version, ...(debian.suite ? { suite: debian.suite } : {}) } },
  };
  return { checkout, build };
}

/** A kernel vmrig built (source, config fragments, patches) or one given by path. */
function otherKernel(row: KernelRowResult, identity: string, spec: KernelSpec, o: KcidbOptions): KernelObjects {
  const built = spec.build as Record<string, unknown> | undefined;
  const from = built
    ? { source: built.source, config: built.config, patches: built.patches ?? [] }
    : { path: spec.path ?? "unknown" };
  const checkout: KcidbCheckout = {
    id: `${o.origin}:checkout:${identity}`,
    origin: o.origin,
    comment: row.description,
    valid: true,
    misc: from,
  };
  const build: KcidbBuild = {
    id: `${o.origin}:build:${identity}`,
    checkout_id: checkout.id,
    origin: o.origin,
    comment: row.description,
    ...(built ? { config_name: configName(built) } : {}),
    status: "PASS",
    misc: { identity, built: Boolean(built) },
  };
  return { checkout, build };
}

/** "tinyconfig+guest-arm64-64k.config": the base and the fragments' file names. */
function configName(built: Record<string, unknown>): string {
  const fragments = ([] as unknown[]).concat(built.config ?? []).map((f) => path.basename(String(f)));
  // The scenario's default base, as harness/scenario/build.ts fills it in.
  return [typeof built.base === "string" ? built.base : "tinyconfig", ...fragments].join("+");
}

function kernelObjects(run: KcidbRun, row: KernelRowResult, o: KcidbOptions): KernelObjects {
  const spec = kernelSpecs(run.scenarioYaml)[row.label] ?? {};
  // A row that failed before its kernel was known still needs a build for its tests to hang on.
  const identity = (row.evidence?.kernel as string | undefined) ?? `unknown:${run.id}/${row.label}`;
  const objs = identity.startsWith("debian:")
    ? debianKernel(row, identity, spec, o)
    : otherKernel(row, identity, spec, o);
  const arch = row.arch ? kernelArch[row.arch] : undefined;
  if (arch) objs.build.architecture = arch;
  return objs;
}

/** A merged run's row carries the host of the shard that ran it (`vmrig merge`); a one-host run has the run's. */
type RowHost = RunResult["host"] & { cpu?: string };
const rowFacts = (row: KernelRowResult) => row as KernelRowResult & { host?: Partial<RowHost>; shard?: number };

/** Where and how the guest ran: the host's QEMU, or the row's own build; accelerator; page size. */
function environment(run: RunResult, row: KernelRowResult): KcidbTest["environment"] {
  const ev = row.evidence ?? {};
  const { host: own, shard } = rowFacts(row);
  const host: Partial<RowHost> = { ...run.host, ...own };
  const qemu = (ev.qemu as { version?: string } | undefined)?.version ?? host.qemu;
  const accel = row.accel ?? host.accel;
  const misc = {
    host: host.hostname,
    ...(host.cpu ? { cpu: host.cpu } : {}),
    ...(shard !== undefined ? { shard } : {}),
    ...(qemu ? { qemu } : {}),
    ...(host.virtiofsd ? { virtiofsd: host.virtiofsd } : {}),
    ...(accel ? { accel } : {}),
    ...(host.accelNote ? { accelNote: host.accelNote } : {}),
    ...(row.arch ? { arch: row.arch } : {}),
    ...(row.pageSize ? { pageSize: row.pageSize } : {}),
    ...(typeof ev.cmdline === "string" ? { cmdline: noNul(ev.cmdline) } : {}),
    ...(row.bootMs !== undefined ? { bootMs: row.bootMs } : {}),
  };
  const words = [`QEMU ${qemu ?? "?"}`, accel?.toUpperCase(), row.arch, row.pageSize && `${row.pageSize} pages`];
  return { comment: noNul(`${words.filter(Boolean).join(", ")} on ${host.hostname ?? "?"}`), misc };
}

const url = (base: string, rel: string) => new URL(rel.split("/").map(encodeURIComponent).join("/"), base).href;

/** ".txt.gz" of "row/qemu-cmdline.txt.gz": what kind of file a download is. */
function suffixes(rel: string): string {
  const file = path.basename(rel);
  return file.includes(".") ? file.slice(file.indexOf(".")) : "";
}

/** The row's files that belong to this cell: a workload's repro bundle and stacks are its own. */
function cellFiles(row: KernelRowResult, workload: string, base: string): Resource[] {
  const own = (name: string) =>
    !/^(repro|stacks)-/.test(name) || name === `repro-${workload}` || name === `stacks-${workload}`;
  return Object.entries(row.artifacts)
    .filter(([name]) => name !== "console" && own(name))
    .map(([name, rel]) => ({ name: noNul(`${name}${suffixes(rel)}`), url: url(base, rel) }));
}

/** What vmrig knows that KCIDB has no field for; `expected` and `met` keep a met expected failure apart. */
function cellMisc(run: KcidbRun, row: KernelRowResult, c: CellResult): Record<string, unknown> {
  const o = c.outcome;
  return {
    vmrig: {
      run: run.id,
      // When the run started: vmrig keeps no start time per cell.
      runStartedAt: run.result.startedAt,
      scenario: run.result.scenario,
      kernel: row.label,
      workload: c.workload,
      ...(c.partOf ? { partOf: c.partOf } : {}),
      outcome: o.kind.toUpperCase(),
      label: noNul(cellLabel(o)),
      expected: c.expected,
      met: c.met,
      ...(o.kind === "crash" ? { crash: { title: noNul(o.title), signature: o.signature && noNul(o.signature) } } : {}),
      ...(o.kind === "errno" ? { errno: o.errno, mountHealthy: o.mountHealthy } : {}),
      ...(o.kind === "hang" ? { hang: { what: noNul(o.what), wedged: o.wedged } } : {}),
      ...(c.notes?.length ? { notes: c.notes.map(noNul) } : {}),
      ...(run.result.complete ? {} : { runComplete: false }),
    },
  };
}

function cellTest(run: KcidbRun, row: KernelRowResult, c: CellResult, buildId: string, o: KcidbOptions): KcidbTest {
  const detail = cellDetail(c.outcome);
  const console = row.artifacts.console;
  const base = url(o.artifactsUrl, `${run.id}/`);
  return {
    id: `${o.origin}:${run.id}/${row.label}/${c.workload}`,
    build_id: buildId,
    origin: o.origin,
    path: testPath(run.result.scenario, c.workload),
    status: kcidbStatus(c.outcome),
    comment: noNul(cellLabel(c.outcome)),
    duration: c.durationMs / 1000,
    environment: environment(run.result, row),
    ...(console ? { log_url: url(base, console) } : {}),
    ...(detail ? { log_excerpt: excerpt(detail) } : {}),
    output_files: cellFiles(row, c.workload, base),
    misc: cellMisc(run, row, c),
  };
}

/**
 * Runs as one KCIDB report (a merged nightly holds a run per scenario): a kernel that several rows
 * or runs share is one checkout and one build.
 */
export function runsToKcidb(runs: KcidbRun[], o: KcidbOptions): KcidbReport {
  if (!KCIDB_ORIGIN.test(o.origin)) throw new Error(`KCIDB origin "${o.origin}" is not [a-z0-9_]+`);
  const checkouts = new Map<string, KcidbCheckout>();
  const builds = new Map<string, KcidbBuild>();
  const tests: KcidbTest[] = [];
  for (const run of runs)
    for (const row of run.result.rows) {
      const { checkout, build } = kernelObjects(run, row, o);
      checkouts.set(checkout.id, checkout);
      builds.set(build.id, build);
      for (const c of row.cells) tests.push(cellTest(run, row, c, build.id, o));
    }
  return { version: KCIDB_VERSION, checkouts: [...checkouts.values()], builds: [...builds.values()], tests };
}

export const runToKcidb = (run: KcidbRun, o: KcidbOptions): KcidbReport => runsToKcidb([run], o);
