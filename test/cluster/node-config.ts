/**
 * The configuration files of one real test node (containerd, CNI, kubelet, kube-proxy), as pure functions of the
 * node's facts, so what a node runs with can be read in one place and tested without starting one.
 */

/** Every node's pods get a /24 of this; routes between nodes' /24s make it one flat pod network. */
export const CLUSTER_POD_CIDR = '10.244.0.0/16';

/** What a node runs with, decided by the harness (addresses, paths) and the test (allocatable, taints). */
export interface NodeFacts {
  name: string;
  /** The node's address on the cluster segment (its InternalIP). */
  address: string;
  podCidr: string;
  /** The node's directory on the host's disk (containerd's root, the kubelet's data, pod logs, configs). */
  dir: string;
  containerdSocket: string;
  sandboxImage: string;
  kubeletKubeconfig: string;
  kubeProxyKubeconfig: string;
  caCert: string;
  servingCert: string;
  servingKey: string;
  reserved: Reserved;
  taints: Array<{ key: string; value?: string; effect: string }>;
  maxPods: number;
}

/** What the kubelet keeps from pods (system-reserved), so that allocatable comes out as the test asked. */
export interface Reserved {
  cpuMillis: number;
  memoryBytes: number;
}

/**
 * Hard eviction thresholds, all of them (a KubeletConfiguration that names some gets zero for the others). Low:
 * a machine of this kind once had 287 MB of free disk, and the default 10 % / 15 % would have evicted every pod and
 * deleted the imported images (which cannot be pulled back) on a disk that still had room for the tests.
 */
export const EVICTION_HARD = {
  'memory.available': '100Mi',
  'nodefs.available': '64Mi',
  'nodefs.inodesFree': '1%',
  'imagefs.available': '64Mi',
  'imagefs.inodesFree': '1%',
};
const EVICTION_MEMORY_BYTES = 100 * 1024 * 1024;

const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** A memory quantity ("512Mi", "4Gi", "1G", "1048576") in bytes. */
export function parseBytes(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]i?|k)?$/.exec(quantity);
  const unit = UNITS[m?.[2] ?? ''];
  if (!m || unit === undefined) throw new Error(`not a memory quantity: ${quantity}`);
  return Math.round(Number(m[1]) * unit);
}

/** A CPU quantity ("2", "1.5", "500m") in millicores. */
export function parseMillis(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(m)?$/.exec(quantity);
  if (!m) throw new Error(`not a CPU quantity: ${quantity}`);
  return m[2] ? Number(m[1]) : Math.round(Number(m[1]) * 1000);
}

/**
 * The system-reserved amounts that make the kubelet report `allocatable` = the wanted CPU and memory: the kubelet
 * computes allocatable = capacity − reserved (− the memory eviction threshold for memory). A node can offer at most
 * the machine (every node here sees the machine's CPUs and memory as its capacity).
 */
export function reservedFor(
  capacity: { cpuMillis: number; memoryBytes: number },
  wanted: { cpuMillis: number; memoryBytes: number },
): Reserved {
  const memoryRoom = capacity.memoryBytes - EVICTION_MEMORY_BYTES;
  if (wanted.cpuMillis > capacity.cpuMillis || wanted.cpuMillis <= 0) {
    throw new Error(`a node's CPU must be in (0, ${capacity.cpuMillis}m] (the machine's), not ${wanted.cpuMillis}m`);
  }
  if (wanted.memoryBytes > memoryRoom || wanted.memoryBytes <= 0) {
    throw new Error(`a node's memory must be in (0, ${memoryRoom}] bytes, not ${wanted.memoryBytes}`);
  }
  return { cpuMillis: capacity.cpuMillis - wanted.cpuMillis, memoryBytes: memoryRoom - wanted.memoryBytes };
}

