#!/bin/sh
# Removes what a test cluster (or one of its nodes) made on this machine, from ledger files the harness appends to
# before it creates each thing, so a half-made node is cleaned up too:
#
#   cgroup DIR   a node's cgroup in one hierarchy: every process under it is killed, then the directories removed
#   netns NAME   a network namespace (`ip netns add`): deleted, and with it its interfaces and the veth peers
#   link NAME    an interface in the host's network namespace
#   dir PATH     a directory removed last (the cluster's slot)
#
#   teardown.sh LEDGER...
#
# Used by stop(), removeNode/loseNode and the watchdog that runs when the test process dies. Idempotent: every
# step tolerates what is already gone.
set -u

# All of a node at once: freeze its tree (so nothing forks or restarts while the kill goes round), SIGKILL every
# process in it, thaw so the signals are delivered. Kubelet, containerd, shims and containers go in the same instant.
kill_tree() {
  freezer="$1"
  [ -d "$freezer" ] || return 0
  echo FROZEN >"$freezer/freezer.state" 2>/dev/null
  i=0
  while [ "$(cat "$freezer/freezer.state" 2>/dev/null)" = FREEZING ] && [ $i -lt 50 ]; do sleep 0.02; i=$((i + 1)); done
  find "$freezer" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null; done
  echo THAWED >"$freezer/freezer.state" 2>/dev/null
}

# Waits until the tree has no process left, then removes its directories, deepest first.
remove_tree() {
  dir="$1"
  [ -d "$dir" ] || return 0
  i=0
  while [ -n "$(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] && [ $i -lt 250 ]; do
    sleep 0.02; i=$((i + 1))
  done
  find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
  [ -d "$dir" ] && echo "teardown: could not remove cgroup $dir" >&2
  return 0
}

entries() { cat "$@" 2>/dev/null; }

for line in $(entries "$@" | awk '$1 == "cgroup" && $2 ~ /\/freezer\// { print $2 }'); do kill_tree "$line"; done
for line in $(entries "$@" | awk '$1 == "cgroup" { print $2 }'); do remove_tree "$line"; done
# Deleting a netns takes its interfaces with it, and a veth's host end goes with its peer, asynchronously: so each
# deletion may find its object already gone, and only what is still there afterwards is an error.
for name in $(entries "$@" | awk '$1 == "netns" { print $2 }'); do
  ip netns delete "$name" 2>/dev/null
  [ -e "/run/netns/$name" ] && echo "teardown: could not delete netns $name" >&2
done
for name in $(entries "$@" | awk '$1 == "link" { print $2 }'); do
  ip link delete "$name" 2>/dev/null
  i=0
  while ip link show "$name" >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.02; i=$((i + 1)); done
  ip link show "$name" >/dev/null 2>&1 && echo "teardown: could not delete link $name" >&2
done
for path in $(entries "$@" | awk '$1 == "dir" { print $2 }'); do rm -rf "$path"; done
exit 0
