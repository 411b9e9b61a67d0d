import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import yargs, { type Argv } from 'yargs';
import { describe, expect, it } from 'vitest';
import { runShardCommand } from '../../cli/commands/run-shard.js';
import { ADMITTED_MESSAGE, isAdmittedMessage, runShardArgs } from '../../contract/run-shard-command.js';
import { DEFAULT_POOL_TUNING } from '../../contract/pool-sizing.js';
import type { CapSettings } from '../../contract/cap-options.js';

const CAP: CapSettings = { headroom: 2, ledgerDatabase: 'postgres' };
const CAP_ARGS = ['--headroom', '2', '--ledger-database', 'postgres'];

/** The argv `run-shard`'s own yargs options make of `args` (without running it): unknown flags fail. */
function parsedByRunShard(args: string[]): Record<string, unknown> {
  const [command, ...rest] = args;
  expect(command).toBe('run-shard');
  const builder = runShardCommand.builder as (y: Argv) => Argv;
  return builder(yargs().strict().exitProcess(false)).parseSync(rest);
}

describe('the run-shard command line', () => {
  it("is what a run Job's container ran: corpus, root, every pool knob, then the optional limits", () => {
    expect(runShardArgs({ corpus: 'music/bach', root: '/corpus', pool: DEFAULT_POOL_TUNING, cap: CAP })).toEqual([
      'run-shard',
      '--corpus',
      'music/bach',
      '--root',
      '/corpus',
      '--connections-per-worker',
      '1',
      '--extra-connections',
      '1',
      '--max-per-pod',
      '16',
      '--warm-fraction',
      '1',
      ...CAP_ARGS,
      '--json',
    ]);
    expect(
      runShardArgs({
        corpus: 'music/bach',
        root: '/corpus/classical',
        splitOutput: '/split-tracks/split',
        pool: DEFAULT_POOL_TUNING,
        cap: CAP,
        maxFileBytes: 1_000_000,
        fileTimeoutMs: 5000,
      }),
    ).toEqual([
      'run-shard',
      '--corpus',
      'music/bach',
      '--root',
      '/corpus/classical',
      '--split-output',
      '/split-tracks/split',
      '--connections-per-worker',
      '1',
      '--extra-connections',
      '1',
      '--max-per-pod',
      '16',
      '--warm-fraction',
      '1',
      ...CAP_ARGS,
      '--max-file-bytes',
      '1000000',
      '--file-timeout-ms',
      '5000',
      '--json',
    ]);
  });

  it('is what local mode started: its shard and CPU given, only the pool knobs asked for, --retry-failed', () => {
    expect(
      runShardArgs({
        corpus: '/data/midi',
        root: '/data/midi',
        shard: 3,
        cpuMillis: 1000,
        pool: { maxPerPod: 4, warmFraction: undefined },
        cap: { maxConnections: 20, reserved: 1, headroom: 0, ledgerDatabase: 'ledger' },
        retryFailed: true,
      }),
    ).toEqual([
      'run-shard',
      '--corpus',
      '/data/midi',
      '--root',
      '/data/midi',
      '--shard',
      '3',
      '--cpu-millis',
      '1000',
      '--max-per-pod',
      '4',
      '--max-connections',
      '20',
      '--reserved',
      '1',
      '--headroom',
      '0',
      '--ledger-database',
      'ledger',
      '--retry-failed',
      '--json',
    ]);
  });

  it("is read back by run-shard's options as it was built", () => {
    // run-shard checks at parse time that --root is a readable directory: give it one.
    const root = mkdtempSync(path.join(tmpdir(), 'run-shard-root-'));
    const args = runShardArgs({
      corpus: 'music/bach',
      root,
      shard: 7,
      cpuMillis: 2500,
      splitOutput: '/split',
      pool: { connectionsPerWorker: 2, extraConnections: 0, maxPerPod: 8, warmFraction: 0.5 },
      cap: { maxConnections: 30, reserved: 4, headroom: 3, ledgerDatabase: 'shared' },
      maxFileBytes: 1024,
      fileTimeoutMs: 100,
      retryFailed: true,
    });
    // The URL comes from the environment (the Secret) in a pod; run-shard refuses to start without one.
    expect(parsedByRunShard([...args, '--database-url', 'postgres://midi@db.example/midi'])).toMatchObject({
      corpus: 'music/bach',
      root,
      shard: 7,
      'cpu-millis': 2500,
      'split-output': '/split',
      'connections-per-worker': 2,
      'extra-connections': 0,
      'max-per-pod': 8,
      'warm-fraction': 0.5,
      'max-connections': 30,
      reserved: 4,
      headroom: 3,
      'ledger-database': 'shared',
      'max-file-bytes': 1024,
      'file-timeout-ms': 100,
      'retry-failed': true,
      json: true,
    });
  });
});

describe('the TLS files on the run-shard command line', () => {
  it('are read back by run-shard as the paths given, and absent without them', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'run-shard-tls-'));
    const files = {
      rootCert: path.join(dir, 'ca.crt'),
      cert: path.join(dir, 'tls.crt'),
      key: path.join(dir, 'tls.key'),
    };
    for (const f of Object.values(files)) writeFileSync(f, 'PEM');
    const args = runShardArgs({ corpus: 'c', root: dir, shard: 0, pool: DEFAULT_POOL_TUNING, cap: CAP, tls: files });
    expect(
      parsedByRunShard([...args, '--database-url', 'postgres://db.example/midi?sslmode=verify-full']),
    ).toMatchObject({
      'ssl-root-cert': files.rootCert,
      'ssl-cert': files.cert,
      'ssl-key': files.key,
    });
    expect(runShardArgs({ corpus: 'c', root: dir, pool: DEFAULT_POOL_TUNING, cap: CAP }).join(' ')).not.toContain(
      '--ssl',
    );
  });
});

describe("the runner's message to local mode", () => {
  it.each<[string, unknown, boolean]>([
    ['the message itself', ADMITTED_MESSAGE, true],
    ['the same after a trip through the IPC channel (JSON)', JSON.parse(JSON.stringify(ADMITTED_MESSAGE)), true],
    ['another mco message', { mco: 'waiting' }, false],
    ['a bare string', 'admitted', false],
    ['null', null, false],
  ])('%s', (_name, message, expected) => {
    expect(isAdmittedMessage(message)).toBe(expected);
  });
});
