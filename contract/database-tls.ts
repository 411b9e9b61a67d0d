import { PermanentError } from './error-kinds.js';

/**
 * TLS to the database, with libpq's meaning, for every connection the project opens (the runner's pool and its
 * admission probe, scan, migrate, local mode, the results commands, the controller): one place that reads `sslmode`
 * and its companions from the URL and builds pg's `ssl` option from them.
 *
 * Why not leave it to node-postgres: pg-connection-string 2.x reads `sslmode=require` as verify-full (unless
 * `uselibpqcompat=true`), and it reads sslrootcert/sslcert/sslkey as files itself, at every connect, with the parsed
 * URL overriding any `ssl` option given beside it. So the URL handed to pg never carries these parameters: they are
 * taken out here, and `ssl` is built from them and from certificates the caller has in hand (files the runner read, a
 * Secret the controller read through the API).
 *
 * The modes, as libpq has them:
 * - disable: no TLS. Also what a URL without sslmode gets (node-postgres' default; libpq's is prefer, see below).
 * - require: encrypted, the server not verified; but, as in libpq, given a root certificate it verifies the chain
 *   like verify-ca (a CA given and then ignored would be a trap).
 * - verify-ca: the server's certificate must chain to the given CA; the host name is not checked.
 * - verify-full: the chain and the host name (the URL's host must be in the certificate's names).
 * - prefer and allow are refused: both fall back to an unencrypted connection without a word, and neither verifies
 *   anything, so they protect from nothing but a passive listener while looking like TLS in the spec. Say require if
 *   encryption is wanted, disable if not.
 * `sslrootcert=system` (libpq 16) trusts the system's CAs (Node's bundled list) and, as in libpq, demands
 * verify-full: a public CA signs certificates for anyone's host, so only the host name check means anything.
 * verify-ca and verify-full need a CA: libpq would look in ~/.postgresql/root.crt; here it must be named.
 */

export const SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** Parameters read here and never passed to pg (which would act on them itself). */
const TLS_PARAMETERS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'sslpassword', 'ssl', 'uselibpqcompat'];

/** The database's TLS settings are not usable as given: retrying cannot help. The message names no secret. */
export class TlsConfigurationError extends PermanentError {
  override readonly name = 'TlsConfigurationError';
}

/** The TLS handshake (or the server's answer to the request for it) refused the connection, for a stated cause. */
export class TlsRefusedError extends PermanentError {
  override readonly name = 'TlsRefusedError';
}

/** What a URL says about TLS. */
export interface UrlTls {
  /** The URL without its TLS parameters: what pg is given. A secret like the URL itself. */
  url: string;
  mode: SslMode;
  /** sslrootcert/sslcert/sslkey as paths (libpq's meaning); `system` is not a path, see `systemRoots`. */
  files: TlsFiles;
  /** sslrootcert=system: the system's CAs. */
  systemRoots: boolean;
  /** sslpassword: the client key's passphrase. */
  passphrase?: string;
  /** The host name the URL connects to, which verify-full checks and messages name. */
  host: string;
}

export interface TlsFiles {
  rootCert?: string;
  cert?: string;
  key?: string;
}

/** Certificates in hand (PEM text), from files or a Secret. */
export interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
  /** Where the CA came from, for messages: a file path, or `Secret ns/name key ca.crt`. Never its content. */
  caSource?: string;
}

/** What a refusal is explained with. */
export interface TlsContext {
  mode: SslMode;
  host: string;
  caSource?: string;
}

/** What pg is given: `connectionString` without TLS parameters and the `ssl` option built for them. */
export interface PgTlsOptions {
  connectionString: string;
  ssl: false | PgSsl;
  tls: TlsContext;
}

/** The subset of tls.ConnectionOptions that this module sets. */
export interface PgSsl {
  rejectUnauthorized: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  passphrase?: string;
  checkServerIdentity?: () => undefined;
}

/** The TLS parameters of a database URL. Throws TlsConfigurationError for a mode or a combination it cannot honour. */
export function readUrlTls(url: string): UrlTls {
  const u = new URL(url);
  const p = u.searchParams;
  const given = p.get('sslmode');
  if (p.has('ssl'))
    throw new TlsConfigurationError(
      "the database URL has node-postgres' own ssl parameter: say sslmode=disable, require, verify-ca or verify-full " +
        'instead (libpq names, which this project honours with libpq meaning)',
    );
  if (given === 'prefer' || given === 'allow')
    throw new TlsConfigurationError(
      `sslmode=${given} is not supported: it falls back to an unencrypted connection without a word and verifies ` +
        'nothing; say sslmode=require for an encrypted connection (verify-full to check the server too) or disable',
    );
  if (given !== null && !(SSL_MODES as readonly string[]).includes(given))
    throw new TlsConfigurationError(
      `sslmode=${given.slice(0, 20)} is not one of ${SSL_MODES.join(', ')} (the database URL's other parts not shown)`,
    );
  const rootCert = p.get('sslrootcert') ?? undefined;
  const files: TlsFiles = {
    ...(rootCert !== undefined && rootCert !== 'system' ? { rootCert } : {}),
    ...(p.has('sslcert') ? { cert: p.get('sslcert')! } : {}),
    ...(p.has('sslkey') ? { key: p.get('sslkey')! } : {}),
  };
  const systemRoots = rootCert === 'system';
  if (given === null && (rootCert !== undefined || files.cert !== undefined))
    throw new TlsConfigurationError(
      'the database URL names certificates but no sslmode: say which (verify-full checks the server and its name)',
    );
  const mode: SslMode = (given as SslMode | null) ?? 'disable';
  if (systemRoots && mode !== 'verify-full')
    throw new TlsConfigurationError(
      `sslrootcert=system needs sslmode=verify-full, not ${mode}: a public CA signs certificates for any host, so ` +
        'only the host name check makes it mean something',
    );
  const passphrase = p.get('sslpassword') ?? undefined;
  for (const name of TLS_PARAMETERS) p.delete(name);
  return {
    url: u.toString(),
    mode,
    files,
    systemRoots,
    ...(passphrase !== undefined ? { passphrase } : {}),
    host: (u.hostname || p.get('host') || '').replace(/^\[(.+)\]$/, '$1'),
  };
}

