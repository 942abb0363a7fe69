// runScenario: kernels x workloads -> rows of cells. A fresh guest per kernel; a guest that
// crashed, hung or lost a daemon is thrown away and a fresh one runs the remaining workloads.
// Every row runs here, nested VFIO's too: a scenario feature adds to a row through its RowHooks.
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type {
  CellOutcome,
  CellResult,
  KernelRowResult,
  RunResult,
  Scenario,
  ShareSpec,
  WorkloadSpec,
} from "../types.ts";
import type { Accelerator } from "../qemu/accel.ts";
import { bootGuest, BootFailure, type BootRequest, type Guest } from "../guest/boot.ts";
import { generateClientKey } from "../guest/ssh.ts";
import { expectationMet } from "../classify/expect.ts";
import { runCell, workloadShare, type CellRun } from "./cell.ts";
import type { TestCaseCell } from "../workloads/kind.ts";
import { collectGuestFacts, collectSwiotlbEvidence, type GuestFacts } from "./guest-facts.ts";
import { kernelPageSize } from "../scenario/platform.ts";
import { serverMarks, serverEvidence, pageSizeLabel, withNotes } from "../classify/server-evidence.ts";
import { loadScaledTimeScale } from "./schedule/load.ts";
import { runRowsScheduled } from "./schedule/rows.ts";
import { bootWorthRetrying } from "./boot-retry.ts";
import type { PreparedKernel, RunEnv } from "./run-env.ts";
import { mergeQemuExtras, type QemuExtras, type RowHooks, type RowTimeouts } from "./row-hooks.ts";
import {
  probeFileName,
  probeName,
  probeSpec,
  searchInGuest,
  withGuestParam,
  type SearchedWorkload,
} from "./param-search.ts";
import { expectedResult } from "./repro-bundle.ts";
import { reproDirName, writeReproBundle } from "./repro-bundle-write.ts";
import type { KeptGuestInfo } from "./keep-failed.ts";
import { debianDebugPackage } from "../kernels/debian-debug.ts";
import { debianMirror } from "../util/env.ts";
import { searchCellOutcome, searchEvidence, nextSearchStep, type ProbeRun } from "../classify/param-search.ts";

/** Pure: what a row's heading adds for a QEMU that is not the host's, and its evidence. */
export function rowQemu(k: Pick<PreparedKernel, "qemu">): { suffix: string; evidence: Record<string, unknown> } {
  if (!k.qemu || k.qemu.source === "host") return { suffix: "", evidence: {} };
  return { suffix: `; QEMU ${k.qemu.version}`, evidence: { qemu: { version: k.qemu.version, source: k.qemu.source } } };
}

export async function runScenario(
  s: Scenario,
  kernels: PreparedKernel[],
  env: RunEnv,
  result: RunResult,
): Promise<RunResult> {
  if (env.scheduler) return runRowsScheduled(s, kernels, { ...env, scheduler: env.scheduler }, result, runKernelRow);
  for (const k of kernels) {
    if (env.signal.aborted) break;
    const row = await runKernelRow(s, k, env, result);
    result.rows.push(row);
    await env.onUpdate(result);
  }
  return result;
}

/** Pure: a row's guests' kernel command line, QEMU additions and QEMU build, features' additions in place. */
export function guestAdditions(
  s: Pick<Scenario, "machine">,
  k: Pick<PreparedKernel, "entry" | "qemu">,
  hooks: RowHooks,
  runExtras?: QemuExtras,
): Pick<BootRequest, "cmdline" | "qemuExtras" | "qemu"> {
  const qemuExtras = mergeQemuExtras(runExtras, hooks.qemuExtras);
  return {
    cmdline: [...s.machine.cmdline, ...(hooks.cmdline ?? []), ...k.entry.cmdline],
    ...(qemuExtras ? { qemuExtras } : {}),
    ...(k.qemu && !hooks.bootOnHostQemu ? { qemu: k.qemu } : {}),
  };
}

