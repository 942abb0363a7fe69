// Pure: one non-PASS cell -> a stand-alone repro bundle (repro.sh and the files it ships). The
// script boots the cell's kernel with the QEMU command line vmrig kept (qemu-cmdline.txt), the
// shares' virtiofsd and relay, and types the workload on the guest's serial console, so another
// Debian machine needs only qemu-system, bash and coreutils. The adapter is repro-bundle-write.ts.
import path from "node:path";
import type { CellOutcome, ShareSpec } from "../types.ts";
import { parseCommandLine } from "../qemu/argv.ts";
import { virtiofsdArgs, type DaemonCommand } from "../virtiofs/daemon.ts";
import { relayArgs } from "../virtiofs/relay.ts";
import { consoleCommandLine } from "../guest/console-shell.ts";
import { GUEST_READY_COMMAND, GUEST_READY_MARKER } from "../image/guest-protocol.ts";
import { shellQuote } from "../workloads/probe.ts";
import { ARCHES, archRecord } from "../arch.ts";

export interface ReproInput {
  scenario: string;
  kernel: string;
  workload: string;
  outcome: CellOutcome;
  /** The cell's evidence: `command` (what the guest ran) and `exec.code`. */
  evidence: Record<string, unknown>;
  /** The guest's qemu-cmdline.txt. */
  qemuCmdline: string;
  /** The guest's shares, in the order vmrig started them (virtiofsd-<index>.sock). */
  shares: ShareSpec[];
  virtiofsd: DaemonCommand;
  relay?: { binary: string; source: string };
  virtiofsdLogLevel?: string;
  /** The row's deadlines, already scaled for its accelerator. */
  bootSeconds: number;
  stepSeconds: number;
}

/** A host file (or, with `tree`, a directory) the bundle ships at `to`, relative to the bundle. */
export interface ShippedFile {
  from: string;
  to: string;
  tree?: boolean;
}

export interface ReproPlan {
  files: ShippedFile[];
  /** Share tags whose initial contents the adapter prepares under share/<tag>. */
  shares: string[];
  /** What the script compares its result with ("ENOMEM", "HANG", "CRASH", "exit 1"). */
  expected: string;
  script: string;
}

// Placeholders for the bundle's directory and the script's scratch directory: render() writes
// them as "$B" and "$W", so no path of the machine that made the bundle is left in the script.
const B = "\0B";
const W = "\0W";
const inBundle = (rel: string) => `${B}/${rel}`;
const inWork = (rel: string) => `${W}/${rel}`;

/** Pure: one word as bash reads it, the placeholders as quoted variables. */
export function render(word: string): string {
  const parts = word.split(/\0([BW])/);
  const out = parts.map((p, i) => (i % 2 === 1 ? `"$${p}"` : p === "" ? "" : shellQuote(p))).join("");
  return out || "''";
}

const renderLine = (words: string[]) => words.map(render).join(" ");

/** Pure: what the cell's result reads as in the script's terms, or undefined when a repro would not say. */
export function expectedResult(outcome: CellOutcome, evidence: Record<string, unknown>): string | undefined {
  if (outcome.kind === "errno") return outcome.errno;
  if (outcome.kind === "hang") return "HANG";
  if (outcome.kind === "crash") return "CRASH";
  const exec = evidence.exec as { kind?: string; code?: number } | undefined;
  if ((outcome.kind === "fail" || outcome.kind === "short") && exec?.kind === "exited" && exec.code !== undefined)
    return `exit ${exec.code}`;
  return undefined;
}

