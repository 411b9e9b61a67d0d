#!/bin/sh
# Starts a process of a test node inside the node: first into the node's cgroups (one directory per cgroup
# hierarchy, listed in CGROUPS_FILE), so everything of the node, down to the containers, is in one tree that can be
# frozen and killed at once; then into its namespaces.
#
#   node-enter.sh init CGROUPS_FILE NETNS NODE_DIR HOSTNAME   the anchor: new mount, UTS and cgroup namespaces
#   node-enter.sh exec CGROUPS_FILE ANCHOR_PID COMMAND ARGS...  a node process: joins the anchor's namespaces
set -eu
mode="$1"; cgroups="$2"; shift 2
while read -r dir; do echo $$ >"$dir/cgroup.procs"; done <"$cgroups"
here="$(dirname "$0")"
case "$mode" in
  init)
    netns="$1"; shift
    # The cgroup namespace is made after joining the node's cgroups: inside it, the node's cgroup is "/".
    exec nsenter --net="/run/netns/$netns" -- \
      unshare --mount --uts --cgroup --propagation slave -- /bin/sh "$here/node-ns.sh" "$@" ;;
  exec)
    anchor="$1"; shift
    exec nsenter --target "$anchor" --mount --net --uts --cgroup -- "$@" ;;
  *) echo "node-enter.sh: unknown mode $mode" >&2; exit 2 ;;
esac
