import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { checkDatabaseUrl, databaseUrl, nonEmpty, readableDirectory, wholeNumber } from '../../common/flags.js';
import { DEFAULT_INCLUDE } from '../../job-runner/runner/list.js';
import { CAP_OPTIONS, capSettingsFrom, type CapArgs } from '../../contract/cap-options.js';
import { checkDatabaseTls, TLS_OPTIONS, tlsFilesFrom, type TlsArgs } from '../../contract/tls-options.js';

interface ScanArgs extends CapArgs, TlsArgs {
  corpus: string;
  root: string;
  include?: string[];
  'files-per-shard'?: number;
  shards?: number;
  'termination-log'?: string;
  json: boolean;
  'database-url'?: string;
}

/** `midi-corpus scan`: lists a corpus and records its files with their shard numbers (one connection). */
export const scanCommand: CommandModule<object, ScanArgs> = {
  command: 'scan',
  describe: 'List a corpus directory and record every file with its shard number in Postgres (COPY)',
  builder: (y) =>
    y
      .option('corpus', {
        type: 'string',
        demandOption: true,
        describe: 'Corpus key in the database',
        coerce: nonEmpty('--corpus'),
      })
      .option('root', {
        type: 'string',
        demandOption: true,
        describe: 'Corpus directory',
        coerce: readableDirectory('--root'),
      })
      .option('include', {
        type: 'string',
        array: true,
        describe: `Globs of files to include, relative to the root (default ${DEFAULT_INCLUDE.join(' ')})`,
      })
      .option('files-per-shard', { describe: 'Files per shard', coerce: wholeNumber('--files-per-shard', { min: 1 }) })
      .option('shards', {
        describe: 'Number of shards instead of --files-per-shard',
        coerce: wholeNumber('--shards', { min: 1 }),
      })
      .conflicts('files-per-shard', 'shards')
      .option('termination-log', {
        type: 'string',
        coerce: nonEmpty('--termination-log'),
        describe: 'Also write the JSON summary here (Kubernetes: /dev/termination-log)',
      })
      .option('json', { type: 'boolean', default: false, describe: 'Print the JSON summary as the last stdout line' })
      .option('database-url', {
        type: 'string',
        describe: 'PostgreSQL URL (default: env DATABASE_URL)',
        coerce: databaseUrl('--database-url'),
      })
      .options(CAP_OPTIONS)
      .options(TLS_OPTIONS)
      .check((a) => {
        if (a['files-per-shard'] === undefined && a.shards === undefined)
          throw new Error('give --files-per-shard or --shards');
        return (
          checkDatabaseUrl(a['database-url'], { required: true }) &&
          checkDatabaseTls(a['database-url'] ?? process.env.DATABASE_URL, a)
        );
      }),
  handler: async (args) => {
    process.exitCode = await runScan(args);
  },
};

async function runScan(args: ScanArgs): Promise<number> {
  const [{ migrate }, { scanCorpus }, { runWithOneConnection }] = await Promise.all([
    import('../../job-runner/db/migrations.js'),
    import('../../job-runner/runner/scan.js'),
    import('../one-connection.js'),
  ]);
  return runWithOneConnection(
    {
      role: 'scan',
      corpus: args.corpus,
      databaseUrl: args['database-url'],
      tlsFiles: tlsFilesFrom(args),
      cap: capSettingsFrom(args),
    },
    async (pool, log, database) => {
      await pool.use(migrate);
      const result = await pool.use((c) =>
        scanCorpus(c, {
          corpus: args.corpus,
          root: args.root,
          include: args.include,
          shards: args.shards !== undefined ? { shards: args.shards } : { filesPerShard: args['files-per-shard']! },
        }),
      );
      log.info({ database, ...result }, 'scan recorded');
      const line = JSON.stringify(result);
      if (args['termination-log']) {
        await mkdir(path.dirname(args['termination-log']), { recursive: true });
        await writeFile(args['termination-log'], line);
      }
      if (args.json) process.stdout.write(`${line}\n`);
    },
  );
}