/**
 * The URL with certificate files given apart from it (--ssl-root-cert and its siblings, the controller's mounted
 * Secret) put in as libpq's parameters, which then travel with it (to local mode's runners, through the admission's
 * ledger URL). A file given apart wins over one in the URL.
 */
export function withTlsFiles(url: string, files: TlsFiles): string {
  if (files.rootCert === undefined && files.cert === undefined && files.key === undefined) return url;
  const u = new URL(url);
  if (files.rootCert !== undefined) u.searchParams.set('sslrootcert', files.rootCert);
  if (files.cert !== undefined) u.searchParams.set('sslcert', files.cert);
  if (files.key !== undefined) u.searchParams.set('sslkey', files.key);
  return u.toString();
}

/** pg's options for `url` with `material` (the certificates its TLS parameters name, or given apart). */
export function pgTlsOptions(url: string, material: TlsMaterial = {}): PgTlsOptions {
  const t = readUrlTls(url);
  const tls: TlsContext = {
    mode: t.mode,
    host: t.host,
    ...(material.caSource !== undefined ? { caSource: material.caSource } : {}),
  };
  return { connectionString: t.url, ssl: sslOption(t, material), tls };
}

function sslOption(t: UrlTls, m: TlsMaterial): false | PgSsl {
  if (t.mode === 'disable') return false;
  if ((m.cert === undefined) !== (m.key === undefined))
    throw new TlsConfigurationError(
      'a client certificate needs its key and a key its certificate: give both or neither',
    );
  const client = {
    ...(m.cert !== undefined ? { cert: m.cert, key: m.key! } : {}),
    ...(t.passphrase !== undefined ? { passphrase: t.passphrase } : {}),
  };
  const hasCa = m.ca !== undefined || t.systemRoots;
  if (t.mode === 'require' && !hasCa) return { rejectUnauthorized: false, ...client };
  if (!hasCa)
    throw new TlsConfigurationError(
      `sslmode=${t.mode} needs the CA that signed the server's certificate: give it as sslrootcert (a file), ` +
        '--ssl-root-cert, spec.database.tls, or sslrootcert=system for the system CAs (verify-full only)',
    );
  const chainOnly = t.mode !== 'verify-full' ? { checkServerIdentity: () => undefined } : {};
  return { rejectUnauthorized: true, ...(m.ca !== undefined ? { ca: m.ca } : {}), ...chainOnly, ...client };
}

/** Node's codes for a chain that does not lead to a trusted CA. */
const UNTRUSTED_CHAIN = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/** pg's messages (pg 8.x, lib/connection.js) for a server that answers the request for TLS with no. */
const NO_TLS_MESSAGES = ['The server does not support SSL connections'];

/**
 * A TLS failure of a connect as a TlsRefusedError naming its cause in one secret-free line, or undefined when `err` is
 * not one. The certificate's names are shown (they are public: any client is sent them), the CA by where it came from.
 */
export function tlsRefusal(err: unknown, tls: TlsContext): TlsRefusedError | undefined {
  if (err instanceof TlsRefusedError) return err;
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  const ca = tls.caSource !== undefined ? `the CA in ${tls.caSource}` : 'the system CAs';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const names = (err as { cert?: { subjectaltname?: unknown } }).cert?.subjectaltname;
    const is = typeof names === 'string' && names !== '' ? ` (it is for ${names.slice(0, 200)})` : '';
    return new TlsRefusedError(`the server's certificate is not for host ${tls.host}${is}; sslmode=verify-full`, {
      cause: err,
    });
  }
  if (typeof code === 'string' && UNTRUSTED_CHAIN.has(code))
    return new TlsRefusedError(`the server's certificate is not signed by ${ca} (${code}); sslmode=${tls.mode}`, {
      cause: err,
    });
  if (typeof code === 'string' && EXPIRED.has(code))
    return new TlsRefusedError(`the server's certificate is out of its validity period (${code})`, { cause: err });
  if (NO_TLS_MESSAGES.includes(err.message))
    return new TlsRefusedError(
      `the server does not accept TLS (sslmode=${tls.mode}); enable ssl on the server, or say sslmode=disable`,
      { cause: err },
    );
  return undefined;
}

/** Whether an error, raw or explained, is a TLS refusal: a configuration problem that a retry cannot fix. */
export function isTlsRefusal(err: unknown): boolean {
  return tlsRefusal(err, { mode: 'require', host: '' }) !== undefined;
}
