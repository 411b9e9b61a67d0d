import type { CommandModule } from 'yargs';
import { wholeNumber, writableDirectory } from '../../common/flags.js';
import { EXIT_OK, EXIT_USAGE } from '../../contract/exit-codes.js';

interface GenerateSampleArgs {
  dir: string;
  files: number;
  seed: number;
  bad: boolean;
  json: boolean;
}

/**
 * `midi-corpus generate-sample <dir>`: writes a seeded synthetic corpus (the same seed gives the same bytes), for
 * trying local mode, for tests and for benchmarks. Good files go under major/ and minor/, named after their key;
 * with --bad, one file per bad-input kind goes under bad/.
 */
export const generateSampleCommand: CommandModule<object, GenerateSampleArgs> = {
  command: 'generate-sample <dir>',
  describe: 'Write a synthetic MIDI corpus (seeded; --bad adds one file per bad-input kind)',
  builder: (y) =>
    y
      .positional('dir', {
        type: 'string',
        demandOption: true,
        describe: 'Directory to write into (created if missing)',
        coerce: writableDirectory('<dir>'),
      })
      .option('files', { default: 30, describe: 'Number of good files', coerce: wholeNumber('--files', { min: 0 }) })
      .option('seed', { default: 1, describe: 'Seed of the generator', coerce: wholeNumber('--seed', { min: 0 }) })
      .option('bad', { type: 'boolean', default: false, describe: 'Also write the bad-input files under bad/' })
      .option('json', { type: 'boolean', default: false, describe: 'Print a JSON summary as the last stdout line' }),
  handler: async (args) => {
    process.exitCode = await runGenerateSample(args);
  },
};

async function runGenerateSample(args: GenerateSampleArgs): Promise<number> {
  const [{ createLogger }, { writeSampleCorpus }] = await Promise.all([
    import('../../common/log.js'),
    import('../../job-runner/synth/sample.js'),
  ]);
  const log = createLogger({ base: { component: 'generate-sample' } });
  try {
    const summary = await writeSampleCorpus(args.dir, { files: args.files, seed: args.seed, bad: args.bad });
    log.info(summary, `wrote ${summary.files + summary.badFiles} files (${summary.bytes} bytes) under ${summary.dir}`);
    if (args.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    return EXIT_OK;
  } catch (err) {
    // An unwritable or full directory: retrying the same command cannot help.
    log.error(
      { err: err instanceof Error ? err.message : String(err) },
      `could not write the corpus under ${args.dir}`,
    );
    return EXIT_USAGE;
  }
}
