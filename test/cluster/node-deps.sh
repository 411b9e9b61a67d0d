#!/usr/bin/env bash
# Installs what the test cluster's real nodes run, from Debian's archive, on first use: containerd (and ctr, the
# runc shim), runc, the CNI plugins (bridge, host-local, portmap, loopback in /usr/lib/cni), iptables and conntrack
# (kube-proxy), buildah and busybox-static (the harness' own test images), gcc and libc6-dev (the static pause
# binary). Nothing can be pulled from a registry here, so every image is built locally (test/cluster/node-images.ts).
#
# Idempotent and fast when everything is present (a few `command -v`); otherwise, as root, `apt-get update` and
# `apt-get install -y` under a lock, because two test files may start clusters at the same moment.
set -euo pipefail

log() { printf '[node-deps] %s\n' "$*" >&2; }

# command or file → the Debian package that provides it
declare -A wanted=(
  [containerd]=containerd [ctr]=containerd [containerd-shim-runc-v2]=containerd
  [runc]=runc
  [/usr/lib/cni/bridge]=containernetworking-plugins [/usr/lib/cni/host-local]=containernetworking-plugins
  [/usr/lib/cni/portmap]=containernetworking-plugins [/usr/lib/cni/loopback]=containernetworking-plugins
  [iptables]=iptables [conntrack]=conntrack
  [buildah]=buildah [/bin/busybox]=busybox-static
  [gcc]=gcc [/usr/lib/x86_64-linux-gnu/libc.a]=libc6-dev
  [ip]=iproute2 [nsenter]=util-linux [unshare]=util-linux [flock]=util-linux [openssl]=openssl
)

missing() {
  local item
  for item in "${!wanted[@]}"; do
    if [[ "$item" == /* ]]; then [[ -e "$item" ]] || echo "${wanted[$item]}"
    else command -v "$item" >/dev/null || echo "${wanted[$item]}"
    fi
  done | sort -u
}

[[ -z "$(missing)" ]] && exit 0

if [[ "$(id -u)" != 0 ]]; then
  log "missing packages ($(missing | tr '\n' ' ')) and not root: cannot install them"
  exit 1
fi

# The same lock as image/build.sh's install: two apt-gets at once fail on dpkg's lock.
exec 9>/var/lock/midi-corpus-operator-apt.lock
flock 9
# Another test process may have installed them while this one waited for the lock.
packages="$(missing | tr '\n' ' ')"
[[ -z "$packages" ]] && exit 0
start=$SECONDS
log "installing $packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# --no-install-recommends: containerd recommends nothing the nodes need; buildah's recommends pull in podman's stack.
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $packages >&2
log "installed in $((SECONDS - start))s"
[[ -z "$(missing)" ]] || { log "still missing after install: $(missing | tr '\n' ' ')"; exit 1; }
