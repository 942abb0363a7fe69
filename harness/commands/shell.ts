// `vmrig shell`: one kernel row's guest, booted as `vmrig run` boots it (same kernel, image,
// shares, command line, QEMU build, machine and accelerator), with SSH wired to this terminal.
// Its console and logs stay in results/shell/<time>-<label>/; everything stops when the session ends.
import { mkdtemp, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Arch, KernelEntry, Scenario } from "../types.ts";
import { loadScenario } from "../scenario/load.ts";
import { imageArch, readHead } from "../kernels/path.ts";
import { bootGuest, BootFailure, type Guest } from "../guest/boot.ts";
import type { Session } from "../guest/ssh.ts";
import { requireHostTools } from "../run/host-tools.ts";
import { prepareKernels } from "../run/run-file.ts";
import { chooseAccelerators } from "../run/accels.ts";
import { featureRowHooks } from "../run/features.ts";
import { rowBootRequest, rowShares, rowTimeouts } from "../run/runner.ts";
import { collectGuestFacts } from "../run/guest-facts.ts";
import { createProgress, type Progress } from "../run/progress.ts";
import type { RowHooks, RowTimeouts } from "../run/row-hooks.ts";
import { kernelPageSize } from "../scenario/platform.ts";
import { ExitCode, VmrigError } from "../util/errors.ts";
import { resultsRoot } from "../util/paths.ts";
import { kernelPathScenario, parseShellArgs, shellRow, type ShellTarget } from "./shell-args.ts";

/** The terminal type the guest's pty is given (vmrig reads no TERM of its own). */
const GUEST_TERM = "xterm-256color";

export async function shellCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const args = parseShellArgs(argv);
  const { s, entry, shareDir } = await shellScenario(args.target);
  if (s.vfio)
    throw new VmrigError(
      `${s.file}: vmrig shell does not boot VFIO scenarios (they change the host's device bindings); use vmrig run`,
    );
  const progress = createProgress();
  const booted = await bootRow(s, entry, shareDir, progress, signal);
  const { guest, dir } = booted;
  try {
    await setUpGuest(s, entry, booted, progress);
    progress.info(bootedLine(booted, s));
    const code = await attach(guest, args.command);
    return signal.aborted ? ExitCode.interrupted : code;
  } finally {
    await guest.shutdown();
    await rm(booted.work, { recursive: true, force: true });
    process.stderr.write(`vmrig shell: guest stopped; console and logs kept in ${shown(dir)}\n`);
  }
}

/** The scenario and row to boot; for --kernel-path a scenario of defaults around the image. */
async function shellScenario(t: ShellTarget): Promise<{ s: Scenario; entry: KernelEntry; shareDir?: string }> {
  if (t.kind === "scenario") {
    const s = await loadScenario(path.resolve(t.file));
    return { s, entry: shellRow(s, t.kernel) };
  }
  const image = path.resolve(t.image);
  const head = await readHead(image, 0x10000).catch((e: Error) => {
    throw new VmrigError(`--kernel-path: cannot read ${image}: ${e.message}`);
  });
  const arch: Arch | undefined = t.arch ?? imageArch(head);
  if (!arch) throw new VmrigError(`--kernel-path: ${image} has no x86 or arm64 boot header; say --arch`);
  const shareDir = t.share === undefined ? undefined : path.resolve(t.share);
  if (shareDir && !(await stat(shareDir).catch(() => undefined))?.isDirectory())
    throw new VmrigError(`--share: ${shareDir} is not a directory`);
  // A Debian-style tree keeps the image in its modules directory (lib/modules/<release>/vmlinuz).
  const modules = t.modules ?? ((await isModulesDir(path.dirname(image))) ? path.dirname(image) : undefined);
  const s = kernelPathScenario({ ...t, ...(modules ? { modules } : {}) }, arch, process.cwd());
  return { s, entry: s.kernels[0]!, ...(shareDir ? { shareDir } : {}) };
}

const isModulesDir = (dir: string) =>
  stat(path.join(dir, "modules.order")).then(
    (st) => st.isFile(),
    () => false,
  );

interface BootedRow {
  guest: Guest;
  label: string;
  description: string;
  accelName: string;
  /** Where the guest's console and logs are kept. */
  dir: string;
  work: string;
  timeouts: RowTimeouts;
  hooks: RowHooks;
}

