// Linux errno names, so an expectation like `ENOMEN` is caught when the scenario loads instead
// of silently never matching. Numbers are the generic ones x86_64 and aarch64 share
// (include/uapi/asm-generic/errno{-base,}.h).

const userVisible = [
  "EPERM", "ENOENT", "ESRCH", "EINTR", "EIO", "ENXIO", "E2BIG", "ENOEXEC", "EBADF", "ECHILD",
  "EAGAIN", "ENOMEM", "EACCES", "EFAULT", "ENOTBLK", "EBUSY", "EEXIST", "EXDEV", "ENODEV", "ENOTDIR",
  "EISDIR", "EINVAL", "ENFILE", "EMFILE", "ENOTTY", "ETXTBSY", "EFBIG", "ENOSPC", "ESPIPE", "EROFS",
  "EMLINK", "EPIPE", "EDOM", "ERANGE", "EDEADLK", "ENAMETOOLONG", "ENOLCK", "ENOSYS", "ENOTEMPTY", "ELOOP",
  undefined /* 41: unused */, "ENOMSG", "EIDRM", "ECHRNG", "EL2NSYNC", "EL3HLT", "EL3RST", "ELNRNG", "EUNATCH", "ENOCSI",
  "EL2HLT", "EBADE", "EBADR", "EXFULL", "ENOANO", "EBADRQC", "EBADSLT", undefined /* 58: unused */, "EBFONT", "ENOSTR",
  "ENODATA", "ETIME", "ENOSR", "ENONET", "ENOPKG", "EREMOTE", "ENOLINK", "EADV", "ESRMNT", "ECOMM",
  "EPROTO", "EMULTIHOP", "EDOTDOT", "EBADMSG", "EOVERFLOW", "ENOTUNIQ", "EBADFD", "EREMCHG", "ELIBACC", "ELIBBAD",
  "ELIBSCN", "ELIBMAX", "ELIBEXEC", "EILSEQ", "ERESTART", "ESTRPIPE", "EUSERS", "ENOTSOCK", "EDESTADDRREQ", "EMSGSIZE",
  "EPROTOTYPE", "ENOPROTOOPT", "EPROTONOSUPPORT", "ESOCKTNOSUPPORT", "EOPNOTSUPP", "EPFNOSUPPORT", "EAFNOSUPPORT", "EADDRINUSE", "EADDRNOTAVAIL", "ENETDOWN",
  "ENETUNREACH", "ENETRESET", "ECONNABORTED", "ECONNRESET", "ENOBUFS", "EISCONN", "ENOTCONN", "ESHUTDOWN", "ETOOMANYREFS", "ETIMEDOUT",
  "ECONNREFUSED", "EHOSTDOWN", "EHOSTUNREACH", "EALREADY", "EINPROGRESS", "ESTALE", "EUCLEAN", "ENOTNAM", "ENAVAIL", "EISNAM",
  "EREMOTEIO", "EDQUOT", "ENOMEDIUM", "EMEDIUMTYPE", "ECANCELED", "ENOKEY", "EKEYEXPIRED", "EKEYREVOKED", "EKEYREJECTED", "EOWNERDEAD",
  "ENOTRECOVERABLE", "ERFKILL", "EHWPOISON",
] as const;

// Kernel-internal codes (include/linux/errno.h). They should never reach user space; a kernel
// that leaks one (ENOTSUPP from a driver is the classic) is exactly what a scenario may expect.
const kernelInternal: Record<string, number> = {
  ERESTARTSYS: 512, ERESTARTNOINTR: 513, ERESTARTNOHAND: 514, ENOIOCTLCMD: 515, ERESTART_RESTARTBLOCK: 516,
  EPROBE_DEFER: 517, EOPENSTALE: 518, ENOPARAM: 519, EBADHANDLE: 521, ENOTSYNC: 522, EBADCOOKIE: 523,
  ENOTSUPP: 524, ETOOSMALL: 525, ESERVERFAULT: 526, EBADTYPE: 527, EJUKEBOX: 528, EIOCBQUEUED: 529,
  ERECALLCONFLICT: 530, ENOGRACE: 531,
};

/** Second names libc gives some numbers; expectations use the kernel's own name so they compare equal. */
const aliases: Record<string, string> = { EWOULDBLOCK: "EAGAIN", EDEADLOCK: "EDEADLK", ENOTSUP: "EOPNOTSUPP" };

/** errno name -> number, for every name Linux defines (aliases excluded). */
export const linuxErrnoNumbers: Readonly<Record<string, number>> = Object.freeze({
  ...Object.fromEntries(userVisible.flatMap((name, i) => (name ? [[name, i + 1]] : []))),
  ...kernelInternal,
});

/** errno number -> the kernel's name for it ("E524"-style fallback is the caller's business). */
export const linuxErrnoNames: ReadonlyMap<number, string> = new Map(
  Object.entries(linuxErrnoNumbers).map(([name, n]) => [n, name]),
);

/** "ENOMEM" -> "ENOMEM", "EWOULDBLOCK" -> "EAGAIN", "ENOMEN" -> undefined. */
export function canonicalErrnoName(name: string): string | undefined {
  const canonical = aliases[name] ?? name;
  return canonical in linuxErrnoNumbers ? canonical : undefined;
}

/** Every accepted spelling, for suggestions. */
export function knownErrnoNames(): string[] {
  return [...Object.keys(linuxErrnoNumbers), ...Object.keys(aliases)];
}
