// The guest userland binaries of one architecture, wherever they come from: the host's own
// packages (binaries.ts) or Debian's .debs of a foreign architecture (foreign-binaries.ts).

export interface GuestBinaries {
  /** Host path of a statically linked busybox for the guest architecture. */
  busybox: string;
  /** busybox's applet links as absolute guest paths ("/sbin/ip"); each points at /bin/busybox. */
  applets: string[];
  /** Host path of the dropbear server. */
  dropbear: string;
  /** dropbear's shared libraries and loader: each goes to the same absolute path in the guest. */
  libraries: Array<{ guestPath: string; hostPath: string }>;
}
