// The vhost-user relay that lets QEMU accept `vhost-user-fs-pci,iommu_platform=on` with a stock
// virtiofsd: it forwards every message with its fds and adds VIRTIO_F_ACCESS_PLATFORM (bit 33)
// to the backend's GET_FEATURES reply (see relay/vhost-user-relay.c for the protocol details).
// Node cannot pass fds over UNIX sockets, so the relay is a small C program that vmrig compiles
// into its cache. This module only builds it and spells its arguments; supervising the process
// is daemon.ts's job.
import { createHash } from "node:crypto";
import { access, constants, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { HostError } from "../util/errors.ts";
import { cachePaths } from "../util/paths.ts";
import { buildFileAtomic } from "../util/atomic-fs.ts";

/** The relay's C source, shipped with vmrig. */
export const relaySourcePath = path.join(path.dirname(fileURLToPath(import.meta.url)), "relay", "vhost-user-relay.c");

/** Compiler flags; part of the cache key, so changing them rebuilds. */
export const relayCflags: readonly string[] = ["-O2", "-Wall", "-Wextra"];

export const VIRTIO_F_ACCESS_PLATFORM = 33;
/** The feature mask the relay adds by default. */
export const accessPlatformFeatures = 1n << BigInt(VIRTIO_F_ACCESS_PLATFORM);

/** The line the relay prints on stdout once its socket accepts connections. */
export function relayReadyLine(listen: string): string {
  return `vhost-user-relay: listening on ${listen}`;
}

/** Pure: the cache file name for a given source text and flags: vhost-user-relay-<16 hex>. */
export function relayBinaryName(source: string | Buffer, cflags: readonly string[] = relayCflags): string {
  const h = createHash("sha256").update(cflags.join(" ")).update("\0").update(source).digest("hex");
  return `vhost-user-relay-${h.slice(0, 16)}`;
}

export interface BuildRelayOptions {
  /** The C compiler; `gcc` from PATH unless given. */
  cc?: string;
}

/**
 * Compiles the relay into `cachePaths.tools()/vhost-user-relay-<sourcehash>` and returns that
 * path; an existing binary for the same source and flags is reused. Concurrent builds are safe
 * (each compiles to its own temporary file and renames it into place).
 */
export async function buildRelay(signal?: AbortSignal, opts: BuildRelayOptions = {}): Promise<string> {
  signal?.throwIfAborted();
  const source = await readFile(relaySourcePath);
  const dir = cachePaths.tools();
  const target = path.join(dir, relayBinaryName(source));
  if (await isExecutable(target)) return target;

  const cc = opts.cc ?? "gcc";
  await buildFileAtomic(target, async (tmp) => {
    const r = await execa(cc, [...relayCflags, "-o", tmp, relaySourcePath], {
      reject: false,
      cancelSignal: signal,
      stdin: "ignore",
      all: true,
    });
    if (signal?.aborted) signal.throwIfAborted();
    if ((r as { code?: string }).code === "ENOENT") {
      throw new HostError(
        `${cc} not found: vmrig compiles its vhost-user relay (needed for shares with accessPlatform) with it. ` +
          `Install a C toolchain (Debian: apt-get install gcc libc6-dev) or run \`npm run setup\`.`,
      );
    }
    if (r.exitCode !== 0) {
      const out = String(r.all ?? "").trim();
      throw new HostError(
        `compiling the vhost-user relay failed (${cc} ${[...relayCflags, "-o", tmp, relaySourcePath].join(" ")}, ` +
          `exit ${r.exitCode ?? r.signal}):\n${out}\n` +
          `If system headers are missing, install libc6-dev.`,
      );
    }
  });
  return target;
}

async function isExecutable(p: string): Promise<boolean> {
  try {
    await access(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface RelayArgsOptions {
  /** The socket the relay creates and QEMU connects to (chardev socket without server=on). */
  listen: string;
  /** virtiofsd's --socket-path. */
  connect: string;
  /** Feature bits ORed into GET_FEATURES replies; VIRTIO_F_ACCESS_PLATFORM by default. */
  addFeatures?: bigint;
  /** One line per relayed message (appended). */
  log?: string;
  /** How long to retry connecting to a backend socket that is not listening yet (default 5000). */
  connectTimeoutMs?: number;
  /** How long the rest of a message may take once its first byte came (default 10000; 0: forever). */
  messageTimeoutMs?: number;
  /** How long a client may stay connected without sending its first byte (default 5000). */
  silentTimeoutMs?: number;
}

const relayMsOptions = [
  ["connectTimeoutMs", "--connect-timeout"],
  ["messageTimeoutMs", "--message-timeout"],
  ["silentTimeoutMs", "--silent-timeout"],
] as const;

/** The relay takes at most a day in ms (it hands them to poll() as an int). */
const MAX_RELAY_MS = 86_400_000;

/** Pure: the relay's command-line arguments. */
export function relayArgs(o: RelayArgsOptions): string[] {
  const add = o.addFeatures ?? accessPlatformFeatures;
  if (add < 0n || add >= 1n << 64n) throw new RangeError(`addFeatures must fit in 64 bits: ${add}`);
  const args = ["--listen", o.listen, "--connect", o.connect, "--add-features", `0x${add.toString(16)}`];
  if (o.log !== undefined) args.push("--log", o.log);
  for (const [key, flag] of relayMsOptions) {
    const ms = o[key];
    if (ms === undefined) continue;
    if (!Number.isInteger(ms) || ms < 0 || ms > MAX_RELAY_MS) {
      throw new RangeError(`${key} must be an integer from 0 to ${MAX_RELAY_MS}: ${ms}`);
    }
    args.push(flag, String(ms));
  }
  return args;
}
