#!/usr/bin/env bash
# Installs Debian's pgbouncer, which the pooler tests put in front of a real Postgres in transaction mode. On first use
# only: fast when /usr/sbin/pgbouncer is there; otherwise, as root, `apt-get update` and `apt-get install` under the
# lock that test/support/chromium-deps.sh, test/cluster/node-deps.sh and image/build.sh take, because two apt-gets at
# once fail on dpkg's lock. The package's own service is not used: the tests start pgbouncer themselves.
set -euo pipefail

log() { printf '[pgbouncer-deps] %s\n' "$*" >&2; }

PGBOUNCER=/usr/sbin/pgbouncer
[[ -x "$PGBOUNCER" ]] && exit 0

if [[ "$(id -u)" != 0 ]]; then
  log "$PGBOUNCER is missing and this is not root: cannot install it (apt-get install pgbouncer)"
  exit 1
fi

exec 9>/var/lock/midi-corpus-operator-apt.lock
flock 9
# Another test process may have installed it while this one waited for the lock.
[[ -x "$PGBOUNCER" ]] && exit 0
start=$SECONDS
log "installing pgbouncer"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# policy-rc.d 101: the package's postinst must not start the system-wide service (no init here, and none wanted).
policy=/usr/sbin/policy-rc.d
made_policy=
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
apt-get install -y -qq --no-install-recommends pgbouncer >&2 || { [[ -n "$made_policy" ]] && rm -f "$policy"; exit 1; }
[[ -n "$made_policy" ]] && rm -f "$policy"
log "installed in $((SECONDS - start))s"
[[ -x "$PGBOUNCER" ]] || { log "still missing after install: $PGBOUNCER"; exit 1; }
