import { describe, expect, it } from 'vitest';
import {
  EVICTION_HARD,
  cniConfig,
  kubeletConfig,
  kubeProxyConfig,
  parseBytes,
  parseMillis,
  reservedFor,
  type NodeFacts,
} from './node-config.js';

const GI = 1024 ** 3;
const MI = 1024 ** 2;

describe('quantities', () => {
  it.each([
    ['512Mi', 512 * MI],
    ['4Gi', 4 * GI],
    ['1G', 1e9],
    ['1048576', 1048576],
    ['1.5Gi', 1.5 * GI],
  ])('memory %s is %d bytes', (q, bytes) => expect(parseBytes(q)).toBe(bytes));
  it.each([
    ['2', 2000],
    ['1.5', 1500],
    ['500m', 500],
  ])('CPU %s is %d millicores', (q, m) => expect(parseMillis(q)).toBe(m));
  it('refuses what is not a quantity', () => {
    expect(() => parseBytes('4GB')).toThrow('not a memory quantity');
    expect(() => parseMillis('two')).toThrow('not a CPU quantity');
  });
});

describe('reservedFor', () => {
  const machine = { cpuMillis: 2000, memoryBytes: 24 * GI };
  it.each([
    {
      name: "the whole machine's CPU, 4Gi",
      wanted: { cpuMillis: 2000, memoryBytes: 4 * GI },
      reserved: { cpuMillis: 0, memoryBytes: 20 * GI - 100 * MI },
    },
    {
      name: 'one CPU, 1Gi',
      wanted: { cpuMillis: 1000, memoryBytes: GI },
      reserved: { cpuMillis: 1000, memoryBytes: 23 * GI - 100 * MI },
    },
  ])('$name', ({ wanted, reserved }) => {
    // allocatable = capacity − system-reserved − the memory eviction threshold, which must give back `wanted`.
    expect(reservedFor(machine, wanted)).toEqual(reserved);
    expect(machine.memoryBytes - reserved.memoryBytes - 100 * MI).toBe(wanted.memoryBytes);
  });
  it('refuses more than the machine has', () => {
    expect(() => reservedFor(machine, { cpuMillis: 4000, memoryBytes: GI })).toThrow(
      "a node's CPU must be in (0, 2000m]",
    );
    expect(() => reservedFor(machine, { cpuMillis: 1000, memoryBytes: 24 * GI })).toThrow("a node's memory must be in");
  });
});

describe('node configuration', () => {
  const facts: NodeFacts = {
    name: 'node-1',
    address: '10.213.1.11',
    podCidr: '10.244.1.0/24',
    dir: '/tmp/c/nodes/node-1',
    containerdSocket: '/tmp/c/nodes/node-1/containerd.sock',
    sandboxImage: 'localhost/mco-test/pause:1',
    kubeletKubeconfig: 'k',
    kubeProxyKubeconfig: 'p',
    caCert: 'ca',
    servingCert: 's',
    servingKey: 'sk',
    reserved: { cpuMillis: 0, memoryBytes: GI },
    taints: [],
    maxPods: 110,
  };

  it('names every hard eviction signal (a partial list leaves the others at zero) and never collects images', () => {
    const config = kubeletConfig(facts);
    expect(Object.keys(config.evictionHard as object).sort()).toEqual([
      'imagefs.available',
      'imagefs.inodesFree',
      'memory.available',
      'nodefs.available',
      'nodefs.inodesFree',
    ]);
    expect(config.evictionHard).toBe(EVICTION_HARD);
    expect(config).toMatchObject({
      cgroupDriver: 'cgroupfs',
      cgroupRoot: '/',
      failSwapOn: false,
      failCgroupV1: false,
      protectKernelDefaults: true,
      imageGCHighThresholdPercent: 100,
      systemReserved: { cpu: '0m', memory: String(GI) },
      containerRuntimeEndpoint: 'unix:///tmp/c/nodes/node-1/containerd.sock',
      address: '10.213.1.11',
    });
  });

  it('runs kube-proxy in iptables mode without touching conntrack limits', () => {
    expect(kubeProxyConfig(facts)).toMatchObject({
      mode: 'iptables',
      bindAddress: '10.213.1.11',
      clusterCIDR: '10.244.0.0/16',
      conntrack: { maxPerCore: 0, min: 0 },
    });
  });

  it("gives pods a bridge on the node's /24 with host-local IPAM and portmap", () => {
    const cni = JSON.parse(cniConfig(facts));
    expect(cni.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap']);
    expect(cni.plugins[0].ipam.ranges).toEqual([[{ subnet: '10.244.1.0/24' }]]);
  });
});
