// The guest's SSH host key: generated once per image on the host (so the client can pin it
// before the guest ever boots) with the host's dropbearkey; the key format is arch-neutral.

import { execa } from "execa";

/** Writes a dropbear ed25519 private key to `file`; returns its OpenSSH public key "ssh-ed25519 AAAA...". */
export async function generateHostKey(file: string, signal: AbortSignal): Promise<string> {
  await execa("dropbearkey", ["-t", "ed25519", "-f", file], { cancelSignal: signal });
  const { stdout } = await execa("dropbearkey", ["-y", "-f", file], { cancelSignal: signal });
  return parseDropbearPublicKey(stdout);
}

/**
 * `dropbearkey -y` prints "Public key portion is:", the key line (with a user@host comment) and
 * a fingerprint. The comment names the build host, so it is dropped: type and key are the pin.
 */
export function parseDropbearPublicKey(output: string): string {
  const line = output.split("\n").find((l) => /^(ssh-|ecdsa-)\S+ [A-Za-z0-9+/=]+/.test(l));
  if (!line) throw new Error(`no public key in dropbearkey output: ${output.slice(0, 200)}`);
  return line.split(" ").slice(0, 2).join(" ");
}
