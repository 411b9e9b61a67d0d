import { readFileSync } from 'node:fs';
import { pgTlsOptions, readUrlTls, TlsConfigurationError, type PgTlsOptions } from '../../contract/database-tls.js';

/**
 * pg's connection options for a database URL on this machine or in a runner pod: the certificate files its TLS
 * parameters name (libpq's sslrootcert, sslcert, sslkey: given in the URL, by --ssl-root-cert and its siblings, or
 * the controller's mounted Secret) are read here, then contract/database-tls.ts builds `ssl`. Every connection the
 * runner, the commands and local mode open goes through it. Read at each call: a Secret's files are replaced in place
 * when it is rotated.
 */
export function databaseConnection(url: string): PgTlsOptions {
  const { files } = readUrlTls(url);
  return pgTlsOptions(url, {
    ...(files.rootCert !== undefined ? { ca: readPem('sslrootcert', files.rootCert), caSource: files.rootCert } : {}),
    ...(files.cert !== undefined ? { cert: readPem('sslcert', files.cert) } : {}),
    ...(files.key !== undefined ? { key: readPem('sslkey', files.key) } : {}),
  });
}

function readPem(what: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const why = code === 'ENOENT' ? 'not found' : code === 'EACCES' ? 'permission denied' : String(code ?? err);
    throw new TlsConfigurationError(`cannot read the ${what} file ${file}: ${why}`);
  }
}