/** One kernel row while it runs: what every guest of the row shares. */
interface RowRun {
  s: Scenario;
  k: PreparedKernel;
  env: RunEnv;
  run: RunResult;
  hooks: RowHooks;
  row: KernelRowResult;
  accel: Accelerator;
  /** The accelerator's time scale, scaled further for the host's load. */
  scale: number;
  timeouts: RowTimeouts;
  /** Workloads no guest has run yet. */
  pending: WorkloadSpec[];
  /** Each searched workload's runs so far, by id: a search outlives a guest it spoiled. */
  searches: Map<string, ProbeRun[]>;
  /** Where this row's guests keep their files, under the run directory (default: the row's label). */
  placeDir?: string;
  /** A retried boot is said in the table (a footnote on the row's first cell), not only in results.json. */
  retryNote?: string;
  /** The current guest's cell that claimed it for a debugger (`--keep-failed`). */
  kept?: { workload: string; outcome: string; files: string[] };
}

/** Where one guest of a row keeps its files: the first in the row's directory, fresh ones in boot-<n>. */
interface GuestPlace {
  boot: number;
  dir: string;
  /** A file of this guest's, relative to the run directory (how artifacts are named). */
  rel(file: string): string;
  /** An artifact's key: the first guest's plain, a fresh guest's with -boot<n>. */
  key(name: string): string;
}

export type Share = { spec: ShareSpec; hostDir: string };

/**
 * One kernel row: guests one after another until every workload has a cell. A first boot that
 * failed with a clean console is booted once more (boot-retry.ts); a guest that did not boot
 * gives its outcome to every workload left.
 */
export async function runKernelRow(
  s: Scenario,
  k: PreparedKernel,
  env: RunEnv,
  run: RunResult,
): Promise<KernelRowResult> {
  const r = startRow(s, k, env, run);
  // A search of a guest parameter boots a guest per probe: after the row's own guests, never beside one.
  const guestSearches = r.pending.filter((w): w is SearchedWorkload => w.search?.on === "guest");
  r.pending = r.pending.filter((w) => w.search?.on !== "guest");
  for (let boot = 1; r.pending.length > 0 && !env.signal.aborted; boot++) {
    let failed = await guestSession(r, boot);
    if (failed && boot === 1 && !env.signal.aborted && bootWorthRetrying(failed)) {
      await setFailedBootAside(r, failed);
      failed = await guestSession(r, boot);
    }
    if (failed) {
      const { kind, reason } = failed;
      const outcome: CellOutcome = kind === "infra" ? { kind, reason } : { kind: "boot-fail", reason };
      recordAll(r, outcome, { console: failed.console.slice(-4000) });
    }
  }
  for (const w of guestSearches) {
    if (env.signal.aborted) r.pending.push(w);
    else await guestParamSearch(r, w);
  }
  for (const w of r.pending) record(r, w, { kind: "not-run", reason: "run interrupted" }, {}, 0);
  env.progress.done(k.entry.label, r.row);
  return r.row;
}

/** Pure: the scenario's timeouts in milliseconds, scaled for the accelerator (and the host's load). */
export function rowTimeouts(s: Pick<Scenario, "timeouts">, scale: number): RowTimeouts {
  return {
    bootMs: s.timeouts.bootSeconds * 1000 * scale,
    stepMs: s.timeouts.stepSeconds * 1000 * scale,
    livenessMs: s.timeouts.livenessSeconds * 1000 * scale,
  };
}

