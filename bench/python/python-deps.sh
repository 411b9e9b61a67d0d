#!/usr/bin/env bash
# Installs Debian's python3-mido and python3-psycopg2 for the bench's Python ingester (bench/python/ingest.py), run
# with Debian's /usr/bin/python3 (not a pyenv python3 on PATH, which would not see Debian's modules). On first use
# only: fast when both import; otherwise, as root, `apt-get update` and `apt-get install` under the lock that
# test/support/chromium-deps.sh, test/cluster/node-deps.sh and image/build.sh take (two apt-gets at once fail on
# dpkg's lock). Also fetches Debian's planetblupi-music-midi into the cache, as the real files the bench compares its
# real-world-like corpus with (`apt-get download` + `dpkg -x`: nothing installed).
set -euo pipefail

log() { printf '[python-deps] %s\n' "$*" >&2; }

PYTHON=/usr/bin/python3
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/midi-corpus-operator/debian-midi"
REFERENCE="$CACHE/planetblupi/usr/share/planetblupi/music"

have_modules() { [[ -x "$PYTHON" ]] && "$PYTHON" -c 'import mido, psycopg2' 2>/dev/null; }

install_modules() {
  if [[ "$(id -u)" != 0 ]]; then
    log "python3-mido or python3-psycopg2 is missing and this is not root: cannot install them"
    exit 1
  fi
  exec 9>/var/lock/midi-corpus-operator-apt.lock
  flock 9
  # Another process may have installed them while this one waited for the lock.
  have_modules && return 0
  local start=$SECONDS
  log "installing python3-mido python3-psycopg2"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends python3 python3-mido python3-psycopg2 >&2
  log "installed in $((SECONDS - start))s"
  exec 9>&-
}

fetch_reference() {
  [[ -d "$REFERENCE" ]] && return 0
  mkdir -p "$CACHE"
  (
    cd "$CACHE"
    # As root, apt-get download runs unsandboxed here (user _apt cannot write the cache): it says so, harmlessly.
    apt-get download planetblupi-music-midi >&2 2>/dev/null || { log "planetblupi-music-midi not downloadable"; exit 0; }
    dpkg -x planetblupi-music-midi_*.deb planetblupi
    rm -f planetblupi-music-midi_*.deb
  )
}

have_modules || install_modules
have_modules || { log "mido or psycopg2 still missing after install"; exit 1; }
fetch_reference
# The one line a caller reads: where the reference files are (empty when they could not be fetched).
[[ -d "$REFERENCE" ]] && echo "$REFERENCE" || echo ""
