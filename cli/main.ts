#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { CommandModule } from 'yargs';
import { migrateCommand } from './commands/migrate.js';
import { generateSampleCommand } from './commands/generate-sample.js';
import { planCommand } from './commands/plan.js';
import { controllerCommand } from './commands/controller.js';
import { dbCommand } from './commands/db.js';
import { localCommand } from './commands/local.js';
import { reportCommand } from './commands/report.js';
import { runShardCommand } from './commands/run-shard.js';
import { scanCommand } from './commands/scan.js';
import { usageFailure } from './usage.js';
import { exportCommand } from './commands/export.js';
import { queryCommand } from './commands/query.js';

// One module per subcommand under cli/commands/. Add yours to this list.
const commands: CommandModule<object, never>[] = [
  migrateCommand as CommandModule<object, never>,
  planCommand as CommandModule<object, never>,
  scanCommand as CommandModule<object, never>,
  runShardCommand as CommandModule<object, never>,
  generateSampleCommand as CommandModule<object, never>,
  controllerCommand as CommandModule<object, never>,
  localCommand as CommandModule<object, never>,
  dbCommand as CommandModule<object, never>,
  reportCommand as CommandModule<object, never>,
  queryCommand as CommandModule<object, never>,
  exportCommand as CommandModule<object, never>,
];

await yargs(hideBin(process.argv))
  .scriptName('midi-corpus')
  .usage(
    '$0 <command> [options]\n\nIngests MIDI corpora into PostgreSQL: locally, or on Kubernetes as a MidiCorpus resource.',
  )
  .command(commands as CommandModule[])
  .demandCommand(1, 'Name a command; `midi-corpus --help` lists them.')
  .strict()
  .recommendCommands()
  // Every usage error, of every command: one line naming the flag, exit 64 (cli/usage.ts).
  .fail(usageFailure(commands.map((c) => String(c.command))))
  .wrap(Math.min(110, process.stdout.columns ?? 110))
  .help()
  .alias('help', 'h')
  .version()
  .parseAsync();
