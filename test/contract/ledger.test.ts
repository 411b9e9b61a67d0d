import { describe, expect, it } from 'vitest';
import {
  claimHead,
  claimOf,
  connectionCap,
  heldBy,
  inUseBeside,
  inUseByOthers,
  pictureOf,
  unclaimedBesides,
  type CapInput,
  type LedgerPicture,
  type SessionRow,
} from '../../contract/ledger.js';

describe('claimHead and claimOf', () => {
  const roundTrips = [
    { role: 'run', claim: 3, head: 'mco run/3' },
    { role: 'scan', claim: 1, head: 'mco scan/1' },
    { role: 'one-connection', claim: 16, head: 'mco one-connection/16' },
  ];
  for (const row of roundTrips) {
    it(`writes ${row.head} and reads it back, alone or followed by the rest of a name`, () => {
      expect(claimHead(row.role, row.claim)).toBe(row.head);
      expect(claimOf(row.head)).toEqual({ role: row.role, claim: row.claim });
      expect(claimOf(`${row.head} default/bach s0 bach-run-0-x7k2p`)).toEqual({ role: row.role, claim: row.claim });
    });
  }

  const refusedHeads: Array<{ name: string; role: string; claim: number }> = [
    { name: 'an empty role', role: '', claim: 1 },
    { name: 'an upper-case role', role: 'Run', claim: 1 },
    { name: 'a role with a space, which would end the head early', role: 'run x', claim: 1 },
    { name: 'a role with a slash, which would read as the claim', role: 'run/2', claim: 1 },
    { name: 'a role starting with a dash', role: '-run', claim: 1 },
    { name: 'a claim of zero', role: 'run', claim: 0 },
    { name: 'a negative claim', role: 'run', claim: -2 },
    { name: 'a fractional claim', role: 'run', claim: 2.5 },
    { name: 'a claim that is not a number', role: 'run', claim: Number.NaN },
  ];
  for (const row of refusedHeads) {
    it(`claimHead refuses ${row.name}`, () => expect(() => claimHead(row.role, row.claim)).toThrow(RangeError));
  }

  const noClaim: Array<{ name: string; applicationName: string | null }> = [
    { name: 'a hidden or unset name', applicationName: null },
    { name: 'an empty name', applicationName: '' },
    { name: 'an operator name without a claim', applicationName: 'mco run default/bach s3' },
    { name: "another application's name", applicationName: 'psql' },
    { name: 'a claim not at the start', applicationName: 'x mco run/3' },
    { name: 'a claim glued to what follows', applicationName: 'mco run/3x' },
    { name: 'a claim without a number', applicationName: 'mco run/ pod' },
    { name: 'a claim with an upper-case role', applicationName: 'mco Run/3' },
  ];
  for (const row of noClaim) {
    it(`claimOf finds no claim in ${row.name}`, () => expect(claimOf(row.applicationName)).toBeUndefined());
  }
});

/** A session as a role with pg_read_all_stats sees it: every detail visible. */
function client(applicationName: string | null, pid = nextPid()): SessionRow {
  return { pid, has_database: true, has_role: true, application_name: applicationName, backend_type: 'client backend' };
}

let pids = 1000;
function nextPid(): number {
  return ++pids;
}

describe('pictureOf', () => {
  it("counts a waiting holder's probe as the one unclaimed session it is, and lists it by name", () => {
    const picture = pictureOf([client('mco wait run/3 pod-a'), client('psql'), client('mco run/2 c s1 pod-b')]);
    expect(picture.unclaimed).toBe(2);
    expect(picture.probes).toEqual(['mco wait run/3 pod-a']);
    expect(picture.holders.has('mco wait run/3 pod-a')).toBe(false);
  });

  it('groups a holder by its name, counting its live connections beside its claim', () => {
    const picture = pictureOf([
      client('mco run/3 c s0 pod-a'),
      client('mco run/3 c s0 pod-a'),
      client('mco run/2 c s1 pod-b'),
    ]);
    expect(picture.holders).toEqual(
      new Map([
        ['mco run/3 c s0 pod-a', { claim: 3, live: 2 }],
        ['mco run/2 c s1 pod-b', { claim: 2, live: 1 }],
      ]),
    );
    expect(picture.unclaimed).toBe(0);
    expect(picture.exact).toBe(true);
  });

  it('shows a holder holding more than its claim as such, for heldBy to charge', () => {
    const name = 'mco run/1 c s0 pod-a';
    const picture = pictureOf([client(name), client(name), client(name)]);
    expect(picture.holders.get(name)).toEqual({ claim: 1, live: 3 });
  });

  it('counts as unclaimed every client backend without a claim: other applications and unclaimed operator sessions', () => {
    const picture = pictureOf([client('psql'), client(null), client(''), client('mco migrate c'), client('mco run/2')]);
    expect(picture.unclaimed).toBe(4);
    expect([...picture.holders.keys()]).toEqual(['mco run/2']);
  });

  it('leaves out visible sessions that are not client backends, whatever their name', () => {
    const background = (backend_type: string, application_name: string | null, has = true): SessionRow => ({
      pid: nextPid(),
      has_database: has,
      has_role: has,
      application_name,
      backend_type,
    });
    const picture = pictureOf([
      background('autovacuum worker', null),
      background('walsender', 'mco run/3 replica'),
      background('parallel worker', 'psql'),
      background('checkpointer', null, false),
      client('psql'),
    ]);
    expect(picture.unclaimed).toBe(1);
    expect(picture.holders.size).toBe(0);
    expect(picture.exact).toBe(true);
  });

  const hidden: Array<{ name: string; row: Omit<SessionRow, 'pid' | 'backend_type'>; client: boolean }> = [
    {
      name: 'with a database and a role',
      row: { has_database: true, has_role: true, application_name: 'psql' },
      client: true,
    },
    {
      name: 'without a database (a launcher, a walsender for physical replication)',
      row: { has_database: false, has_role: true, application_name: null },
      client: false,
    },
    {
      name: 'without a role (an autovacuum worker)',
      row: { has_database: true, has_role: false, application_name: null },
      client: false,
    },
    {
      name: 'with neither (a background process)',
      row: { has_database: false, has_role: false, application_name: null },
      client: false,
    },
  ];
  for (const h of hidden) {
    it(`counts a hidden session ${h.name} as ${h.client ? 'a client' : 'no client'}, and the picture as inexact`, () => {
      const picture = pictureOf([{ pid: nextPid(), backend_type: null, ...h.row }, client('psql')]);
      expect(picture.unclaimed).toBe(h.client ? 2 : 1);
      expect(picture.exact).toBe(false);
    });
  }

  it("reads a hidden session's claim too: application_name is visible to every role", () => {
    const name = 'mco run/4 c s2 pod-c';
    const picture = pictureOf([
      { pid: nextPid(), has_database: true, has_role: true, application_name: name, backend_type: null },
    ]);
    expect(picture.holders.get(name)).toEqual({ claim: 4, live: 1 });
    expect(picture.unclaimed).toBe(0);
    expect(picture.exact).toBe(false);
  });

  it('of nothing is empty and exact', () => {
    expect(pictureOf([])).toEqual({ holders: new Map(), unclaimed: 0, probes: [], exact: true });
  });
});