/** The row's kernel, image, QEMU and accelerator as `vmrig run` prepares them, then one guest of it. */
async function bootRow(
  s: Scenario,
  entry: KernelEntry,
  shareDir: string | undefined,
  progress: Progress,
  signal: AbortSignal,
): Promise<BootedRow> {
  const one = { ...s, kernels: [entry] };
  const tools = await requireHostTools(one, signal);
  const [k] = await prepareKernels(one, [entry], tools, progress, signal);
  const accels = await chooseAccelerators(s.machine.accel, [k!], signal);
  const accel = k!.accel ?? accels.get(k!.artifact.arch)!;
  const hooks = featureRowHooks()(s, k!);
  const timeouts = rowTimeouts(s, accel.timeScale);
  const stamp = new Date().toISOString().replace(/[:]/g, "-").replace(/\..+$/, "Z");
  const dir = path.join(resultsRoot(), "shell", `${stamp}-${entry.label}`);
  const work = await mkdtemp(path.join(os.tmpdir(), `vmrig-shell-${entry.label}-`));
  const { virtiofsd, relay, virtiofsdLogLevel } = tools;
  const env = { virtiofsd, relay, virtiofsdLogLevel, signal };
  progress.stage(entry.label, "booting");
  try {
    const shares = (await rowShares(s, hooks, work)).map((x) => (shareDir ? { ...x, hostDir: shareDir } : x));
    const req = rowBootRequest(
      { s, k: k!, accel, hooks, env, artifactsDir: dir, work, bootTimeoutMs: timeouts.bootMs },
      shares,
    );
    const guest = await bootGuest(req);
    return {
      guest,
      label: entry.label,
      description: k!.artifact.description,
      accelName: accel.name,
      dir,
      work,
      timeouts,
      hooks,
    };
  } catch (e) {
    await rm(work, { recursive: true, force: true });
    if (!(e instanceof BootFailure)) throw e;
    const tail = e.console.trimEnd().split("\n").slice(-15).join("\n");
    throw new VmrigError(`${entry.label} did not boot: ${e.reason}\n${tail}\nconsole and logs: ${shown(dir)}`);
  }
}

/**
 * vmrig's facts as a run gathers them (shares mounted at /mnt/<tag>), then the features' set-up;
 * problems are said, not fatal: the shell is where one looks at them.
 */
async function setUpGuest(s: Scenario, entry: KernelEntry, b: BootedRow, progress: Progress): Promise<void> {
  const facts = await collectGuestFacts(b.guest, s, b.timeouts.stepMs, kernelPageSize(s, entry));
  for (const why of [facts.problem, ...Object.values(facts.unmounted)]) if (why) progress.info(`warning: ${why}`);
  const after = await b.hooks.afterBoot?.(b.guest, b.timeouts);
  if (after?.problem) progress.info(`warning: ${after.problem}`);
}

function bootedLine(b: BootedRow, s: Scenario): string {
  const mounts = s.shares.map((x) => `/mnt/${x.tag}`).join(", ");
  const seconds = (b.guest.bootMs / 1000).toFixed(1);
  return (
    `vmrig shell: ${b.label} (${b.description}) up in ${seconds} s under ${b.accelName.toUpperCase()}` +
    `${mounts ? `, shares at ${mounts}` : ""}; console and logs in ${shown(b.dir)}`
  );
}

/** Relative to where the user is when that is shorter to read, else absolute. */
function shown(dir: string): string {
  const rel = path.relative(process.cwd(), dir);
  return rel && !rel.startsWith("..") ? rel : dir;
}

/**
 * The session on this process's streams. An interactive one on a terminal gets a pty and raw
 * mode (Ctrl-C is then a byte for the guest's program, not a signal to vmrig); pipes and
 * `-- CMD` get plain streams. Resolves to the remote exit code.
 */
async function attach(guest: Guest, command: string | undefined): Promise<number> {
  const { stdin, stdout, stderr } = process;
  const tty = command === undefined && stdin.isTTY && stdout.isTTY;
  const pty = tty ? { term: GUEST_TERM, rows: stdout.rows, cols: stdout.columns } : undefined;
  if (tty) stdin.setRawMode(true);
  const request = { ...(command !== undefined ? { command } : {}), ...(pty ? { pty } : {}) };
  const onResize = () => session?.resize(stdout.rows, stdout.columns);
  if (tty) stdout.on("resize", onResize);
  let session: Session | undefined;
  try {
    session = await guest.shell.session(request, { stdin, stdout, stderr });
    return await session.exited;
  } finally {
    if (tty) {
      stdout.off("resize", onResize);
      stdin.setRawMode(false);
    }
    stdin.pause();
  }
}