/** containerd's config (version 2, containerd 1.6): its own root, state and socket, the CRI plugin for the kubelet. */
export function containerdConfig(node: NodeFacts): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = "${node.dir}/containerd"
# Inside the node's mount namespace /run is the node's own tmpfs (shim sockets live under /run/containerd/s).
state = "/run/containerd"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  # On the host's disk, so the harness (ctr images import) reaches it from outside the node's namespaces.
  address = "${node.containerdSocket}"

[${cri}]
  sandbox_image = "${node.sandboxImage}"
  # This VM withholds CAP_SYS_RESOURCE: raising a sandbox's oom_score_adj fails runc with "can't get final
  # child's PID from pipe: EOF" unless containerd keeps it at or above its own.
  restrict_oom_score_adj = true
  [${cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${cri}.containerd.runtimes.runc.options]
        # No systemd as PID 1: cgroupfs, as the kubelet's cgroupDriver.
        SystemdCgroup = false
  [${cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${node.dir}/cni"
`;
}

/**
 * The pods' network: a bridge per node on the node's /24 (host-local IPAM, the bridge as gateway, hairpin so a pod
 * reaches itself through a Service) and portmap for hostPort. Masquerading is one rule in the node's netns
 * (node-ns.sh): traffic leaving the pod network goes out as the node's address, pod-to-pod keeps its source.
 */
export function cniConfig(node: Pick<NodeFacts, 'podCidr'>): string {
  return JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: 'pods',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: node.podCidr }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

/** The KubeletConfiguration (JSON is YAML). */
export function kubeletConfig(node: NodeFacts): Record<string, unknown> {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    containerRuntimeEndpoint: `unix://${node.containerdSocket}`,
    // cgroup v1 without systemd (runc's SystemdCgroup = false). "/" is the node's own cgroup: the kubelet runs in
    // a cgroup namespace rooted at it, so /kubepods of two nodes (or two clusters) are different host cgroups.
    cgroupDriver: 'cgroupfs',
    cgroupRoot: '/',
    failCgroupV1: false,
    failSwapOn: false,
    // The kubelet would otherwise set host sysctls; the node's mount namespace shows it the values it wants.
    protectKernelDefaults: true,
    address: node.address,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    tlsCertFile: node.servingCert,
    tlsPrivateKeyFile: node.servingKey,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: node.caCert },
    },
    authorization: { mode: 'Webhook' },
    // No DNS server in these clusters (no CoreDNS image can be pulled): pods get an empty resolv.conf.
    resolvConf: `${node.dir}/resolv.conf`,
    clusterDomain: 'cluster.local',
    evictionHard: EVICTION_HARD,
    evictionPressureTransitionPeriod: '30s',
    // The imported images cannot be pulled again: image GC never starts (100 % disk), only hard eviction could.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    systemReserved: { cpu: `${node.reserved.cpuMillis}m`, memory: String(node.reserved.memoryBytes) },
    enforceNodeAllocatable: ['pods'],
    maxPods: node.maxPods,
    registerWithTaints: node.taints,
    // Status every 10 s (the default); a lost node is noticed by the node-lifecycle controller after its grace.
    nodeStatusUpdateFrequency: '10s',
    serializeImagePulls: false,
    rotateCertificates: false,
    serverTLSBootstrap: false,
  };
}

/** kube-proxy in iptables mode inside the node's netns, leaving every machine-wide setting as it is. */
export function kubeProxyConfig(node: NodeFacts): Record<string, unknown> {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'iptables',
    clientConnection: { kubeconfig: node.kubeProxyKubeconfig },
    hostnameOverride: node.name,
    bindAddress: node.address,
    clusterCIDR: CLUSTER_POD_CIDR,
    // NodePorts on the node's segment address only (not on the pods' bridge or loopback).
    nodePortAddresses: ['primary'],
    healthzBindAddress: '127.0.0.1:10256',
    metricsBindAddress: '127.0.0.1:10249',
    // nf_conntrack_max is machine-wide: 0 leaves it (and the timeouts) alone.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    iptables: { syncPeriod: '30s', minSyncPeriod: '0s' },
  };
}