function startRow(s: Scenario, k: PreparedKernel, env: RunEnv, run: RunResult): RowRun {
  const hooks = env.rowHooks?.(s, k) ?? {};
  const qemu = hooks.bootOnHostQemu ? rowQemu({}) : rowQemu(k);
  const accel = k.accel ?? env.accel;
  const row: KernelRowResult = {
    label: k.entry.label,
    description: k.artifact.description + qemu.suffix,
    accel: accel.name,
    arch: k.artifact.arch,
    // What the row declares until the guest says what it really has ("64K?": not seen yet).
    ...(kernelPageSize(s, k.entry) ? { pageSize: `${kernelPageSize(s, k.entry)}?` } : {}),
    artifacts: {},
    cells: [],
    evidence: {
      kernel: k.artifact.identity,
      release: k.artifact.release,
      image: k.image.identity,
      ...qemu.evidence,
      ...hooks.evidence,
    },
  };
  // Guests sharing the host's cores run slower: scale with the load so slow never reads as HANG.
  const scale = loadScaledTimeScale(accel.timeScale, env.load?.());
  if (scale !== accel.timeScale) row.evidence.timeScale = scale;
  const timeouts = rowTimeouts(s, scale);
  return { s, k, env, run, hooks, row, accel, scale, timeouts, pending: [...s.workloads], searches: new Map() };
}

function record(
  r: RowRun,
  w: WorkloadSpec,
  outcome: CellOutcome,
  evidence: Record<string, unknown>,
  durationMs: number,
  notes: string[] = [],
): void {
  if (r.retryNote) [notes, r.retryNote] = [[r.retryNote, ...notes], undefined];
  // Whatever a cell saw while vmrig was being interrupted is vmrig's doing, not the kernel's.
  if (r.env.signal.aborted) outcome = { kind: "not-run", reason: "run interrupted" };
  const expected = r.k.entry.expect[w.id] ?? r.s.expectDefault;
  const cell: CellResult = {
    kernel: r.row.label,
    workload: w.id,
    outcome,
    expected,
    met: expectationMet(outcome, expected),
    durationMs,
    evidence,
    ...(notes.length ? { notes } : {}),
  };
  r.row.cells.push(cell);
  r.env.progress.cell(r.row.label, w.id, outcome);
}

/** A test case the workload reported: a cell `<id>/<name>`, expected as the kernel's `expect:` names it. */
function recordTestCase(r: RowRun, w: WorkloadSpec, t: TestCaseCell): void {
  const id = `${w.id}/${t.name}`;
  addTestCaseColumn(r.run.workloads, w.id, id);
  const expected = r.k.entry.expect[id] ?? r.s.expectDefault;
  r.row.cells.push({
    kernel: r.row.label,
    workload: id,
    outcome: t.outcome,
    expected,
    met: expectationMet(t.outcome, expected),
    durationMs: 0,
    evidence: t.evidence,
    partOf: w.id,
  });
}

/** A new test case's column goes after its workload's other columns; rows reporting it again change nothing. */
export function addTestCaseColumn(columns: string[], workload: string, id: string): void {
  if (columns.includes(id)) return;
  let at = columns.indexOf(workload);
  if (at < 0) return void columns.push(id);
  while (at + 1 < columns.length && columns[at + 1]!.startsWith(`${workload}/`)) at++;
  columns.splice(at + 1, 0, id);
}

/** Every workload no guest has run yet gets this outcome; a search cut short keeps its probes as evidence. */
function recordAll(r: RowRun, outcome: CellOutcome, evidence: Record<string, unknown>): void {
  for (const w of r.pending.splice(0)) {
    const runs = r.searches.get(w.id);
    const search = w.search && runs ? { search: searchEvidence(w.search, runs, nextSearchStep(w.search, runs)) } : {};
    record(r, w, outcome, { ...evidence, ...search }, 0);
  }
}

function guestPlace(r: RowRun, boot: number): GuestPlace {
  const rowDir = path.join(r.env.runDir, r.placeDir ?? r.row.label);
  const dir = boot === 1 ? rowDir : path.join(rowDir, `boot-${boot}`);
  return {
    boot,
    dir,
    rel: (file) => path.relative(r.env.runDir, path.join(dir, file)),
    key: (name) => (boot === 1 ? name : `${name}-boot${boot}`),
  };
}

