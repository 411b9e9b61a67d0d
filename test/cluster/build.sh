#!/usr/bin/env bash
# Builds the Kubernetes binaries the cluster tests run (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, and for the real nodes kubelet and kube-proxy; helm) from their Go modules into a cache directory outside the work tree, and prints that
# directory's bin/ path as the only line on stdout. Progress goes to stderr.
#
# The cache key is the pinned versions (test/cluster/k8s/go.mod and go.sum, the etcd main, the helm version and
# the Go toolchain), so a warm machine reuses the binaries and a version bump rebuilds them.
#
# Environment:
#   MIDI_CORPUS_CACHE_DIR  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/midi-corpus-operator)
set -euo pipefail

HELM_VERSION=v3.19.5
# Bump when the build recipe itself changes (flags, stamping) so cached binaries are rebuilt.
RECIPE=3

here="$(cd "$(dirname "$0")" && pwd)"
mod="$here/k8s"
log() { printf '[cluster-build] %s\n' "$*" >&2; }

# Go's tarball install puts it in /usr/local/go/bin, which only interactive shells' rc files add to PATH.
command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { log "go is not installed: cannot build the control plane"; exit 127; }

k8s_version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$mod/go.mod")"
[[ -n "$k8s_version" ]] || { log "no k8s.io/kubernetes requirement in $mod/go.mod"; exit 1; }
key="$( { cat "$mod/go.mod" "$mod/go.sum" "$mod/etcd/main.go"; echo "$HELM_VERSION $RECIPE"; go env GOVERSION; } \
  | sha256sum | cut -c1-12)"
cache_root="${MIDI_CORPUS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/midi-corpus-operator}"
out="$cache_root/k8s-$k8s_version-$key"
mkdir -p "$cache_root"

# Several test processes may ask at once: one builds, the others wait for it and reuse the result.
exec 9>"$cache_root/.build.lock"
flock 9

if [[ -f "$out/complete" ]]; then
  log "reusing $out/bin (kubernetes $k8s_version, helm $HELM_VERSION)"
  echo "$out/bin"
  exit 0
fi

start=$SECONDS
tmp="$out.partial"
rm -rf "$tmp"
mkdir -p "$tmp/bin"
export CGO_ENABLED=0 GOFLAGS="-trimpath -mod=readonly"

minor="${k8s_version#v1.}"; minor="${minor%%.*}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

log "downloading modules for kubernetes $k8s_version (first run only)"
(cd "$mod" && go mod download)
log "modules ready after $((SECONDS - start))s"

for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
  t=$SECONDS
  log "building $cmd $k8s_version"
  (cd "$mod" && go build -ldflags "-s -w$stamp" -o "$tmp/bin/$cmd" "k8s.io/kubernetes/cmd/$cmd")
  log "built $cmd in $((SECONDS - t))s"
done

t=$SECONDS
etcd_version="$(cd "$mod" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
log "building etcd $etcd_version"
(cd "$mod" && go build -ldflags "-s -w" -o "$tmp/bin/etcd" ./etcd)
log "built etcd in $((SECONDS - t))s"

t=$SECONDS
log "building helm $HELM_VERSION"
# go install with @version resolves helm's own module graph, independent of ours.
# Helm's release build stamps the Kubernetes version its client libraries speak (1.34 for v3.19); without it, helm
# template and helm lint assume Kubernetes 1.20 and refuse a chart whose kubeVersion asks for more.
helm_k8s="-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=34"
helm_k8s+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=34"
GOBIN="$tmp/bin" GOFLAGS="-trimpath" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION $helm_k8s" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
log "built helm in $((SECONDS - t))s"

printf 'kubernetes=%s\netcd=%s\nhelm=%s\n' "$k8s_version" "$etcd_version" "$HELM_VERSION" >"$tmp/versions"
rm -rf "$out"
mv "$tmp" "$out"
touch "$out/complete"
log "all binaries built in $((SECONDS - start))s into $out/bin"
echo "$out/bin"
