import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { migrateCommand } from '../../../cli/commands/migrate.js';
import { freePort } from '../../../job-runner/db/embedded.js';
import { MIGRATIONS } from '../../../job-runner/db/migrations.js';
import { startTestPostgres, type TestPostgres } from '../../support/postgres.js';

/** `midi-corpus migrate` through its yargs handler, as main.ts calls it: the exit codes of contract/exit-codes.ts. */
describe('midi-corpus migrate', () => {
  let db: TestPostgres;
  beforeAll(async () => {
    process.env.LOG_LEVEL = 'silent';
    db = await startTestPostgres();
  });
  afterAll(async () => db?.destroy());
  afterEach(() => {
    process.exitCode = undefined;
  });

  async function run(args: {
    'database-url'?: string;
    'wait-seconds'?: number;
  }): Promise<number | string | null | undefined> {
    const url = args['database-url'];
    const wait = args['wait-seconds'] ?? 60;
    await migrateCommand.handler({
      _: ['migrate'],
      $0: 'midi-corpus',
      'database-url': url,
      databaseUrl: url,
      'wait-seconds': wait,
      waitSeconds: wait,
      contract: false,
    });
    return process.exitCode;
  }

  it('migrates a fresh database and exits 0, twice', async () => {
    const url = await db.createDatabase();
    expect(await run({ 'database-url': url })).toBe(0);
    expect(await run({ 'database-url': url })).toBe(0);
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query(
      'SELECT version FROM midi.schema_migrations UNION ALL SELECT version FROM midi.schema_steps ORDER BY version',
    );
    await client.end();
    expect(rows.map((r: { version: number }) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
  });

  it('exits 75 (retry me) when the database stays unreachable', async () => {
    const port = await freePort();
    expect(await run({ 'database-url': `postgres://postgres:x@127.0.0.1:${port}/none`, 'wait-seconds': 0.3 })).toBe(75);
  });

  it('exits 64 when the database does not exist: retrying cannot help', async () => {
    const u = new URL(db.url);
    u.pathname = '/no_such_database';
    expect(await run({ 'database-url': u.toString() })).toBe(64);
  });

  it('exits 64 without any database URL', async () => {
    const saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      expect(await run({})).toBe(64);
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved;
    }
  });

  it('exits 75 at once on SIGTERM, as a pod being deleted must (the built CLI, a real process)', async () => {
    // A database that never answers keeps migrate waiting for up to 60 s; SIGTERM must end that wait now.
    const port = await freePort();
    const child = spawn(process.execPath, ['dist/cli/main.js', 'migrate', '--wait-seconds', '60'], {
      env: { ...process.env, DATABASE_URL: `postgres://postgres:x@127.0.0.1:${port}/none`, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    // Signalled once it is waiting (its first retry logged), not after a fixed sleep: a loaded machine can take
    // seconds to load the CLI, and a SIGTERM before the handler is installed would prove nothing.
    let stderr = '';
    await new Promise<void>((resolve) =>
      child.stderr!.on('data', (c: Buffer) => {
        stderr += c.toString();
        if (stderr.includes('database not reachable yet; retrying')) resolve();
      }),
    );
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(75);
  });
});
