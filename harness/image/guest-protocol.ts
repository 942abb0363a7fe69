// What the guest image promises the rest of vmrig: console markers, the kernel command line
// parameter that carries the per-run client key, and where things live inside the guest.

/** Printed on /dev/console once the NIC is up and sshd started (a hint: an SSH command is the proof). */
export const GUEST_READY_MARKER = "vmrig-guest: ready";
/** Prefix of a console line naming an init step that failed: `vmrig-guest: init error <what>`. */
export const GUEST_INIT_ERROR_PREFIX = "vmrig-guest: init error";
/** Kernel command line parameter carrying base64 of the client's OpenSSH public key line. */
export const AUTHKEY_PARAM = "vmrig.authkey";

/** Created once the init script's background setup (module loading) is done. */
export const GUEST_SETUP_DONE = "/run/vmrig-setup-done";
/** vmrig's first command, the proof a guest is ready: it returns once the guest's setup is done. */
export const GUEST_READY_COMMAND = `while [ ! -e ${GUEST_SETUP_DONE} ]; do usleep 10000; done`;

export const GUEST_PROBE_PATH = "/usr/bin/vmrig-probe";
/** The lying FUSE server (images/repro/vmrig-fuse-lie.c), run by the fuse-lie workloads. */
export const FUSE_LIE_PROGRAM = "/usr/bin/vmrig-fuse-lie";
/** Kernel selftests a scenario's ktap workloads run (harness/image/kselftest.ts), by their selftests path. */
export const KSELFTEST_GUEST_DIR = "/usr/lib/vmrig-kselftest";
export const GUEST_SSH_PORT = 22;
export const GUEST_USER = "root";
/** QEMU user networking addresses the init script configures statically. */
export const GUEST_NETWORK = { address: "10.0.2.15/24", gateway: "10.0.2.2" } as const;

/**
 * The kernel command line word that authorises `publicKeyLine` ("ssh-ed25519 AAAA... comment").
 * Base64 keeps spaces out of the command line; one cached image then serves every run.
 */
export function authKeyCmdlineWord(publicKeyLine: string): string {
  const line = publicKeyLine.trim();
  if (!/^(ssh-|ecdsa-|sk-)\S+ \S+/.test(line) || line.includes("\n")) {
    throw new Error(`not an OpenSSH public key line: ${JSON.stringify(line.slice(0, 40))}`);
  }
  return `${AUTHKEY_PARAM}=${Buffer.from(line).toString("base64")}`;
}

/** The failures the init script reported, from console text. */
export function guestInitErrors(consoleText: string): string[] {
  const errors: string[] = [];
  for (const line of consoleText.split(/\r?\n/)) {
    const at = line.indexOf(GUEST_INIT_ERROR_PREFIX);
    if (at >= 0) errors.push(line.slice(at + GUEST_INIT_ERROR_PREFIX.length).trim());
  }
  return errors;
}