/** One guest of the row: boots it and runs pending workloads until done or the guest is spoiled. */
async function guestSession(r: RowRun, boot: number): Promise<BootFailure | undefined> {
  const at = guestPlace(r, boot);
  const work = await mkdtemp(path.join(os.tmpdir(), `vmrig-${r.row.label}-`));
  let guest: Guest | undefined;
  try {
    const shares = await rowShares(r.s, r.hooks, work);
    const booting = r.hooks.guestName ? `booting ${r.hooks.guestName}` : "booting";
    r.env.progress.stage(r.row.label, boot === 1 ? booting : `booting fresh guest #${boot}`);
    r.row.artifacts[at.key("console")] = at.rel("console.log");
    r.row.artifacts[at.key("qemuCmdline")] = at.rel("qemu-cmdline.txt");
    r.row.artifacts[at.key("qemuStderr")] = at.rel("qemu-stderr.log");
    for (const { spec } of shares) {
      r.row.artifacts[at.key(`virtiofsd-${spec.tag}`)] = at.rel(`virtiofsd-${spec.tag}.log`);
    }
    try {
      guest = await bootGuest(rowBootRequest(rowGuest(r, at.dir, work), shares));
    } catch (e) {
      return e instanceof BootFailure ? e : new BootFailure("infra", (e as Error).message, "");
    }
    await useGuest(r, at, guest, shares);
    return undefined;
  } finally {
    // A kept guest's processes and sockets (under `work`) live on until the keeper releases them.
    const kept = guest && r.kept ? await keepGuest(r, guest, work, r.kept) : false;
    r.kept = undefined;
    if (!kept) {
      const exit = await guest?.shutdown();
      if (exit && boot === 1) {
        r.row.evidence.qemuExit = { code: exit.code, signal: exit.signal, guestPanicked: exit.guestPanicked };
      }
      await rm(work, { recursive: true, force: true });
    }
  }
}

/** Pauses the guest with a gdbstub and hands it to the keeper; false (with the reason kept) if QEMU refused. */
async function keepGuest(r: RowRun, guest: Guest, work: string, kept: NonNullable<RowRun["kept"]>): Promise<boolean> {
  const gdbSocket = path.join(work, "gdb.sock");
  const qmpSocket = path.join(work, "sock", "qmp.sock");
  const cell = r.row.cells.find((c) => c.workload === kept.workload);
  try {
    await guest.keepForDebugger(gdbSocket);
  } catch (e) {
    if (cell) cell.evidence.keptForDebugger = { failed: (e as Error).message };
    r.env.progress.info(`[${r.row.label}] the guest could not be kept: ${(e as Error).message}`);
    return false;
  }
  const info = {
    scenario: r.s.name,
    scenarioFile: r.s.file,
    arch: r.k.artifact.arch,
    kernel: r.row.label,
    ...kept,
    gdbSocket,
    qmpSocket,
    ...debugSymbols(r.k),
  };
  if (cell) cell.evidence.keptForDebugger = { gdbSocket, qmpSocket, vmlinux: info.vmlinux };
  r.env.keeper!.add(info, async () => {
    await guest.shutdown();
    await rm(work, { recursive: true, force: true });
  });
  await r.env.onUpdate({ ...r.run, rows: [...r.run.rows.filter((x) => x !== r.row), r.row] });
  return true;
}

/** Where a debugger finds the kernel's symbols: the built vmlinux, or a Debian kernel's -dbg package. */
function debugSymbols(k: PreparedKernel): Pick<KeptGuestInfo, "vmlinux" | "debugPackage"> {
  if (k.artifact.vmlinux) return { vmlinux: k.artifact.vmlinux };
  const pkg = k.entry.source.kind === "debian" ? debianDebugPackage(k.artifact, debianMirror()) : undefined;
  return pkg ? { debugPackage: pkg } : {};
}

