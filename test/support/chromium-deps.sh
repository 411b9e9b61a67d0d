#!/usr/bin/env bash
# Installs Debian's chromium, which the report's browser test drives through playwright-core (playwright's own
# browser download needs a CDN this machine cannot reach; Debian's archive it can). On first use only: fast when
# /usr/bin/chromium is there; otherwise, as root, `apt-get update` and `apt-get install` under the lock that
# test/cluster/node-deps.sh and image/build.sh take, because two apt-gets at once fail on dpkg's lock.
set -euo pipefail

log() { printf '[chromium-deps] %s\n' "$*" >&2; }

CHROMIUM=/usr/bin/chromium
[[ -x "$CHROMIUM" ]] && exit 0

if [[ "$(id -u)" != 0 ]]; then
  log "$CHROMIUM is missing and this is not root: cannot install it (apt-get install chromium)"
  exit 1
fi

exec 9>/var/lock/midi-corpus-operator-apt.lock
flock 9
# Another test process may have installed it while this one waited for the lock.
[[ -x "$CHROMIUM" ]] && exit 0
start=$SECONDS
log "installing chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# --no-install-recommends: chromium's recommends (fonts, sandbox helpers, drivers) are not needed headless.
apt-get install -y -qq --no-install-recommends chromium >&2
log "installed in $((SECONDS - start))s"
[[ -x "$CHROMIUM" ]] || { log "still missing after install: $CHROMIUM"; exit 1; }
