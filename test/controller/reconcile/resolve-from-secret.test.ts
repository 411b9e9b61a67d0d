import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it, vi } from 'vitest';
import { DATABASE_SECRET_LABEL, DATABASE_SECRET_LABEL_VALUE } from '../../../controller/api/v1alpha1/midicorpus.js';
import { KubeClient } from '../../../controller/kube.js';
import { resolveFromSecret, type SecretData } from '../../../controller/reconcile/database.js';
import { databaseSecret } from '../../e2e/support/database-secret.js';
import { makeCorpus } from '../fixtures.js';

// Which Secrets a MidiCorpus may use: the operator passes the Secret to the pods it creates, so only one labelled for
// the purpose is used; the refusal names the Secret and the label, never what the Secret holds.
const labelled = { [DATABASE_SECRET_LABEL]: DATABASE_SECRET_LABEL_VALUE };
const url = 'postgres://midi:hunter2@db.music.svc:5432/midi';

describe('resolveFromSecret', () => {
  const corpus = makeCorpus({ name: 'a', namespace: 'music', spec: { database: { secretRef: { name: 'db' } } } });
  const notLabelled = {
    reason: 'SecretNotLabelled',
    message:
      'Secret music/db is not labelled midi.corpus.dev/database=true: label it to let MidiCorpora use it ' +
      '(the operator passes it to the pods it creates).',
  };
  const cases: Array<{ name: string; secret: SecretData; expected: Record<string, unknown> }> = [
    {
      name: 'a labelled Secret with the URL gives the URL',
      secret: { labels: labelled, data: { url } },
      expected: { ok: true, url },
    },
    {
      name: 'a Secret without the label is refused, URL or not',
      secret: { labels: {}, data: { url } },
      expected: { ok: false, ...notLabelled },
    },
    {
      name: 'the label with another value is refused',
      secret: { labels: { [DATABASE_SECRET_LABEL]: 'false' }, data: { url } },
      expected: { ok: false, ...notLabelled },
    },
    {
      name: "an unlabelled Secret's keys are not looked at (no SecretKeyMissing that would tell what it holds)",
      secret: { labels: { app: 'other' }, data: { password: 'x' } },
      expected: { ok: false, ...notLabelled },
    },
    {
      name: 'a labelled Secret without the key says which key',
      secret: { labels: labelled, data: { password: 'x' } },
      expected: { ok: false, reason: 'SecretKeyMissing' },
    },
    {
      name: 'no Secret at all',
      secret: undefined,
      expected: { ok: false, reason: 'SecretNotFound' },
    },
  ];
  it.each(cases)('$name', ({ secret, expected }) => {
    const r = resolveFromSecret(corpus, secret);
    expect(r).toMatchObject(expected);
    expect(JSON.stringify(r.ok ? {} : r)).not.toContain('hunter2');
  });
});