/** Each of the scenario's shares exports an empty directory of this guest's own; then the features' shares. */
export async function rowShares(s: Scenario, hooks: RowHooks, work: string): Promise<Share[]> {
  const own = await Promise.all(
    s.shares.map(async (spec) => {
      const hostDir = path.join(work, "shares", spec.tag);
      await mkdir(hostDir, { recursive: true });
      return { spec, hostDir };
    }),
  );
  return [...own, ...(hooks.shares ?? [])];
}

/** What one guest of a row boots with: `vmrig run` and `vmrig shell` boot a row's guest from this. */
export interface RowGuest {
  s: Scenario;
  k: PreparedKernel;
  accel: Accelerator;
  hooks: RowHooks;
  env: Pick<RunEnv, "virtiofsd" | "relay" | "virtiofsdLogLevel" | "qemuExtras" | "signal" | "keeper">;
  /** Where console.log, qemu-cmdline.txt and the daemons' logs go. */
  artifactsDir: string;
  /** This guest's scratch directory (sockets, shared directories). */
  work: string;
  bootTimeoutMs: number;
}

function rowGuest(r: RowRun, artifactsDir: string, work: string): RowGuest {
  const { s, k, accel, hooks, env } = r;
  return { s, k, accel, hooks, env, artifactsDir, work, bootTimeoutMs: r.timeouts.bootMs };
}

/** Pure: the boot request of one guest of a row (shares from rowShares). */
export function rowBootRequest(g: RowGuest, shares: Share[]): BootRequest {
  const { s, k, env } = g;
  const added = guestAdditions(s, k, g.hooks, env.qemuExtras);
  const pauseOnPanic = env.keeper?.wantsPanics() ?? false;
  // gdb takes vmlinux's addresses as they are: a guest that may be kept runs its kernel unrandomized.
  // panic=0: a debugger's continue or detach resumes a panicked guest, which must stay in its panic
  // (panic=-1 would reboot it, and -no-reboot end QEMU).
  if (env.keeper) added.cmdline = [...added.cmdline, "nokaslr", ...(pauseOnPanic ? ["panic=0"] : [])];
  return {
    arch: k.artifact.arch,
    accel: g.accel,
    machine: { ...s.machine, arch: k.artifact.arch },
    kernel: k.artifact,
    image: k.image,
    shares,
    virtiofsd: env.virtiofsd,
    relay: env.relay,
    virtiofsdLogLevel: env.virtiofsdLogLevel,
    clientKey: generateClientKey(),
    artifactsDir: g.artifactsDir,
    socketsDir: path.join(g.work, "sock"),
    bootTimeoutMs: g.bootTimeoutMs,
    pauseOnPanic,
    signal: env.signal,
    ...added,
  };
}

/** The failed boot's logs move aside; the retry is boot 1 again, with boot 1's artifact names. */
async function setFailedBootAside(r: RowRun, f: BootFailure): Promise<void> {
  const rowDir = path.join(r.env.runDir, r.row.label);
  const aside = path.join(rowDir, "failed-boot");
  await mkdir(aside, { recursive: true });
  for (const name of await readdir(rowDir)) {
    if (name !== "failed-boot") await rename(path.join(rowDir, name), path.join(aside, name)).catch(() => undefined);
  }
  r.row.artifacts["console-failed-boot"] = path.relative(r.env.runDir, path.join(aside, "console.log"));
  r.row.evidence.bootRetry = { reason: f.reason, consoleTail: f.console.slice(-2000) };
  r.retryNote = `the first boot failed and was retried: ${f.reason}`;
  r.env.progress.info(
    `[${r.row.label}] the first boot failed with a clean console (${f.reason}); ` +
      "booting a fresh guest once more before calling it BOOT-FAIL",
  );
}

