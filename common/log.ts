import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Fields that may carry a secret. pino replaces them wherever they appear in a log object, so a careless
 * `log.info({ config })` cannot print a database URL or a token.
 */
const REDACT_PATHS = [
  'databaseUrl',
  '*.databaseUrl',
  'connectionString',
  '*.connectionString',
  'password',
  '*.password',
  'token',
  '*.token',
  'DATABASE_URL',
  '*.DATABASE_URL',
  'env.DATABASE_URL',
];

export interface LoggerOptions {
  level?: string;
  /** Pretty, human output. Defaults to true when stderr is a terminal. */
  pretty?: boolean;
  /** Static fields on every line (component, corpus, shard...). */
  base?: Record<string, unknown>;
}

/** The one logger factory: JSON lines on stderr by default, pretty on a TTY. stdout stays free for `--json` output. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  const common = { level, base: options.base ?? {}, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  if (pretty) {
    return pino({
      ...common,
      transport: {
        target: 'pino-pretty',
        options: { destination: 2, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  return pino(common, pino.destination({ dest: 2, sync: true }));
}
