// The VFIO host's files (sysfs, procfs) as preflight and binding see them. Two hosts: this
// machine under a root directory (tests build a fake sysfs tree in a temp dir and pass it as
// the root), and a level-1 guest over SSH (the hardware-free path runs the same code against a
// real kernel there).
import { readFile, readlink, readdir, writeFile, access } from "node:fs/promises";
import path from "node:path";
import type { ExecResult } from "../guest/ssh.ts";
import { shellQuote } from "../workloads/probe.ts";

export interface HostFs {
  /** For messages: "this host", "level-1 guest". */
  readonly name: string;
  /** File contents, or undefined when the file does not exist or cannot be read. */
  readText(p: string): Promise<string | undefined>;
  /** A symlink's target, or undefined when it is not a symlink / does not exist. */
  readLink(p: string): Promise<string | undefined>;
  /** Directory entries (sorted), or undefined when it is not a directory. */
  list(p: string): Promise<string[] | undefined>;
  exists(p: string): Promise<boolean>;
  /** Write like `echo text > p`; rejects with the kernel's reason. */
  write(p: string, text: string): Promise<void>;
  /** Effective uid of whoever will write (and run QEMU). */
  uid(): Promise<number>;
}

/** This machine's files, all absolute paths taken under `root` ("/" for real). */
export function localHostFs(root = "/", opts: { uid?: () => number; name?: string } = {}): HostFs {
  const at = (p: string) => path.join(root, p);
  const quiet = <T>(f: () => Promise<T>) => f().catch(() => undefined);
  return {
    name: opts.name ?? (root === "/" ? "this host" : `host tree ${root}`),
    readText: (p) => quiet(() => readFile(at(p), "utf8")),
    readLink: (p) => quiet(() => readlink(at(p))),
    list: (p) => quiet(async () => (await readdir(at(p))).sort()),
    exists: (p) =>
      access(at(p)).then(
        () => true,
        () => false,
      ),
    async write(p, text) {
      try {
        await writeFile(at(p), text);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        const what = `writing ${JSON.stringify(text)} to ${p}: ${err.code ?? ""} ${err.message}`.trim();
        throw new Error(what, { cause: e });
      }
    },
    uid: async () => (opts.uid ?? (() => process.getuid?.() ?? -1))(),
  };
}

type Exec = (command: string, deadlineMs: number) => Promise<ExecResult>;

/** A guest's files through its shell (busybox is enough). */
export function guestHostFs(exec: Exec, opts: { name?: string; deadlineMs?: number } = {}): HostFs {
  const deadline = opts.deadlineMs ?? 30_000;
  const run = async (command: string) => {
    const r = await exec(command, deadline);
    if (r.kind !== "exited")
      throw new Error(`${command}: ${r.kind === "timeout" ? `no answer in ${deadline / 1000} s` : r.error}`);
    return r;
  };
  const q = shellQuote;
  return {
    name: opts.name ?? "guest",
    async readText(p) {
      const r = await run(`cat ${q(p)} 2>/dev/null`);
      return r.code === 0 ? r.stdout : undefined;
    },
    async readLink(p) {
      const r = await run(`readlink ${q(p)}`);
      return r.code === 0 ? r.stdout.replace(/\n$/, "") : undefined;
    },
    async list(p) {
      const r = await run(`[ -d ${q(p)} ] && ls -1a ${q(p)}`);
      if (r.code !== 0) return undefined;
      return r.stdout
        .split("\n")
        .filter((e) => e && e !== "." && e !== "..")
        .sort();
    },
    async exists(p) {
      return (await run(`[ -e ${q(p)} ] || [ -L ${q(p)} ]`)).code === 0;
    },
    async write(p, text) {
      const r = await run(`printf '%s' ${q(text)} > ${q(p)}`);
      if (r.code !== 0)
        throw new Error(
          `writing ${JSON.stringify(text)} to ${p}: ${r.stderr.trim().replace(/^.*?: /, "") || `exit ${r.code}`}`,
        );
    },
    async uid() {
      return Number((await run("id -u")).stdout.trim());
    },
  };
}
