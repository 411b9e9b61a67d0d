import { describe, expect, it } from 'vitest';
import {
  pgTlsOptions,
  readUrlTls,
  TlsConfigurationError,
  tlsRefusal,
  withTlsFiles,
} from '../../contract/database-tls.js';
import { databaseErrorKind } from '../../job-runner/pool/errors.js';

const BASE = 'postgres://app:s3cret@db.example.com:5432/midi';
const url = (query: string) => `${BASE}?${query}`;
const CA = '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n';

describe('pgTlsOptions: the ssl option pg is given, by sslmode', () => {
  const cases: Array<{ name: string; query: string; material?: Parameters<typeof pgTlsOptions>[1]; ssl: unknown }> = [
    { name: 'no sslmode: in clear', query: '', ssl: false },
    { name: 'disable', query: 'sslmode=disable', ssl: false },
    {
      name: 'require without a CA: encrypted, not verified',
      query: 'sslmode=require',
      ssl: { rejectUnauthorized: false },
    },
    {
      name: 'require with a CA: the chain verified, the host not (as libpq)',
      query: 'sslmode=require',
      material: { ca: CA },
      ssl: { rejectUnauthorized: true, ca: CA, checkServerIdentity: expect.any(Function) },
    },
    {
      name: 'verify-ca: the chain only',
      query: 'sslmode=verify-ca',
      material: { ca: CA },
      ssl: { rejectUnauthorized: true, ca: CA, checkServerIdentity: expect.any(Function) },
    },
    {
      name: "verify-full: the chain and the host name (Node's own check)",
      query: 'sslmode=verify-full',
      material: { ca: CA },
      ssl: { rejectUnauthorized: true, ca: CA },
    },
    {
      name: "sslrootcert=system: verify-full against Node's CAs",
      query: 'sslmode=verify-full&sslrootcert=system',
      ssl: { rejectUnauthorized: true },
    },
    {
      name: 'a client certificate with its key and passphrase',
      query: 'sslmode=verify-full&sslpassword=pw',
      material: { ca: CA, cert: 'C', key: 'K' },
      ssl: { rejectUnauthorized: true, ca: CA, cert: 'C', key: 'K', passphrase: 'pw' },
    },
  ];
  it.each(cases)('$name', ({ query, material, ssl }) => {
    expect(pgTlsOptions(url(query), material).ssl).toEqual(ssl);
  });

  it('verify-ca accepts any host name: its identity check says yes', () => {
    const ssl = pgTlsOptions(url('sslmode=verify-ca'), { ca: CA }).ssl;
    expect(ssl && ssl.checkServerIdentity?.()).toBeUndefined();
  });

  it('hands pg a URL without the TLS parameters, which pg-connection-string would act on by itself', () => {
    const o = pgTlsOptions(
      url('sslmode=verify-full&sslrootcert=/ca.crt&sslcert=/c&sslkey=/k&sslpassword=pw&application_name=x'),
      { ca: CA, cert: 'C', key: 'K' },
    );
    expect(o.connectionString).toBe(`${BASE}?application_name=x`);
    expect(o.tls).toEqual({ mode: 'verify-full', host: 'db.example.com' });
  });
});

describe('what cannot be honoured is refused in one line, with no secret', () => {
  const refused: Array<[string, string, RegExp]> = [
    ['prefer', 'sslmode=prefer', /sslmode=prefer is not supported: it falls back to an unencrypted connection/],
    ['allow', 'sslmode=allow', /sslmode=allow is not supported/],
    ['an unknown mode', 'sslmode=strict', /sslmode=strict is not one of disable, require, verify-ca, verify-full/],
    ["node-postgres' ssl parameter", 'ssl=true', /node-postgres' own ssl parameter: say sslmode=/],
    ['certificates without a mode', 'sslrootcert=/ca.crt', /names certificates but no sslmode/],
    ['system CAs under require', 'sslmode=require&sslrootcert=system', /sslrootcert=system needs sslmode=verify-full/],
    ['verify-full without a CA', 'sslmode=verify-full', /sslmode=verify-full needs the CA/],
    ['verify-ca without a CA', 'sslmode=verify-ca', /sslmode=verify-ca needs the CA/],
  ];
  it.each(refused)('%s', (_name, query, message) => {
    const err = (() => {
      try {
        pgTlsOptions(url(query));
      } catch (e) {
        return e as Error;
      }
      throw new Error('not refused');
    })();
    expect(err).toBeInstanceOf(TlsConfigurationError);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('s3cret');
    expect(err.message).not.toContain('\n');
    expect(databaseErrorKind(err)).toBe('permanent');
  });

  it('a certificate without its key', () => {
    expect(() => pgTlsOptions(url('sslmode=require'), { cert: 'C' })).toThrow(/needs its key/);
  });
});

describe('withTlsFiles: files given by flag travel in the URL as libpq parameters', () => {
  it('puts them in, overriding the URL', () => {
    const u = withTlsFiles(url('sslmode=verify-full&sslrootcert=/old.crt'), {
      rootCert: '/new.crt',
      cert: '/c',
      key: '/k',
    });
    expect(readUrlTls(u).files).toEqual({ rootCert: '/new.crt', cert: '/c', key: '/k' });
  });
  it('leaves a URL alone when none is given', () => {
    expect(withTlsFiles(BASE, {})).toBe(BASE);
  });
});

describe('tlsRefusal: what a failed handshake says', () => {
  const tls = { mode: 'verify-full' as const, host: 'db.example.com', caSource: 'Secret ns/db-ca key ca.crt' };
  const coded = (code: string, extra: object = {}) => Object.assign(new Error(`raw ${code}`), { code }, extra);

  it('a certificate for another host names the host and what the certificate is for', () => {
    const err = tlsRefusal(
      coded('ERR_TLS_CERT_ALTNAME_INVALID', { cert: { subjectaltname: 'DNS:other.example' } }),
      tls,
    );
    expect(err?.message).toBe(
      "the server's certificate is not for host db.example.com (it is for DNS:other.example); sslmode=verify-full",
    );
  });
  it.each(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT'])(
    '%s: not signed by the CA, named by where it came from',
    (code) => {
      expect(tlsRefusal(coded(code), tls)?.message).toBe(
        `the server's certificate is not signed by the CA in Secret ns/db-ca key ca.crt (${code}); sslmode=verify-full`,
      );
    },
  );
  it('a server that answers no to TLS', () => {
    expect(
      tlsRefusal(new Error('The server does not support SSL connections'), { ...tls, mode: 'require' })?.message,
    ).toBe('the server does not accept TLS (sslmode=require); enable ssl on the server, or say sslmode=disable');
  });
  it('anything else is not a TLS refusal', () => {
    expect(tlsRefusal(coded('ECONNREFUSED'), tls)).toBeUndefined();
    expect(databaseErrorKind(coded('ECONNREFUSED'))).toBe('transient');
    // Raw, not yet explained: still a configuration error, not one to retry for ever.
    expect(databaseErrorKind(coded('SELF_SIGNED_CERT_IN_CHAIN'))).toBe('permanent');
  });
});
