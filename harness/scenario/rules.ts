// The rules a scenario must follow that come from outside vmrig (QEMU, virtio, file names),
// shared by the schema and the cross-field checks.

import { show } from "./messages.ts";

/** Ids, tags, labels and names become file and directory names: long ones overflow NAME_MAX. */
const MAX_IDENTIFIER_LENGTH = 64;
export const ID_PATTERN = /^[A-Za-z0-9][\w.-]{0,63}$/;
/** Kernel labels may also hold `+` (version-ish labels like "6.18+fix"). */
export const LABEL_PATTERN = /^[A-Za-z0-9][\w.+-]{0,63}$/;

export const OUTCOME_WORDS = [
  "PASS",
  "FAIL",
  "SKIP",
  "SHORT",
  "HANG",
  "CRASH",
  "BOOT-FAIL",
  "INFRA",
  "ERRNO",
  "ANY",
] as const;
/** An outcome word or something errno-shaped; errno names are then checked against Linux's. */
export const EXPECTATION_PATTERN = new RegExp(`^(?:${OUTCOME_WORDS.join("|")}|-?E[A-Z0-9_]+)$`);

/** QEMU's vhost-user-fs realize(): queue-size must be a power of 2 and at most VIRTQUEUE_MAX_SIZE. */
export const QUEUE_SIZE_MAX = 1024;
/** Bytes in struct virtio_fs_config.tag; QEMU refuses longer tags. */
export const SHARE_TAG_MAX_BYTES = 36;

export const KERNEL_SOURCES = ["debian", "path", "build"] as const;

/** Why a workload id, share tag, label or scenario name was refused. */
export function identifierMessage(what: string, pattern: RegExp, input: unknown): string {
  const punctuation = pattern === LABEL_PATTERN ? "_ . + -" : "_ . -";
  if (typeof input === "string" && input.length > MAX_IDENTIFIER_LENGTH)
    return `${what} is ${input.length} characters long; at most ${MAX_IDENTIFIER_LENGTH} (it names files and directories)`;
  return `${what} ${show(input)} must start with a letter or digit and use only letters, digits and ${punctuation}`;
}