/** Pure: the plan for one cell; throws (with why) when the cell cannot be reproduced stand-alone. */
export function planReproBundle(input: ReproInput): ReproPlan {
  const expected = expectedResult(input.outcome, input.evidence);
  if (!expected) throw new Error(`a ${input.outcome.kind} cell gets no repro bundle`);
  const command = input.evidence.command;
  if (typeof command !== "string") throw new Error("the cell kept no guest command");
  const qemu = bundleQemuArgv(parseCommandLine(input.qemuCmdline.trim()));
  const virtiofsd = shipProgram(input.virtiofsd, "virtiofsd");
  const files = [...qemu.files, ...virtiofsd.files];
  if (input.shares.some((s) => s.accessPlatform)) {
    if (!input.relay) throw new Error("a share asks for accessPlatform but no relay was given");
    files.push({ from: input.relay.binary, to: "bin/vhost-user-relay" }, { from: input.relay.source, to: RELAY_SRC });
  }
  const sockets = new Set(input.shares.flatMap((_, i) => [`virtiofsd-${i}.sock`, `relay-${i}.sock`]));
  const unknown = qemu.sockets.filter((s) => !sockets.has(s));
  if (unknown.length) throw new Error(`QEMU connects to sockets no share starts: ${unknown.join(", ")}`);
  const script = [
    header(input, expected, qemuPackage(qemu.argv[0]!)),
    daemonLines(input, virtiofsd.argv),
    qemuLines(qemu.argv),
    guestLines(input, command),
    verdictLines(),
  ].join("\n");
  return { files, shares: input.shares.map((s) => s.tag), expected, script };
}

const RELAY_SRC = "src/vhost-user-relay.c";

/** Pure: the QEMU command adapted to the bundle: console on a FIFO pair, no QMP, no SSH forward. */
export function bundleQemuArgv(words: string[]): { argv: string[]; files: ShippedFile[]; sockets: string[] } {
  const [binary, ...args] = words;
  // A row's own QEMU build (env ... loader qemu) lives in vmrig's cache: not a host program.
  if (!binary || !/^qemu-system-[\w-]+$/.test(binary)) throw new Error(`QEMU is not the host's: ${binary}`);
  const argv = [binary];
  const files: ShippedFile[] = [];
  const sockets: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const opt = args[i]!;
    const value = args[i + 1] ?? "";
    if (!opt.startsWith("-") || value.startsWith("-") || NO_VALUE.has(opt)) {
      argv.push(opt);
      continue;
    }
    i++;
    if (opt === "-qmp") continue;
    if (opt === "-kernel" || opt === "-initrd") {
      const to = `boot/${path.basename(value)}`;
      files.push({ from: value, to });
      argv.push(opt, inBundle(to));
    } else if (opt === "-chardev" && value.startsWith("stdio,")) {
      // The script types on console.in and reads console.out: a FIFO pair, so no socat is needed.
      argv.push(opt, `pipe,${/id=[^,]+/.exec(value)![0]},path=${inWork("console")}`);
    } else if (opt === "-chardev" && /^socket,.*path=/.test(value)) {
      const socket = path.basename(/path=([^,]+)/.exec(value)![1]!);
      sockets.push(socket);
      argv.push(opt, value.replace(/path=[^,]+/, `path=${inWork(socket)}`));
    } else if (opt === "-netdev") {
      argv.push(opt, value.replace(/,hostfwd=[^,]+/g, ""));
    } else {
      if (/(^|[=:,])\//.test(value)) throw new Error(`QEMU's ${opt} names a host path: ${value}`);
      argv.push(opt, value);
    }
  }
  return { argv, files, sockets };
}

/** QEMU options without a value that vmrig writes. */
const NO_VALUE = new Set(["-nodefaults", "-no-reboot", "-nographic", "-S"]);

/**
 * Pure: a daemon command as the bundle runs it. A plain binary ships as bin/<name>; one run
 * through a private loader (Debian's virtiofsd with its own libc) ships its whole directory.
 */
export function shipProgram(cmd: DaemonCommand, name: string): { argv: string[]; files: ShippedFile[] } {
  if (cmd.prefixArgs.length === 0)
    return { argv: [inBundle(`bin/${name}`)], files: [{ from: cmd.argv0, to: `bin/${name}` }] };
  const words = [cmd.argv0, ...cmd.prefixArgs];
  const paths = words.flatMap((w) => w.split(":")).filter((p) => path.isAbsolute(p));
  const root = commonDir(paths);
  if (root.split("/").filter(Boolean).length < 2) throw new Error(`${name}'s files share no directory of their own`);
  const rel = (p: string) => (path.isAbsolute(p) ? inBundle(path.join(name, path.relative(root, p))) : p);
  return {
    argv: words.map((w) => w.split(":").map(rel).join(":")),
    files: [{ from: root, to: name, tree: true }],
  };
}