/** A booted guest: vmrig's facts and the features' checks, then pending workloads until one spoils it. */
async function useGuest(r: RowRun, at: GuestPlace, guest: Guest, shares: Share[]): Promise<void> {
  const { s, k, row } = r;
  const first = at.boot === 1;
  if (first) Object.assign(row, { bootMs: guest.bootMs, bootPhases: guest.bootPhases });
  r.env.progress.stage(row.label, `ssh up in ${(guest.bootMs / 1000).toFixed(1)} s`);

  const facts = await collectGuestFacts(guest, s, r.timeouts.stepMs, kernelPageSize(s, k.entry));
  if (first) Object.assign(row.evidence, facts.evidence);
  const seenPage = pageSizeLabel(facts.evidence.pageSize);
  if (first && seenPage) row.pageSize = seenPage;
  if (facts.problem) return recordAll(r, { kind: "infra", reason: facts.problem }, facts.evidence);
  // A feature's set-up in the guest (nested VFIO: the host root for level 2) runs in every fresh guest.
  const after = await r.hooks.afterBoot?.(guest, r.timeouts);
  if (after && first) {
    Object.assign(row.evidence, after.evidence ?? {});
    if (after.descriptionSuffix) row.description += after.descriptionSuffix;
  }
  if (after?.problem) return recordAll(r, { kind: "infra", reason: after.problem }, {});

  while (r.pending.length > 0 && !r.env.signal.aborted) {
    if (await nextCell(r, at, guest, facts, shares)) break;
  }
  if (!guest.deathReason() && !r.kept) await guestLeftovers(r, at, guest);
}

/** Runs the next pending workload into a cell; true when the guest is spoiled for the rest. */
async function nextCell(r: RowRun, at: GuestPlace, guest: Guest, facts: GuestFacts, shares: Share[]): Promise<boolean> {
  const { s, env, row } = r;
  const w = r.pending.shift()!;
  const tag = workloadShare(w);
  const unmounted = tag ? facts.unmounted[tag] : undefined;
  if (unmounted) {
    record(r, w, { kind: "infra", reason: unmounted }, {}, 0);
    return false;
  }
  env.progress.stage(row.label, `${w.id} (${s.workloads.indexOf(w) + 1}/${s.workloads.length})`);
  if (w.search) return nextSearchCell(r, at, guest, shares, w as SearchedWorkload);
  const marks = await serverMarks(s.shares, at.dir, env.virtiofsdLogLevel);
  const cell = await runWorkload(r, w, guest, shares);
  // Hang evidence (stacks-<workload>.txt) and the like: files beside the console log.
  for (const [name, content] of Object.entries(cell.artifacts ?? {})) {
    await writeFile(path.join(at.dir, name), content);
    row.artifacts[at.key(name.replace(/\.txt$/, ""))] = at.rel(name);
  }
  // virtiofsd's side (its debug log): what it refused while this cell ran.
  const server = await serverEvidence(marks);
  const evidence = { ...cell.evidence, ...server.evidence };
  record(r, w, withNotes(cell.outcome, server.notes), evidence, cell.durationMs, server.notes);
  await reproBundle(r, at, w, shares);
  if (!env.signal.aborted) for (const t of cell.testCases ?? []) recordTestCase(r, w, t);
  await env.onUpdate({ ...r.run, rows: [...r.run.rows, row] });
  if (!cell.kept) return cell.guestSpoiled;
  const files = ["console.log", ...Object.keys(cell.artifacts ?? {})].map((f) => at.rel(f));
  r.kept = { workload: w.id, outcome: cell.outcome.kind.toUpperCase(), files };
  return true;
}

/**
 * A cell with a search: probes in this guest until it is done; a probe that spoiled the guest
 * puts the search back at the head of the queue, for a fresh guest to go on from its runs.
 */
