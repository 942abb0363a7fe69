// The guest's init configuration as data: path -> content and mode. Pure, so the image hash
// covers exactly what the guest runs and tests can read the scripts.

import {
  AUTHKEY_PARAM,
  GUEST_INIT_ERROR_PREFIX,
  GUEST_NETWORK,
  GUEST_READY_MARKER,
  GUEST_SETUP_DONE,
  GUEST_SSH_PORT,
} from "./guest-protocol.ts";

export interface GuestFile {
  content: string;
  mode: number;
}

/** Where module files go in the guest, and the list the init script loads them from. */
export const GUEST_MODULES_DIR = "/lib/modules/vmrig";
export const GUEST_MODULE_LIST = "/etc/vmrig/modules";
export const GUEST_HOST_KEY = "/etc/dropbear/dropbear_ed25519_host_key";
export const GUEST_DROPBEAR = "/usr/sbin/dropbear";

// busybox init is PID 1 (it reaps orphans; a shell would leave zombies). rcS runs once to set
// up the machine; sshd is respawned if it ever exits.
const inittab = `::sysinit:/etc/init.d/rcS
::respawn:/etc/init.d/sshd
::respawn:/etc/init.d/console-agent
::shutdown:/bin/sync
`;

const rcS = `#!/bin/sh
# vmrig guest setup, run once by init. Failures are reported on the console and setup goes on:
# a guest that still answers SSH tells the harness more than one that stopped early.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
set -f
fail() { echo "${GUEST_INIT_ERROR_PREFIX} $*" > /dev/console; }

mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || fail "mount /dev/pts"
mount -t tmpfs -o mode=1777 tmpfs /tmp || fail "mount /tmp"
mount -t tmpfs -o mode=755 tmpfs /run || fail "mount /run"
# Not every kernel has debugfs; the scenarios that need it say so themselves.
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

# Modules load in list order in the background: the NIC's come first, and sshd starts as soon as
# the NIC is up, while the rest still load. ${GUEST_SETUP_DONE} says all are in; vmrig's first
# command waits for it, so no workload runs before them.
{
  while read -r module; do
    [ -n "$module" ] || continue
    insmod "${GUEST_MODULES_DIR}/$module.ko" || fail "insmod $module"
  done < ${GUEST_MODULE_LIST}
  touch ${GUEST_SETUP_DONE}
} &

# While the NIC's modules load: the client key, read before sshd can be reached.
mkdir -p /root/.ssh
chmod 700 /root /root/.ssh
key=
for word in $(cat /proc/cmdline); do
  case "$word" in ${AUTHKEY_PARAM}=*) key=\${word#${AUTHKEY_PARAM}=} ;; esac
done
if [ -z "$key" ]; then
  fail "authkey: no ${AUTHKEY_PARAM}= on the kernel command line"
elif ! { echo "$key" | base64 -d && echo; } > /root/.ssh/authorized_keys 2>/dev/null ||
     ! grep -q '^[a-z]' /root/.ssh/authorized_keys; then
  fail "authkey: ${AUTHKEY_PARAM} is not base64 of a public key line"
fi
chmod 600 /root/.ssh/authorized_keys 2>/dev/null

hostname vmrig
ip link set lo up || fail "network lo"
# The NIC comes up in the background too, so sshd starts while it does; the ready marker says
# both were started (a connection before the NIC is up would be swallowed, not refused).
{
  iface=
  tries=0
  while [ -z "$iface" ] && [ $tries -lt 500 ]; do
    if [ -e /sys/class/net/eth0 ]; then iface=eth0; else
      for dev in /sys/class/net/*; do
        [ "\${dev##*/}" = lo ] || [ ! -e "$dev" ] || { iface=\${dev##*/}; break; }
      done
    fi
    [ -n "$iface" ] || { usleep 10000; tries=$((tries + 1)); }
  done
  if [ -z "$iface" ]; then
    fail "network: no interface"
  else
    { ip link set "$iface" up &&
      ip addr add ${GUEST_NETWORK.address} dev "$iface" &&
      ip route add default via ${GUEST_NETWORK.gateway}; } || fail "network $iface"
  fi
  echo "${GUEST_READY_MARKER}" > /dev/console
} &

exit 0
`;

// A wrapper so that init's respawn both announces the first start and reports a restart.
const dropbearLogTail = `$(tail -n 3 /run/dropbear.log | tr '\\n' ' ')`;
const sshd = `#!/bin/sh
if [ -e /run/vmrig-sshd-started ]; then
  echo "${GUEST_INIT_ERROR_PREFIX} sshd exited, restarting: ${dropbearLogTail}" > /dev/console
  sleep 1
else
  touch /run/vmrig-sshd-started
fi
# -s: keys only. The log stays off the console, which is kept for kernel messages.
exec ${GUEST_DROPBEAR} -F -E -s -p ${GUEST_SSH_PORT} -r ${GUEST_HOST_KEY} 2>>/run/dropbear.log
`;

// vmrig's way in when SSH is gone (a planned network cut, a wedged sshd): lines typed on the
// serial console (QEMU's stdin) run as root, their output on the console. No prompt, so the
// console log stays the kernel's; the tty echoes what was typed, which records it.
const consoleAgent = `#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
while read -r line; do eval "$line"; done
# EOF on the console: do not let init respawn this in a tight loop.
sleep 5
`;

/** Every configuration file of the guest, given the modules to load (in order). */
export function guestInitFiles(modules: readonly string[]): Record<string, GuestFile> {
  return {
    "/etc/inittab": { content: inittab, mode: 0o644 },
    "/etc/init.d/rcS": { content: rcS, mode: 0o755 },
    "/etc/init.d/sshd": { content: sshd, mode: 0o755 },
    "/etc/init.d/console-agent": { content: consoleAgent, mode: 0o755 },
    [GUEST_MODULE_LIST]: { content: modules.map((m) => `${m}\n`).join(""), mode: 0o644 },
    "/etc/passwd": { content: "root:x:0:0:root:/root:/bin/sh\n", mode: 0o644 },
    // dropbear refuses accounts whose password field is empty, even for key logins.
    "/etc/shadow": { content: "root:*:19000:0:99999:7:::\n", mode: 0o600 },
    "/etc/group": { content: "root:x:0:\ntty:x:5:\n", mode: 0o644 },
    "/etc/shells": { content: "/bin/sh\n", mode: 0o644 },
    "/etc/nsswitch.conf": { content: "passwd: files\ngroup: files\nshadow: files\nhosts: files\n", mode: 0o644 },
    "/etc/hosts": { content: "127.0.0.1 localhost vmrig\n", mode: 0o644 },
  };
}

/** Directories the guest needs that no file creates (mount points, home, logs). */
export const GUEST_DIRECTORIES = [
  "/proc",
  "/sys",
  "/dev",
  "/tmp",
  "/run",
  "/root",
  "/var/log",
  "/mnt",
  "/etc/dropbear",
] as const;