function commonDir(paths: string[]): string {
  const split = paths.map((p) => path.dirname(p).split("/"));
  const first = split[0] ?? [];
  let n = 0;
  while (n < first.length && split.every((s) => s[n] === first[n])) n++;
  return first.slice(0, n).join("/") || "/";
}

/** Pure: the Debian package of a qemu-system binary ("qemu-system-x86"). */
export function qemuPackage(binary: string): string {
  const arch = ARCHES.find((a) => archRecord(a).qemu.binary === binary);
  return arch ? archRecord(arch).qemu.debianPackage : `the package of ${binary}`;
}

function header(input: ReproInput, expected: string, qemuPkg: string): string {
  return `#!/bin/bash
# Reproduces one vmrig cell without vmrig: ${oneLine(input.scenario)}, kernel ${oneLine(input.kernel)},
# workload ${oneLine(input.workload)}; the cell was ${oneLine(expected)}.
# Needs (Debian): bash coreutils grep sed ${qemuPkg}.
# The kernel, the guest image, virtiofsd and the relay are in this directory. Run as root (virtiofsd).
# Exit status: 0 the same result as the cell, 1 another result, 2 it could not run (a message says why).
# Environment: QEMU (the qemu-system binary), REPRO_BOOT_TIMEOUT, REPRO_STEP_TIMEOUT (seconds),
# REPRO_KEEP=1 keeps the scratch directory (console.log, daemon logs).
set -u
B=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "\${TMPDIR:-/tmp}/vmrig-repro-XXXXXX")
EXPECTED=${shellQuote(expected)}
BOOT_TIMEOUT=\${REPRO_BOOT_TIMEOUT:-${Math.ceil(input.bootSeconds)}}
STEP_TIMEOUT=\${REPRO_STEP_TIMEOUT:-${Math.ceil(input.stepSeconds)}}
pids=()
cleanup() {
  # Newest first: QEMU before the relay before virtiofsd.
  for ((i = \${#pids[@]} - 1; i >= 0; i--)); do kill "\${pids[i]}" 2>/dev/null; done
  wait 2>/dev/null
  if [ "\${REPRO_KEEP:-}" = 1 ]; then echo "repro: kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "repro: $*" >&2; exit 2; }
waitSocket() {
  for _ in $(seq 1 100); do [ -S "$1" ] && return 0; sleep 0.1; done
  die "$2 did not listen on $1: $(tail -n 5 "$3" 2>/dev/null)"
}
mkdir -p "$W/share"
[ -d "$B/share" ] && cp -a "$B/share/." "$W/share/"
`;
}

const oneLine = (s: string) => s.replace(/[\r\n]+/g, " ");

function daemonLines(input: ReproInput, virtiofsd: string[]): string {
  const out: string[] = [];
  if (input.relay) {
    out.push(
      'relay="$B/bin/vhost-user-relay"',
      // Built on the machine that ran vmrig: an older libc may refuse it, then it is built here.
      'if ! "$relay" --help >/dev/null 2>&1; then',
      '  command -v cc >/dev/null || die "the shipped relay does not run here; to build it: apt install gcc libc6-dev"',
      `  cc -O2 -o "$W/vhost-user-relay" "$B/${RELAY_SRC}" || die "building the relay failed"`,
      '  relay="$W/vhost-user-relay"',
      "fi",
    );
  }
  input.shares.forEach((spec, i) => {
    const vfs = inWork(`virtiofsd-${i}.sock`);
    const dir = inWork(`share/${spec.tag}`);
    const log = inWork(`virtiofsd-${spec.tag}.log`);
    out.push(
      `mkdir -p ${render(dir)}`,
      `${renderLine([...virtiofsd, ...virtiofsdArgs(spec, vfs, dir, input.virtiofsdLogLevel)])} >${render(log)} 2>&1 &`,
      "pids+=($!)",
      `waitSocket ${render(vfs)} virtiofsd ${render(log)}`,
    );
    if (!spec.accessPlatform) return;
    const sock = inWork(`relay-${i}.sock`);
    const rlog = inWork(`relay-${spec.tag}.log`);
    const args = relayArgs({ listen: sock, connect: vfs, log: rlog });
    out.push(`"$relay" ${renderLine(args)} >${render(rlog + ".stderr")} 2>&1 &`, "pids+=($!)");
    out.push(`waitSocket ${render(sock)} relay ${render(rlog + ".stderr")}`);
  });
  return out.join("\n") + "\n";
}