describe('heldBy', () => {
  const table = [
    { name: 'a holder below its claim is charged its claim', holder: { claim: 3, live: 1 }, want: 3 },
    { name: 'a holder at its claim', holder: { claim: 3, live: 3 }, want: 3 },
    { name: 'a holder above its claim is charged what it holds', holder: { claim: 2, live: 5 }, want: 5 },
  ];
  for (const row of table) it(row.name, () => expect(heldBy(row.holder)).toBe(row.want));
});

describe('inUseByOthers', () => {
  const picture: LedgerPicture = {
    holders: new Map([
      ['mco run/3 c s0 pod-a', { claim: 3, live: 1 }],
      ['mco run/2 c s1 pod-b', { claim: 2, live: 4 }],
      ['mco scan/1 c host-1', { claim: 1, live: 1 }],
    ]),
    unclaimed: 5,
    probes: ['mco wait run/2 pod-c', 'mco wait run/2 pod-d'],
    exact: true,
  };

  it('counts every holder and every unclaimed session when nothing is mine', () => {
    expect(inUseByOthers(picture)).toBe(5 + 3 + 4 + 1);
  });

  it('leaves out the holders mine accepts, and only those', () => {
    expect(inUseByOthers(picture, (name) => name === 'mco run/3 c s0 pod-a')).toBe(5 + 4 + 1);
    expect(inUseByOthers(picture, (name) => name.startsWith('mco run/'))).toBe(5 + 1);
  });

  it('leaves out of the unclaimed sessions only the waiting probes mine accepts', () => {
    expect(inUseByOthers(picture, () => true)).toBe(5 - 2);
    expect(inUseByOthers(picture, (name) => name.endsWith(' pod-c'))).toBe(5 - 1 + 3 + 4 + 1);
    expect(unclaimedBesides(picture, (name) => name.endsWith(' pod-d'))).toBe(4);
  });
});

describe('inUseBeside', () => {
  const holder = 'mco run/2 a s0 pod-x7k2q';

  it('counts the sessions still under the newcomer’s own name, as many as they are', () => {
    // An earlier container of the same pod, killed, with one backend the server has not ended yet: the newcomer's
    // two connections and that one hold three slots, so the newcomer must fit beside it.
    const picture = pictureOf([client(holder), client('mco run/2 a s1 other'), client('psql')]);
    expect(inUseBeside(picture, holder)).toBe(1 + 2 + 1);
  });

  it('is everyone else’s use when nothing carries the name', () => {
    const picture = pictureOf([client('mco run/2 a s1 other'), client('psql')]);
    expect(inUseBeside(picture, holder)).toBe(inUseByOthers(picture));
  });
});

describe('connectionCap', () => {
  const base: CapInput = { serverMaxConnections: 100, serverReserved: 3, headroom: 2 };
  const table: Array<{ name: string; input: CapInput; want: number }> = [
    { name: "the server's figures less reserved and headroom", input: base, want: 95 },
    { name: 'a lower maxConnections is planned for', input: { ...base, maxConnections: 40 }, want: 35 },
    {
      name: 'a higher maxConnections than the server has cannot raise the cap',
      input: { ...base, maxConnections: 500 },
      want: 95,
    },
    { name: "reserved overrides the server's reserved slots", input: { ...base, reserved: 10 }, want: 88 },
    { name: 'reserved may also be lower than the server says', input: { ...base, reserved: 0 }, want: 98 },
    { name: 'both overrides together', input: { ...base, maxConnections: 20, reserved: 5 }, want: 13 },
    { name: 'no headroom', input: { ...base, headroom: 0 }, want: 97 },
    { name: 'never negative', input: { ...base, maxConnections: 4 }, want: 0 },
    { name: 'never negative with a large headroom', input: { ...base, headroom: 1000 }, want: 0 },
  ];
  for (const row of table) it(row.name, () => expect(connectionCap(row.input)).toBe(row.want));
});
