#!/usr/bin/env bash
# Builds bench (g)'s native parser (portsmf-parse.cpp against Debian's libportsmf) into the cache, on first use, and
# prints the binary's path. Missing packages (libportsmf-dev, g++) are installed from apt as root, under the lock that
# test/cluster/node-deps.sh, image/build.sh and test/support/chromium-deps.sh take (two apt-gets at once fail on
# dpkg's lock). The binary is named after the source's hash, so an edited source is built again.
set -euo pipefail

log() { printf '[native-parser] %s\n' "$*" >&2; }

here="$(cd "$(dirname "$0")" && pwd)"
source="$here/portsmf-parse.cpp"
cache="${MIDI_CORPUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/midi-corpus-operator}/bench"
binary="$cache/portsmf-parse-$(sha256sum "$source" | cut -c1-16)"
[[ -x "$binary" ]] && { echo "$binary"; exit 0; }

missing=()
for p in libportsmf-dev g++ pkg-config; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  [[ "$(id -u)" == 0 ]] || { log "missing ${missing[*]} and this is not root: apt-get install ${missing[*]}"; exit 1; }
  exec 9>/var/lock/midi-corpus-operator-apt.lock
  flock 9
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  exec 9>&-
fi
mkdir -p "$cache"
tmp="$(mktemp "$binary.XXXXXX")"
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
g++ -O2 -Wall -Wno-misleading-indentation -o "$tmp" "$source" $(pkg-config --cflags --libs portSMF) >&2
mv "$tmp" "$binary"
echo "$binary"