function qemuLines(argv: string[]): string {
  const [binary, ...args] = argv;
  return `mkfifo "$W/console.in" "$W/console.out"
cat "$W/console.out" >"$W/console.log" &
pids+=($!)
echo "repro: booting the guest (under TCG this takes a minute)"
"\${QEMU:-${binary}}" ${renderLine(args)} 2>"$W/qemu-stderr.log" &
qemu=$!
pids+=($qemu)
`;
}

function guestLines(input: ReproInput, command: string): string {
  const mounts = input.shares.map((s) => {
    const mnt = shellQuote(`/mnt/${s.tag}`);
    return `mkdir -p ${mnt} && mount -t virtiofs ${shellQuote(s.tag)} ${mnt}`;
  });
  const setup = [GUEST_READY_COMMAND, ...mounts].join("; ");
  return `# The guest's init runs each line typed on its serial console as root (no prompt, output on the console).
type_line() { printf '%s\\n' "$1" >"$W/console.in"; }
# waitFor PATTERN SECONDS: 0 seen, 1 not in time, 2 QEMU gone.
waitFor() {
  local end=$((SECONDS + $2))
  until grep -aqE -- "$1" "$W/console.log"; do
    kill -0 "$qemu" 2>/dev/null || return 2
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.2
  done
}
# reply NONCE: what the command printed (kernel lines and CRs dropped), then its status.
reply() {
  sed -n "/@@$1-begin/,/@@$1-end [0-9]/p" "$W/console.log" | tr -d '\\r' | sed '1d;$d' |
    grep -avE '^ *\\[ *[0-9]+\\.[0-9]+\\]'
}
status() { grep -aoE "@@$1-end [0-9]+" "$W/console.log" | tail -n 1 | cut -d' ' -f2; }
waitFor ${shellQuote(GUEST_READY_MARKER)} "$BOOT_TIMEOUT" ||
  die "the guest did not boot in $BOOT_TIMEOUT s: $(tail -n 20 "$W/console.log")"
type_line ${shellQuote(consoleCommandLine(setup, "setup"))}
waitFor '@@setup-end [0-9]+' "$BOOT_TIMEOUT" || die "the guest's setup did not finish: $(tail -n 20 "$W/console.log")"
[ "$(status setup)" = 0 ] || die "mounting the shares failed: $(reply setup)"
echo "repro: guest command: "${shellQuote(command)}
type_line ${shellQuote(consoleCommandLine(command, "cmd"))}
waitFor '@@cmd-end [0-9]+' "$STEP_TIMEOUT"
case $? in
  0)
    reply cmd
    errno=$(reply cmd | grep -aoE '"errno":"E[A-Z0-9]+"' | tail -n 1 | cut -d'"' -f4)
    if [ -n "$errno" ]; then result=$errno; else result="exit $(status cmd)"; fi
    type_line 'poweroff -f'
    ;;
  1) result=HANG ;;
  *) result="QEMU exited" ;;
esac
`;
}

function verdictLines(): string {
  return `# A kernel report on the console is a CRASH when the cell was one, or when the guest stopped answering.
if [ "$EXPECTED" = CRASH ] || [ "$result" = HANG ] || [ "$result" = "QEMU exited" ]; then
  grep -aqE 'Kernel panic|BUG:|Oops|WARNING:|general protection' "$W/console.log" && result=CRASH
fi
for _ in $(seq 1 50); do kill -0 "$qemu" 2>/dev/null || break; sleep 0.2; done
if [ "$result" = "$EXPECTED" ]; then
  echo "repro: REPRODUCED: $result (the cell: $EXPECTED)"
  exit 0
fi
echo "repro: DIFFERENT: $result (the cell: $EXPECTED)"
exit 1
`;
}
