#!/usr/bin/env bash
# The clean-host check: the README's commands on a Debian 12 where nothing was installed by hand.
# A minimal bookworm root from Debian's archive (mmdebstrap), the host's Node and npm copied in
# (same version), a clean clone of this repository's HEAD (or of the commit given as $1); inside
# it (chroot, with /proc, /sys and /dev): npm ci, npm run setup, the default scenario, and vmrig's
# kernel builds: a whole x86_64 build of a shipped scenario's row (`vmrig kernel build`) and the
# arm64 preflight plus kconfig with the cross compiler (test/fresh-host/build-step.ts). With
# --suite, the README's test command (`npm test`) then runs there too: CI's whole suite on a root
# that has only what setup installed.
#
# Shared with the host, because each is verified on use: the bare root as a tarball (rebuilt each
# ISO week), apt's downloaded .debs (checked against the signed indexes), npm's cache (integrity
# hashes) and the host's ccache (keyed by compiler and preprocessed source: the build here warms
# the test suite's builds of the same tree). vmrig's own cache starts empty: setup provisions it.
# Needs root. VMRIG_FRESH_HOST_CACHE moves the caches; VMRIG_FRESH_HOST_KEEP=1 keeps the root.
set -euo pipefail

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
run_suite=
[ "${1:-}" = --suite ] && { run_suite=1; shift; }
ref=${1:-HEAD}
cache=${VMRIG_FRESH_HOST_CACHE:-/var/cache/vmrig-fresh-host}
suite=bookworm
mirror=http://deb.debian.org/debian

say() { echo "fresh-host: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root (mmdebstrap, chroot and mounts)"; exit 2; }

if ! command -v mmdebstrap >/dev/null; then
  say "installing mmdebstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi

mkdir -p "$cache/apt-archives/partial" "$cache/npm"
base="$cache/$suite-minbase-$(date -u +%G-W%V).tar"
if [ ! -s "$base" ]; then
  say "building a bare $suite root with mmdebstrap"
  start=$SECONDS
  rm -rf "$cache/$suite"-minbase-*.tar*
  mmdebstrap --quiet --variant=minbase --mode=root --format=tar "$suite" "$base.partial" \
    "deb $mirror $suite main" "deb $mirror $suite-updates main" \
    "deb http://deb.debian.org/debian-security $suite-security main"
  mv "$base.partial" "$base"
  say "bare root built in $((SECONDS - start)) s"
fi

root=$(mktemp -d /var/tmp/vmrig-fresh-host.XXXXXX)
mounted=()
cleanup() {
  local status=$?
  # Anything still running inside the root (a guest a failed step left behind) goes first.
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount -R "${mounted[$i]}" 2>/dev/null || umount -R -l "${mounted[$i]}" 2>/dev/null || true
  done
  if [ "${VMRIG_FRESH_HOST_KEEP:-}" = 1 ]; then say "kept the root: $root"; else rm -rf --one-file-system "$root"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tar -xf "$base" -C "$root"
node_bin=$(command -v node)
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
cp "$node_bin" "$root/usr/bin/node"
mkdir -p "$root/usr/lib/node_modules"
cp -a "$npm_dir" "$root/usr/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/bin/npx"
# The machine's network comes in (DNS, hosts, a TLS-inspecting egress CA, npm's registry settings): a
# fresh machine of this kind has them too. No package or tool does.
cp /etc/resolv.conf "$root/etc/resolv.conf"
# A machine's own names (localhost): the installer writes /etc/hosts, minbase has none.
cp /etc/hosts "$root/etc/hosts"
mkdir -p "$root/etc/ssl/certs" "$root/usr/local/share/ca-certificates" "$root/usr/etc"
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
for f in /etc/npmrc /usr/etc/npmrc /root/.npmrc; do [ -f "$f" ] && cp "$f" "$root$f"; done
mkdir -p "$root/work" "$root/root/.npm"
git clone -q --no-local "$repo" "$root/work/vmrig"
git -C "$root/work/vmrig" checkout -q --detach "$(git -C "$repo" rev-parse "$ref")"
say "$(git -C "$root/work/vmrig" log -1 --format='%h %s' | cut -c1-100)"

bind() { mkdir -p "$root$2"; mount "${@:3}" "$1" "$root$2"; mounted+=("$root$2"); }
# The root is a mount of its own, as on a real machine: `unshare --mount` (the repro-bundle test)
# changes the propagation of /, which must be a mount point. Private, so nothing mounted inside
# shows up in the host's other namespaces.
bind "$root" / --bind
mount --make-private "$root"
bind proc /proc -t proc
# Slaves: unmounting them afterwards must not propagate back and unmount the host's /dev/pts.
bind /sys /sys --rbind --make-rslave
bind /dev /dev --rbind --make-rslave
bind "$cache/apt-archives" /var/cache/apt/archives --bind
bind "$cache/npm" /root/.npm --bind
ccache_dir=${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ccache}
mkdir -p "$ccache_dir"
bind "$ccache_dir" /root/.cache/ccache --bind

# Nothing of the host's environment leaks in but CI and the network settings above.
inside() {
  local pass=()
  for v in NODE_EXTRA_CA_CERTS SSL_CERT_FILE http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!v:-}" ] && pass+=("$v=${!v}")
  done
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 CI="${CI:-}" TERM=dumb "${pass[@]}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd /work/vmrig && $1" &
  # In the background so a SIGINT/SIGTERM runs the trap now, not after the step (cleanup kills it).
  wait $!
}
step() {
  local name=$1 start=$SECONDS
  say "== $name"
  inside "$2"
  timings+=("$name: $((SECONDS - start)) s")
}
timings=()
step "npm ci" "npm ci --no-audit --no-fund"
step "npm run setup" "npm run setup"
step "npm run scenario" "npm run scenario"
step "npx vmrig kernel build (x86_64)" "npx vmrig kernel build scenarios/getdents-swiotlb.yaml clamped-7.3"
step "arm64 build preflight + kconfig" "node --import tsx test/fresh-host/build-step.ts"
if [ -n "$run_suite" ]; then step "npm test" "npm test"; fi
say "passed on a bare $suite root:"
for t in "${timings[@]}"; do say "  $t"; done
