#!/bin/sh
# Runs as a test node's anchor process, already inside the node's network namespace and fresh mount, UTS and cgroup
# namespaces (node-enter.sh made them). Shapes the node's view of the machine, then sleeps as the namespaces'
# holder: the node's containerd, kubelet and kube-proxy join these namespaces with nsenter.
#
#   node-ns.sh NODE_DIR HOSTNAME POD_CIDR CLUSTER_POD_CIDR
#
# Everything mounted here lives in this mount namespace only (propagation is slave: nothing leaks to the host) and
# vanishes with the node's last process.
set -eu
node_dir="$1" pod_cidr="$3" cluster_pod_cidr="$4"
hostname "$2"
mkdir -p "$node_dir/sysctl"

# A sysfs of this network namespace (the CNI plugins and cAdvisor read /sys/class/net); that hides /sys/fs/cgroup,
# so the cgroup hierarchies are mounted again: mounted inside this cgroup namespace, their root is the node's cgroup.
# mountinfo: optional fields (shared:N, master:N) come before the "-" that precedes type, source and options.
cgroup_mounts="$(awk '{ for (i = 7; $i != "-"; i++); if ($(i+1) ~ /^cgroup2?$/) print $5, $(i+1), $(i+3) }' \
  /proc/self/mountinfo)"
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
echo "$cgroup_mounts" | while read -r dir fstype opts; do
  mkdir -p "$dir"
  if [ "$fstype" = cgroup2 ]; then
    mount -t cgroup2 cgroup2 "$dir"
  else
    mount -t cgroup -o "$(echo "$opts" | sed -e 's/^rw,//' -e 's/^ro,//')" cgroup "$dir"
  fi
done
# Leave it read-only at the top as a container runtime expects to find it; the hierarchies stay writable.
mount -o remount,ro,bind /sys/fs/cgroup

# Paths that containerd, runc, the CNI plugins, iptables and the kubelet use whatever their configuration says
# (shim sockets under /run/containerd/s, /run/netns, /run/xtables.lock, /var/lib/cni, /var/lib/kubelet/device-plugins,
# /var/log/containers): private to the node, so two nodes or two clusters never meet there. /var/lib and /var/log
# as a whole are private too, which leaves the host's directories alone (no mount point has to be created on it).
mount -t tmpfs -o mode=755 node-run /run
mount -t tmpfs -o mode=755 node-var-lib /var/lib
mount -t tmpfs -o mode=755 node-var-log /var/log
mkdir -p /run/netns /var/lib/kubelet /var/lib/cni /var/log/pods /var/log/containers
# containerd's socket is on the host's disk (the harness imports images through it); at the standard path too, for
# cAdvisor's containerd factory and for ctr inside the node.
mkdir -p /run/containerd
ln -s "$node_dir/containerd.sock" /run/containerd/containerd.sock
# The node's resolv.conf, which containerd copies into pods: without it pods would get the host's DNS server,
# which lies outside the cluster's namespaces (no DNS server runs in these clusters).
mount --bind "$node_dir/resolv.conf" /etc/resolv.conf
# The kubelet's data and the pods' logs are on disk in the node's directory (emptyDir volumes, post-mortems).
mount --bind "$node_dir/kubelet" /var/lib/kubelet
mount --bind "$node_dir/pod-logs" /var/log/pods

# protectKernelDefaults: the kubelet refuses to start unless these hold the values it would otherwise set. It sees
# files holding those values; the host's settings are never read by anyone else through them, nor changed.
for entry in vm/overcommit_memory:1 vm/panic_on_oom:0 kernel/panic:10 kernel/panic_on_oops:1 \
  kernel/keys/root_maxkeys:1000000 kernel/keys/root_maxbytes:25000000; do
  key="${entry%%:*}"; want="${entry#*:}"
  [ "$(cat "/proc/sys/$key")" = "$want" ] && continue
  file="$node_dir/sysctl/$(echo "$key" | tr / .)"
  echo "$want" >"$file"
  mount --bind "$file" "/proc/sys/$key"
done

# Per network namespace, so these change nothing outside the node: routing for the pods, and bridged pod traffic
# through iptables so that a Service whose backend is on the same node answers (kube-proxy's DNAT on the bridge).
echo 1 >/proc/sys/net/ipv4/ip_forward
echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
# Pod traffic leaving the pod network (to the host address: the API server, the tests' servers) leaves as the
# node's address, the only one the segment routes back; pod-to-pod traffic between nodes keeps its source.
iptables -w -t nat -A POSTROUTING -s "$pod_cidr" ! -d "$cluster_pod_cidr" -j MASQUERADE

echo ready
exec sleep infinity
