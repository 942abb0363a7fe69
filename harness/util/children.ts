// Every process vmrig starts (QEMU, virtiofsd, the relay) goes through here, so one place can
// stop them all on SIGINT, SIGTERM, a crash or a timeout. `setpriv --pdeathsig KILL` makes the
// kernel kill the child if vmrig itself dies without a chance to clean up (SIGKILL, OOM).
import { execa, type ResultPromise, type Options } from "execa";
import { existsSync } from "node:fs";

const live = new Set<ResultPromise>();
const pdeathsig = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));

export type Child = ResultPromise<{ reject: false; buffer: false }>;

export function spawnChild(file: string, args: string[], options: Options = {}): Child {
  const [cmd, argv] = pdeathsig ? [pdeathsig, ["--pdeathsig", "KILL", "--", file, ...args]] : [file, args];
  const child = execa(cmd, argv, {
    stdin: "ignore",
    ...options,
    reject: false,
    buffer: false,
    // vmrig decides when children die; a Ctrl-C on the terminal must not race our teardown.
    detached: true,
    // execa's cleanup kills children when Node exits normally.
    cleanup: true,
  } as Options) as unknown as Child;
  live.add(child);
  void child.finally(() => live.delete(child));
  return child;
}

/** Children still running. */
export function liveChildren(): number {
  return live.size;
}

/** SIGTERM, then SIGKILL after `graceMs`, every child still alive; resolves when all are reaped. */
export async function killAllChildren(graceMs = 2000): Promise<void> {
  const all = [...live];
  for (const c of all) c.kill("SIGTERM");
  const timer = setTimeout(() => all.forEach((c) => c.kill("SIGKILL")), graceMs);
  await Promise.allSettled(all);
  clearTimeout(timer);
}

/** Stop one child: SIGTERM, SIGKILL after graceMs; safe to call twice or on an exited child. */
export async function stopChild(child: Child, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    await child.catch(() => undefined);
    return;
  }
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await child.catch(() => undefined);
  clearTimeout(timer);
}