async function nextSearchCell(r: RowRun, at: GuestPlace, guest: Guest, shares: Share[], w: SearchedWorkload) {
  const runs = r.searches.get(w.id) ?? [];
  r.searches.set(w.id, runs);
  const marks = await serverMarks(r.s.shares, at.dir, r.env.virtiofsdLogLevel);
  const { step, guestSpoiled } = await searchInGuest(w, runs, {
    runProbe: (probe) => runWorkload(r, probe, guest, shares),
    keepProbe: (name, cell) => keepProbe(r, at, w.id, name, cell),
    stage: (text) => r.env.progress.stage(r.row.label, text),
    aborted: () => r.env.signal.aborted,
  });
  const server = await serverEvidence(marks);
  if (step.kind === "probe" && !r.env.signal.aborted) {
    r.pending.unshift(w);
    return true;
  }
  const outcome: CellOutcome =
    step.kind === "done"
      ? searchCellOutcome(w.search, step.finding, runs)
      : { kind: "not-run", reason: "run interrupted" };
  const evidence = { search: searchEvidence(w.search, runs, step), ...server.evidence };
  const durationMs = runs.reduce((sum, p) => sum + p.durationMs, 0);
  record(r, w, withNotes(outcome, server.notes), evidence, durationMs, server.notes);
  await r.env.onUpdate({ ...r.run, rows: [...r.run.rows, r.row] });
  return guestSpoiled;
}

/**
 * A search of a guest parameter: each probe boots a guest of its own with the value and runs the
 * workload alone in it; a probe whose guest did not boot is a BOOT-FAIL (a skip for the search).
 */
async function guestParamSearch(r: RowRun, w: SearchedWorkload): Promise<void> {
  const runs: ProbeRun[] = [];
  let step = nextSearchStep(w.search, runs);
  while (step.kind === "probe" && !r.env.signal.aborted) {
    const value = step.value;
    const name = probeName(w.search, value, runs.filter((p) => p.value === value).length);
    r.env.progress.stage(r.row.label, `${w.id}: booting for ${name} (probe ${runs.length + 1})`);
    const probe = probeRow(r, w, value, path.join(r.row.label, `search-${w.id}`, probeFileName(name)));
    const failed = await guestSession(probe, 1);
    const cell = probe.row.cells[0];
    const outcome: CellOutcome = failed
      ? { kind: failed.kind === "infra" ? "infra" : "boot-fail", reason: failed.reason }
      : (cell?.outcome ?? { kind: "not-run", reason: "run interrupted" });
    for (const [key, file] of Object.entries(probe.row.artifacts)) {
      r.row.artifacts[`search-${w.id}-${probeFileName(name)}-${key}`] = file;
    }
    runs.push({ value, outcome, durationMs: cell?.durationMs ?? 0, artifacts: Object.values(probe.row.artifacts) });
    step = nextSearchStep(w.search, runs);
  }
  const outcome: CellOutcome =
    step.kind === "done"
      ? searchCellOutcome(w.search, step.finding, runs)
      : { kind: "not-run", reason: "run interrupted" };
  const durationMs = runs.reduce((sum, p) => sum + p.durationMs, 0);
  record(r, w, outcome, { search: searchEvidence(w.search, runs, step) }, durationMs);
  await r.env.onUpdate({ ...r.run, rows: [...r.run.rows, r.row] });
}

/** The row as one probe of a guest parameter sees it: the value in its scenario, its own directory and cells. */
function probeRow(r: RowRun, w: SearchedWorkload, value: number, placeDir: string): RowRun {
  const { s, entry } = withGuestParam({ s: r.s, entry: r.k.entry }, w.search, value);
  return {
    ...r,
    s,
    k: { ...r.k, entry },
    env: { ...r.env, onUpdate: async () => undefined },
    row: { ...r.row, cells: [], artifacts: {}, evidence: {} },
    pending: [probeSpec(w, value)],
    searches: new Map(),
    placeDir,
    retryNote: undefined,
  };
}