describe('resolveFromSecret with spec.database.tls', () => {
  const CA = '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----';
  const tlsCorpus = (tls: Record<string, unknown> = {}) =>
    makeCorpus({
      name: 'a',
      namespace: 'music',
      spec: { database: { secretRef: { name: 'db' }, tls: { secretRef: { name: 'db-ca' }, caKey: 'ca.crt', ...tls } } },
    });
  const dbSecret = (u: string): SecretData => ({ labels: labelled, data: { url: u } });
  const full = `${url}?sslmode=verify-full`;

  it("gives the CA (the Secret's ca.crt by default) beside the URL, named by where it came from", () => {
    expect(resolveFromSecret(tlsCorpus(), dbSecret(full), { labels: labelled, data: { 'ca.crt': CA } })).toEqual({
      ok: true,
      url: full,
      budgetKey: expect.any(String),
      tls: { ca: CA, caSource: 'Secret music/db-ca key ca.crt' },
    });
  });

  it('gives the client certificate and key when the spec names them', () => {
    const r = resolveFromSecret(tlsCorpus({ certKey: 'tls.crt', keyKey: 'tls.key' }), dbSecret(full), {
      labels: labelled,
      data: { 'ca.crt': CA, 'tls.crt': 'C', 'tls.key': 'K' },
    });
    expect(r).toMatchObject({ ok: true, tls: { ca: CA, cert: 'C', key: 'K' } });
  });

  const refused: Array<{ name: string; url: string; tlsSecret: SecretData; expected: Record<string, unknown> }> = [
    {
      name: 'an unlabelled CA Secret, like an unlabelled database Secret',
      url: full,
      tlsSecret: { labels: {}, data: { 'ca.crt': CA } },
      expected: { reason: 'SecretNotLabelled', message: expect.stringContaining('Secret music/db-ca is not labelled') },
    },
    {
      name: 'no CA Secret',
      url: full,
      tlsSecret: undefined,
      expected: { reason: 'SecretNotFound', message: 'Secret music/db-ca not found.' },
    },
    {
      name: 'a CA Secret without the key',
      url: full,
      tlsSecret: { labels: labelled, data: { other: CA } },
      expected: { reason: 'SecretKeyMissing', message: 'Secret music/db-ca has no key "ca.crt".' },
    },
    {
      name: 'a URL naming certificate files, which the pods do not have',
      url: `${full}&sslrootcert=/etc/ssl/ca.pem`,
      tlsSecret: { labels: labelled, data: { 'ca.crt': CA } },
      expected: { reason: 'InvalidDatabaseUrl', message: expect.stringContaining('names certificate files') },
    },
    {
      name: 'sslmode=prefer',
      url: `${url}?sslmode=prefer`,
      tlsSecret: { labels: labelled, data: { 'ca.crt': CA } },
      expected: { reason: 'InvalidDatabaseUrl', message: expect.stringContaining('sslmode=prefer is not supported') },
    },
  ];
  it.each(refused)('refuses $name', ({ url: u, tlsSecret, expected }) => {
    const r = resolveFromSecret(tlsCorpus(), dbSecret(u), tlsSecret);
    expect(r).toMatchObject({ ok: false, ...expected });
    expect(JSON.stringify(r)).not.toContain('hunter2');
  });

  it('refuses verify-full without spec.database.tls, saying where the CA goes', () => {
    const r = resolveFromSecret(
      makeCorpus({ name: 'a', namespace: 'music', spec: { database: { secretRef: { name: 'db' } } } }),
      dbSecret(full),
    );
    expect(r).toMatchObject({
      ok: false,
      reason: 'InvalidDatabaseUrl',
      message: expect.stringContaining(
        "sslmode=verify-full needs the CA that signed the server's certificate: give it as spec.database.tls",
      ),
    });
  });
});

describe("the e2e tests' database Secret", () => {
  // Every e2e corpus names one: were it refused, every e2e test would end Invalid instead of ingesting.
  const corpus = makeCorpus({ name: 'a', namespace: 'e2e', spec: { database: { secretRef: { name: 'db' } } } });
  const asRead = (o?: { labelled?: boolean }) => {
    const s = databaseSecret('db', url, o);
    return { labels: s.metadata?.labels ?? {}, data: s.stringData ?? {} };
  };
  it('is labelled, so the operator uses it', () => {
    expect(resolveFromSecret(corpus, asRead())).toMatchObject({ ok: true, url });
  });
  it('without the label, as a test of the refusal asks, is refused', () => {
    expect(resolveFromSecret(corpus, asRead({ labelled: false }))).toMatchObject({ reason: 'SecretNotLabelled' });
  });
});

describe('KubeClient.readSecret', () => {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const watching = (namespace: string) => {
    const kube = new KubeClient({ kubeConfig, namespace, identity: 'test' });
    const read = vi.spyOn(kube.core, 'readNamespacedSecret').mockResolvedValue({
      metadata: { name: 'db', labels: labelled },
      data: { url: Buffer.from(url).toString('base64') },
    });
    return { kube, read };
  };

  it('gives the labels with the decoded data', async () => {
    const { kube } = watching('music');
    expect(await kube.readSecret('music', 'db')).toEqual({ labels: labelled, data: { url } });
  });

  it('never reads a Secret outside the namespace it watches', async () => {
    const { kube, read } = watching('music');
    await expect(kube.readSecret('kube-system', 'db')).rejects.toThrow(
      'refusing to read Secret kube-system/db: the controller watches namespace music only',
    );
    expect(read).not.toHaveBeenCalled();
  });

  it('reads in any namespace when it watches all of them', async () => {
    const { kube, read } = watching('');
    await kube.readSecret('team-a', 'db');
    expect(read).toHaveBeenCalledWith({ name: 'db', namespace: 'team-a' });
  });
});
