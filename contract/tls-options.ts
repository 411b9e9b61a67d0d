import type { Options } from 'yargs';
import { FlagError, readableFile } from '../common/flags.js';
import { pgTlsOptions, TlsConfigurationError, withTlsFiles, type TlsFiles } from './database-tls.js';

/**
 * The certificate files of a TLS connection to the database on a command line, with libpq's names: every command that
 * takes --database-url takes these, and the controller passes them to its scan and runner pods, pointing into the
 * Secret it mounts (controller/plan/desired-jobs.ts). They are paths, never certificates: the environment and the
 * command line carry no key. What they mean with each sslmode is contract/database-tls.ts's.
 */
export const TLS_OPTIONS = {
  'ssl-root-cert': {
    type: 'string',
    coerce: readableFile('--ssl-root-cert'),
    describe: "CA certificate (PEM) the server's must chain to; as libpq's sslrootcert",
  },
  'ssl-cert': {
    type: 'string',
    coerce: readableFile('--ssl-cert'),
    describe: 'Client certificate (PEM), for a server that asks for one; as libpq sslcert',
  },
  'ssl-key': {
    type: 'string',
    coerce: readableFile('--ssl-key'),
    describe: "The client certificate's private key (PEM); as libpq sslkey",
  },
} as const satisfies Record<string, Options>;

export interface TlsArgs {
  'ssl-root-cert'?: string;
  'ssl-cert'?: string;
  'ssl-key'?: string;
}

export function tlsFilesFrom(args: TlsArgs): TlsFiles {
  return {
    ...(args['ssl-root-cert'] !== undefined ? { rootCert: args['ssl-root-cert'] } : {}),
    ...(args['ssl-cert'] !== undefined ? { cert: args['ssl-cert'] } : {}),
    ...(args['ssl-key'] !== undefined ? { key: args['ssl-key'] } : {}),
  };
}

/** The inverse of tlsFilesFrom: the flags that name `files`. */
export function tlsFlags(files: TlsFiles): string[] {
  return [
    ...(files.rootCert !== undefined ? ['--ssl-root-cert', files.rootCert] : []),
    ...(files.cert !== undefined ? ['--ssl-cert', files.cert] : []),
    ...(files.key !== undefined ? ['--ssl-key', files.key] : []),
  ];
}

/**
 * For `.check()`, after checkDatabaseUrl: the TLS settings of the database (--database-url or DATABASE_URL) with the
 * files given by flag can be honoured (no sslmode=prefer, a CA for verify-full, a key beside a certificate), so a
 * command refuses them in one line, exit 64, before it starts anything. No database named (local mode's embedded
 * one): nothing to check.
 */
export function checkDatabaseTls(url: string | undefined, args: TlsArgs): true {
  if (url === undefined || url === '') return true;
  const files = tlsFilesFrom(args);
  try {
    // The certificates are not read here (the flags' coercers checked they are readable): a stand-in for each file
    // named is enough to check what the mode asks for.
    const withFiles = new URL(withTlsFiles(url, files)).searchParams;
    pgTlsOptions(withTlsFiles(url, files), {
      ...(withFiles.has('sslrootcert') && withFiles.get('sslrootcert') !== 'system' ? { ca: '' } : {}),
      ...(withFiles.has('sslcert') ? { cert: '' } : {}),
      ...(withFiles.has('sslkey') ? { key: '' } : {}),
    });
  } catch (err) {
    if (err instanceof TlsConfigurationError) throw new FlagError(`the database's TLS settings: ${err.message}`);
    throw err;
  }
  return true;
}
