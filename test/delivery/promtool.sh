#!/usr/bin/env bash
# Builds promtool (Prometheus's rule checker and rule unit tester) from its Go module into a cache directory outside
# the work tree, and prints the binary's path as the only line on stdout. Progress goes to stderr. Used by
# test/delivery/observability.test.ts on first use, so a fresh CI machine needs nothing but Go.
#
# The cache key is the Prometheus version, this recipe and the Go toolchain, so a warm machine reuses the binary and
# a version bump rebuilds it. A lock lets parallel test processes share one build.
#
# Environment:
#   MIDI_CORPUS_CACHE_DIR  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/midi-corpus-operator)
#   MIDI_CORPUS_PROMTOOL   a promtool to use instead (printed as is, nothing is built)
set -euo pipefail

# Prometheus v3.x's Go module versions are v0.3xx.y (v0.316.0 = Prometheus 3.16.0).
PROMETHEUS_MODULE_VERSION=v0.316.0
# Bump when the build recipe itself changes (flags) so a cached binary is rebuilt.
RECIPE=2

log() { printf '[promtool-build] %s\n' "$*" >&2; }

if [[ -n "${MIDI_CORPUS_PROMTOOL:-}" ]]; then
  echo "$MIDI_CORPUS_PROMTOOL"
  exit 0
fi

# Go's tarball install puts it in /usr/local/go/bin, which only interactive shells' rc files add to PATH.
command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { log "go is not installed: cannot build promtool"; exit 127; }

key="$( { echo "$PROMETHEUS_MODULE_VERSION $RECIPE"; go env GOVERSION; } | sha256sum | cut -c1-12)"
cache_root="${MIDI_CORPUS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/midi-corpus-operator}"
out="$cache_root/promtool-$PROMETHEUS_MODULE_VERSION-$key"
mkdir -p "$cache_root"

exec 9>"$cache_root/.promtool-build.lock"
flock 9

if [[ -f "$out/complete" ]]; then
  log "reusing $out/bin/promtool"
  echo "$out/bin/promtool"
  exit 0
fi

start=$SECONDS
tmp="$out.partial"
rm -rf "$tmp"
mkdir -p "$tmp/bin"
log "building promtool $PROMETHEUS_MODULE_VERSION (first run only; minutes on a cold machine)"
# -mod=mod: go install pkg@version builds the module's own graph, whatever a go.work or vendor dir nearby says.
# The version stamp Prometheus's release build sets, so `promtool --version` says what it is.
minor="${PROMETHEUS_MODULE_VERSION#v0.3}"; minor="${minor%%.*}"; patch="${PROMETHEUS_MODULE_VERSION##*.}"
stamp="-X github.com/prometheus/common/version.Version=3.$((10#$minor)).$patch"
GOBIN="$tmp/bin" CGO_ENABLED=0 GOFLAGS="-trimpath -mod=mod" \
  go install -ldflags "-s -w $stamp" "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
rm -rf "$out"
mv "$tmp" "$out"
touch "$out/complete"
log "built promtool in $((SECONDS - start))s into $out/bin"
echo "$out/bin/promtool"
