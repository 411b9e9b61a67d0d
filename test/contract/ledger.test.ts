import { describe, expect, it } from 'vitest';
import {
  claimOf,
  connectionCap,
  inUseBeside,
  inUseByOthers,
  pictureOf,
  type SessionRow,
} from '../../contract/ledger.js';

let nextPid = 100;
/** A client session as a role with pg_read_all_stats sees it. */
function client(applicationName: string | null, over: Partial<SessionRow> = {}): SessionRow {
  return {
    pid: nextPid++,
    has_database: true,
    has_role: true,
    application_name: applicationName,
    backend_type: 'client backend',
    ...over,
  };
}
/** The same session as a role without it sees another user's: backend_type hidden. */
function hidden(applicationName: string | null, over: Partial<SessionRow> = {}): SessionRow {
  return client(applicationName, { backend_type: null, ...over });
}

describe('claimOf', () => {
  it.each<[string, string | null, ReturnType<typeof claimOf>]>([
    ['a runner', 'mco run/3 default/bach s2 pod-x7k2q', { role: 'run', claim: 3 }],
    ['a bare head', 'mco local/1', { role: 'local', claim: 1 }],
    ['an operator name without a claim', 'mco migrate bach', undefined],
    ['another application', 'psql', undefined],
    ['no name', null, undefined],
  ])('%s', (_name, applicationName, expected) => {
    expect(claimOf(applicationName)).toEqual(expected);
  });
});

describe('pictureOf and inUseByOthers', () => {
  it.each<[string, SessionRow[], { others: number; unclaimed: number; exact: boolean }]>([
    [
      'a holder counts its claim while it holds less, its connections when it holds more',
      [client('mco run/3 a s0 p-1'), client('mco run/1 a s1 p-2'), client('mco run/1 a s1 p-2')],
      { others: 3 + 2, unclaimed: 0, exact: true },
    ],
    [
      'other applications and unclaimed operator sessions count one each',
      [client('psql'), client(null), client('mco migrate a'), client('mco run/2 a s0 p-1')],
      { others: 3 + 2, unclaimed: 3, exact: true },
    ],
    [
      'background processes are no clients',
      [
        client(null, { backend_type: 'autovacuum launcher', has_database: false, has_role: false }),
        client(null, { backend_type: 'walwriter', has_database: false, has_role: false }),
        client('psql'),
      ],
      { others: 1, unclaimed: 1, exact: true },
    ],
    [
      'without pg_read_all_stats: every session with a database and a role, an upper bound',
      [
        hidden(null, { has_database: false, has_role: false }), // checkpointer
        hidden(null, { has_database: false }), // logical replication launcher
        hidden('psql'),
        hidden(null), // an autovacuum worker looks like a client: counted, one too many
        client('mco run/2 a s0 p-1'),
      ],
      { others: 2 + 2, unclaimed: 2, exact: false },
    ],
  ])('%s', (_name, rows, expected) => {
    const picture = pictureOf(rows);
    expect({ others: inUseByOthers(picture), unclaimed: picture.unclaimed, exact: picture.exact }).toEqual(expected);
  });

  it('leaves out the holders the reader accounts for itself', () => {
    const picture = pictureOf([client('mco run/2 a s0 mine-r0'), client('mco run/2 b s0 theirs'), client('psql')]);
    expect(inUseByOthers(picture, (name) => name.endsWith(' mine-r0'))).toBe(2 + 1);
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
  it.each<[string, Parameters<typeof connectionCap>[0], number]>([
    [
      "the server's limit less its reserved slots and headroom",
      { serverMaxConnections: 100, serverReserved: 3, headroom: 2 },
      95,
    ],
    ['a lower limit asked for', { serverMaxConnections: 100, serverReserved: 3, maxConnections: 20, headroom: 2 }, 15],
    [
      'a higher limit asked for is not granted',
      { serverMaxConnections: 10, serverReserved: 3, maxConnections: 50, headroom: 0 },
      7,
    ],
    ['reserved overridden', { serverMaxConnections: 100, serverReserved: 3, reserved: 10, headroom: 2 }, 88],
    ['never below zero', { serverMaxConnections: 4, serverReserved: 3, headroom: 2 }, 0],
  ])('%s', (_name, input, expected) => {
    expect(connectionCap(input)).toBe(expected);
  });
});