/** One probe's evidence (and files such as its hang stacks) under search-<workload>/ beside the console. */
async function keepProbe(r: RowRun, at: GuestPlace, id: string, name: string, cell: CellRun): Promise<string[]> {
  const dir = path.join(at.dir, `search-${id}`);
  await mkdir(dir, { recursive: true });
  const base = probeFileName(name);
  const files: Record<string, string> = {
    [`${base}.json`]: JSON.stringify({ outcome: cell.outcome, durationMs: cell.durationMs, ...cell.evidence }, null, 2),
    ...Object.fromEntries(Object.entries(cell.artifacts ?? {}).map(([f, text]) => [`${base}-${f}`, text])),
  };
  const kept: string[] = [];
  for (const [file, content] of Object.entries(files)) {
    await writeFile(path.join(dir, file), content);
    const rel = path.relative(r.env.runDir, path.join(dir, file));
    r.row.artifacts[at.key(`search-${id}-${file.replace(/\.(json|txt)$/, "")}`)] = rel;
    kept.push(rel);
  }
  return kept;
}

/** A feature's own runner for its workload kind (nested VFIO: nestedQemu), else the generic cell. */
function runWorkload(r: RowRun, w: WorkloadSpec, guest: Guest, shares: Share[]): Promise<CellRun> {
  const own = r.hooks.cellRunners?.[w.kind];
  if (own) return own(w, guest, r.timeouts);
  const tag = workloadShare(w);
  const share = shares.find((x) => x.spec.tag === tag);
  const faults = (r.s.faults ?? []).filter((f) => f.during === w.id);
  const ctx = { hostDir: share?.hostDir, guestDir: tag ? `/mnt/${tag}` : undefined };
  const keep = (o: CellOutcome) => !r.env.signal.aborted && (r.env.keeper?.claim(o) ?? false);
  return runCell(guest, w, ctx, r.timeouts, faults, keep);
}

/**
 * A non-PASS cell's stand-alone repro bundle beside the guest's logs. Cells a feature or a planned
 * fault shaped, and search probes, are not bundled; a bundle that cannot be made is a note on the cell, never its outcome.
 */
async function reproBundle(r: RowRun, at: GuestPlace, w: WorkloadSpec, shares: Share[]): Promise<void> {
  const cell = r.row.cells.at(-1)!;
  if (!expectedResult(cell.outcome, cell.evidence) || r.env.signal.aborted) return;
  const h = r.hooks;
  const shaped = Object.keys(h.cellRunners ?? {}).length || h.shares?.length || h.qemuExtras || r.env.qemuExtras;
  // A probe of a guest-parameter search (placeDir) is evidence for its search cell, which gets none.
  if (shaped || r.placeDir || r.s.faults?.some((f) => f.during === w.id)) return;
  try {
    const script = await writeReproBundle({
      scenario: r.s.name,
      cell,
      w,
      guestDir: at.dir,
      shares: shares.map((s) => s.spec),
      virtiofsd: r.env.virtiofsd,
      ...(r.env.relay ? { relay: r.env.relay.command } : {}),
      ...(r.env.virtiofsdLogLevel ? { virtiofsdLogLevel: r.env.virtiofsdLogLevel } : {}),
      bootSeconds: r.timeouts.bootMs / 1000,
      stepSeconds: r.timeouts.stepMs / 1000,
    });
    r.row.artifacts[at.key(reproDirName(w.id))] = path.relative(r.env.runDir, script);
  } catch (e) {
    cell.notes = [...(cell.notes ?? []), `repro bundle not made: ${(e as Error).message}`];
  }
}

/** What a guest still up after its workloads leaves the row: swiotlb use (the first guest) and dmesg. */
async function guestLeftovers(r: RowRun, at: GuestPlace, guest: Guest): Promise<void> {
  if (at.boot === 1) Object.assign(r.row.evidence, await collectSwiotlbEvidence(guest, r.timeouts.livenessMs));
  const dmesg = await guest.exec("dmesg", 10_000 * r.scale);
  if (dmesg.kind === "exited") {
    await writeFile(path.join(at.dir, "dmesg.txt"), dmesg.stdout);
    r.row.artifacts[at.key("dmesg")] = at.rel("dmesg.txt");
  }
}
