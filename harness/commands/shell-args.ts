// Pure: `vmrig shell`'s arguments -> what to boot and what to run in it. A scenario's row, or a
// kernel image from a build tree (the virtme-ng loop) in a scenario of vmrig's defaults.
import path from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import type { Arch, KernelEntry, Scenario } from "../types.ts";
import { parseScenario } from "../scenario/load.ts";
import { shellQuote } from "../workloads/probe.ts";
import { ARCHES, archNamed } from "../arch.ts";
import { VmrigError } from "../util/errors.ts";
import { selectKernels } from "../run/run-file.ts";

export const shellUsage = `usage: vmrig shell SCENARIO [--kernel LABEL] [-- CMD ARGS...]
       vmrig shell --kernel-path IMAGE [--modules DIR] [--arch ARCH] [--share HOSTDIR] [-- CMD ARGS...]`;

export type ShellTarget =
  | { kind: "scenario"; file: string; kernel?: string }
  | { kind: "kernel-path"; image: string; modules?: string; arch?: Arch; share?: string };

export interface ShellArgs {
  target: ShellTarget;
  /** The remote command line of `-- CMD ARGS...`; absent: an interactive login shell. */
  command?: string;
}

/** The row a kernel-path shell boots is called this (the console and logs are kept under it). */
export const KERNEL_PATH_LABEL = "kernel";

export function parseShellArgs(argv: string[]): ShellArgs {
  const end = argv.indexOf("--");
  const own = end === -1 ? argv : argv.slice(0, end);
  const { values, positionals } = parseArgs({
    args: own,
    allowPositionals: true,
    options: {
      kernel: { type: "string" },
      "kernel-path": { type: "string" },
      modules: { type: "string" },
      arch: { type: "string" },
      share: { type: "string" },
    },
  });
  const command = end === -1 ? undefined : remoteCommand(argv.slice(end + 1));
  const kernelPath = values["kernel-path"];
  if (kernelPath === undefined) {
    const only = ["modules", "arch", "share"].filter((k) => values[k as keyof typeof values] !== undefined);
    if (only.length) throw usageError(`--${only.join(", --")} only go with --kernel-path`);
    if (positionals.length !== 1) throw usageError("vmrig shell needs one scenario file, or --kernel-path IMAGE");
    return { target: { kind: "scenario", file: positionals[0]!, kernel: values.kernel }, command };
  }
  if (positionals.length || values.kernel !== undefined)
    throw usageError("--kernel-path boots that image alone: give no scenario and no --kernel");
  const arch = values.arch === undefined ? undefined : parseArch(values.arch);
  const target: ShellTarget = {
    kind: "kernel-path",
    image: kernelPath,
    ...(values.modules !== undefined ? { modules: values.modules } : {}),
    ...(arch ? { arch } : {}),
    ...(values.share !== undefined ? { share: values.share } : {}),
  };
  return { target, command };
}

/** One word is a command line as written (`-- 'dmesg | tail'`); several are an argv, each word quoted. */
function remoteCommand(words: string[]): string {
  if (words.length === 0) throw usageError("nothing after --: give the command to run in the guest");
  return words.length === 1 ? words[0]! : words.map(shellQuote).join(" ");
}

function parseArch(text: string): Arch {
  const arch = archNamed(text);
  if (!arch) throw usageError(`--arch: expected ${ARCHES.join(" or ")} (or arm64), got "${text}"`);
  return arch;
}

function usageError(message: string): VmrigError {
  return new VmrigError(`${message}\n${shellUsage}`);
}

/** The row to boot: --kernel LABEL (`vmrig run`'s check: an unknown label names the labels), else the first. */
export function shellRow(s: Scenario, label?: string): KernelEntry {
  return label === undefined ? s.kernels[0]! : selectKernels(s, [label])[0]!;
}

/**
 * A scenario of vmrig's defaults (the schema's: machine, timeouts, share options) around one
 * `path:` kernel; `share` adds one share, tag "share". Its one workload is never run: the
 * schema wants one.
 */
export function kernelPathScenario(
  t: Extract<ShellTarget, { kind: "kernel-path" }>,
  arch: Arch,
  cwd: string,
): Scenario {
  const kernel = {
    path: { kernel: path.resolve(cwd, t.image), ...(t.modules ? { modules: path.resolve(cwd, t.modules) } : {}) },
  };
  const file = {
    name: "shell",
    machine: { arch },
    kernels: { [KERNEL_PATH_LABEL]: kernel },
    shares: t.share ? [{ tag: "share" }] : [],
    workloads: [{ id: "shell", shell: { command: "true" } }],
  };
  const s = parseScenario(stringify(file), path.join(cwd, "--kernel-path"));
  // No file was written: a problem with the image names the option, not a line of a made-up file.
  for (const k of s.kernels) if (k.source.kind === "path") delete k.source.writtenAt;
  return s;
}
