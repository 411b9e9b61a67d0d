import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { ledgerFiles, teardown, type Ledger } from './ledger.js';

const exec = promisify(execFile);

/**
 * One cluster's network. Each cluster takes a free *slot* n (1…MAX_SLOT) and with it the segment 10.213.n.0/24: a
 * bridge in its own "switch" netns, joined by a veth to the host (10.213.n.1, where the API server and anything the
 * tests run outside the cluster listen) and by a veth to each node's netns (10.213.n.10+i). The pod network
 * 10.244.0.0/16 and the Service range exist only inside the node netns, so every cluster can use the same ones; the
 * host never sees a pod address (pod traffic leaving a node is masqueraded to the node's address).
 *
 * On the host this adds one interface, with its connected /24 route, and nothing else: no route, no iptables rule,
 * no sysctl. Node netns and the switch netns are the cluster's own.
 */
const SEGMENT = '10.213';
const MAX_SLOT = 250;
/** Slot claims; /run is cleared on reboot, so a stale claim never outlives the machine's state it describes. */
const SLOTS_DIR = '/run/midi-corpus-operator/cluster-slots';

export interface ClusterNetwork {
  slot: number;
  /** The host's address on the cluster segment. */
  hostAddress: string;
  /** The segment, as a CIDR. */
  cidr: string;
  hostLink: string;
  switchNetns: string;
  prefix: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Segments some other software already uses on this machine (an address of the host inside 10.213.n.0/24). */
async function foreignSlots(): Promise<Set<number>> {
  const { stdout } = await exec('ip', ['-4', '-o', 'addr', 'show']);
  const taken = new Set<number>();
  for (const m of stdout.matchAll(/inet 10\.213\.(\d+)\./g)) taken.add(Number(m[1]));
  return taken;
}

/**
 * Claims a free slot for this cluster with an atomic mkdir. A claim whose owner process is dead (killed before its
 * watchdog could clean up) is taken over by an atomic rename, and what its ledgers list is torn down first.
 */
export async function claimSlot(ledgerDir: string): Promise<{ slot: number; claim: string }> {
  mkdirSync(SLOTS_DIR, { recursive: true });
  const foreign = await foreignSlots();
  for (let slot = 1; slot <= MAX_SLOT; slot++) {
    const claim = path.join(SLOTS_DIR, String(slot));
    try {
      mkdirSync(claim);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner: { pid: number; ledgers: string } | undefined;
      try {
        owner = JSON.parse(readFileSync(path.join(claim, 'owner.json'), 'utf8')) as { pid: number; ledgers: string };
      } catch {
        continue; // being written by its claimer right now
      }
      if (alive(owner.pid)) continue;
      const stale = `${claim}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        renameSync(claim, stale);
      } catch {
        continue; // another cluster took it over first
      }
      await teardown(ledgerFiles(owner.ledgers));
      rmSync(stale, { recursive: true, force: true });
      slot--; // try this slot again
      continue;
    }
    if (foreign.has(slot)) {
      rmSync(claim, { recursive: true, force: true });
      continue;
    }
    writeFileSync(path.join(claim, 'owner.json'), JSON.stringify({ pid: process.pid, ledgers: ledgerDir }));
    return { slot, claim };
  }
  throw new Error(`no free cluster slot in ${SLOTS_DIR} (${MAX_SLOT} clusters running?)`);
}

const ip = (args: string[]) => exec('ip', args);

/** The switch netns with its bridge, and the host's veth into it with the host address. */
export async function createSegment(slot: number, ledger: Ledger): Promise<ClusterNetwork> {
  const net: ClusterNetwork = {
    slot,
    hostAddress: `${SEGMENT}.${slot}.1`,
    cidr: `${SEGMENT}.${slot}.0/24`,
    hostLink: `mco${slot}`,
    switchNetns: `mco${slot}-switch`,
    prefix: 24,
  };
  ledger.record('netns', net.switchNetns);
  ledger.record('link', net.hostLink);
  await ip(['netns', 'add', net.switchNetns]);
  await ip(['-n', net.switchNetns, 'link', 'add', 'br0', 'type', 'bridge']);
  await ip(['-n', net.switchNetns, 'link', 'set', 'br0', 'up']);
  await ip(['link', 'add', net.hostLink, 'type', 'veth', 'peer', 'name', 'host', 'netns', net.switchNetns]);
  await ip(['-n', net.switchNetns, 'link', 'set', 'host', 'master', 'br0', 'up']);
  await ip(['addr', 'add', `${net.hostAddress}/${net.prefix}`, 'dev', net.hostLink]);
  await ip(['link', 'set', net.hostLink, 'up']);
  return net;
}

export function nodeAddress(net: ClusterNetwork, index: number): string {
  if (index < 1 || index > 240) throw new Error(`node index ${index} out of range`);
  return `${SEGMENT}.${net.slot}.${10 + index}`;
}

export function podCidr(index: number): string {
  return `10.244.${index}.0/24`;
}

export function nodeNetnsName(net: ClusterNetwork, node: string): string {
  return `mco${net.slot}-${node}`;
}

/**
 * The node's netns: loopback, eth0 on the segment (a veth whose peer is port p<index> of the switch's bridge),
 * and a route for the Service range out of eth0 so that the node's own processes (hostNetwork pods) can reach
 * ClusterIPs, which kube-proxy's DNAT rewrites after the route lookup. No default route: nothing leaves the cluster.
 */
export async function createNodeNetns(
  net: ClusterNetwork,
  netns: string,
  index: number,
  serviceCidr: string,
  ledger: Ledger,
): Promise<void> {
  ledger.record('netns', netns);
  await ip(['netns', 'add', netns]);
  await ip(['-n', netns, 'link', 'set', 'lo', 'up']);
  await ip([
    'link',
    'add',
    'eth0',
    'netns',
    netns,
    'type',
    'veth',
    'peer',
    'name',
    `p${index}`,
    'netns',
    net.switchNetns,
  ]);
  await ip(['-n', net.switchNetns, 'link', 'set', `p${index}`, 'master', 'br0', 'up']);
  await ip(['-n', netns, 'addr', 'add', `${nodeAddress(net, index)}/${net.prefix}`, 'dev', 'eth0']);
  await ip(['-n', netns, 'link', 'set', 'eth0', 'up']);
  await ip(['-n', netns, 'route', 'add', serviceCidr, 'dev', 'eth0']);
}

/**
 * Cuts a node off the segment without a word: its switch port goes down, so nothing it sends arrives and nothing sent
 * to it is answered or refused. Its processes run on; every peer (the API server, a database) only finds out by its
 * own timeouts, as when a machine loses its network or power.
 */
export async function isolateNode(net: ClusterNetwork, index: number): Promise<void> {
  await ip(['-n', net.switchNetns, 'link', 'set', `p${index}`, 'down']);
}

/** A route in one node's netns to another node's pod /24, through that node: the pod network across nodes. */
export async function addPodRoute(netns: string, cidr: string, via: string): Promise<void> {
  await ip(['-n', netns, 'route', 'replace', cidr, 'via', via, 'dev', 'eth0']);
}

export async function deletePodRoute(netns: string, cidr: string): Promise<void> {
  await ip(['-n', netns, 'route', 'del', cidr]).catch(() => undefined);
}
