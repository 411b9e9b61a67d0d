import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** File paths of the certificates and keys one test cluster uses. */
export interface ClusterPki {
  caCert: string;
  caKey: string;
  /** The API server's serving certificate: valid for the host address, 127.0.0.1, localhost, the service IP and names. */
  servingCert: string;
  servingKey: string;
  /** A client certificate in group system:masters, for the admin kubeconfig and the other components. */
  adminCert: string;
  adminKey: string;
  /** The API server's client certificate for kubelets (logs, exec): system:masters, so the kubelets' webhook allows it. */
  kubeletClientCert: string;
  kubeletClientKey: string;
  /** kube-proxy's client certificate: user system:kube-proxy, bound to system:node-proxier by the default RBAC. */
  kubeProxyCert: string;
  kubeProxyKey: string;
  /** The key pair that signs and verifies service-account tokens. */
  serviceAccountKey: string;
  serviceAccountPublicKey: string;
}

/** The in-cluster service IP of the API server: the first address of the service range the API server is given. */
export const KUBERNETES_SERVICE_IP = '10.0.0.1';
export const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Issues a certificate signed by the cluster CA with the given subject and X.509 v3 extensions. */
function issue(dir: string, name: string, subject: string, extensions: string[]): void {
  openssl(
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      subject,
    ],
    dir,
  );
  writeFileSync(path.join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      `0x${randomBytes(16).toString('hex')}`,
      '-days',
      '3650',
      '-sha256',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    ],
    dir,
  );
}

const CLIENT_EXTENSIONS = [
  'basicConstraints=CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=clientAuth',
];

/**
 * Creates a fresh CA, serving and admin certificates and a service-account key pair with the openssl CLI
 * (Node's crypto makes keys but not X.509 certificates). EC P-256 keys keep generation fast.
 */
export function createClusterPki(dir: string, hostAddress: string): ClusterPki {
  mkdirSync(dir, { recursive: true });
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '3650',
      '-subj',
      '/CN=midi-corpus-test-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ],
    dir,
  );
  issue(dir, 'apiserver', '/CN=kube-apiserver', [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=IP:${hostAddress},IP:127.0.0.1,IP:${KUBERNETES_SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,` +
      'DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local',
  ]);
  issue(dir, 'admin', '/O=system:masters/CN=kubernetes-admin', CLIENT_EXTENSIONS);
  issue(dir, 'apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client', CLIENT_EXTENSIONS);
  issue(dir, 'kube-proxy', '/CN=system:kube-proxy', CLIENT_EXTENSIONS);
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key'], dir);
  openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  const at = (f: string) => path.join(dir, f);
  return {
    caCert: at('ca.crt'),
    caKey: at('ca.key'),
    servingCert: at('apiserver.crt'),
    servingKey: at('apiserver.key'),
    adminCert: at('admin.crt'),
    adminKey: at('admin.key'),
    kubeletClientCert: at('apiserver-kubelet-client.crt'),
    kubeletClientKey: at('apiserver-kubelet-client.key'),
    kubeProxyCert: at('kube-proxy.crt'),
    kubeProxyKey: at('kube-proxy.key'),
    serviceAccountKey: at('sa.key'),
    serviceAccountPublicKey: at('sa.pub'),
  };
}

/** A node's certificates: its kubelet's client identity (Node authorizer) and its serving certificate for its IP. */
export interface NodeCerts {
  clientCert: string;
  clientKey: string;
  servingCert: string;
  servingKey: string;
}

/**
 * Issues a node's certificates into the cluster's PKI directory: `system:node:<name>` in `system:nodes` (what the
 * Node authorizer and NodeRestriction expect of a kubelet), and a serving certificate for the node's address, which
 * the API server verifies when `kubectl logs` makes it call the kubelet at its InternalIP.
 */
export function issueNodeCerts(pkiDir: string, name: string, address: string): NodeCerts {
  issue(pkiDir, `node-${name}-client`, `/O=system:nodes/CN=system:node:${name}`, CLIENT_EXTENSIONS);
  issue(pkiDir, `node-${name}-serving`, `/O=system:nodes/CN=system:node:${name}`, [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=IP:${address},DNS:${name}`,
  ]);
  const at = (f: string) => path.join(pkiDir, f);
  return {
    clientCert: at(`node-${name}-client.crt`),
    clientKey: at(`node-${name}-client.key`),
    servingCert: at(`node-${name}-serving.crt`),
    servingKey: at(`node-${name}-serving.key`),
  };
}

/** A kubeconfig with the certificates inlined, so it stays valid wherever it is copied. */
export function kubeconfig(caCert: string, server: string, user: string, cert: string, key: string): string {
  const b64 = (f: string) => readFileSync(f).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(caCert)}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    client-certificate-data: ${b64(cert)}`,
    `    client-key-data: ${b64(key)}`,
    'contexts:',
    '- name: test',
    '  context:',
    '    cluster: test',
    `    user: ${user}`,
    '    namespace: default',
    'current-context: test',
    '',
  ].join('\n');
}

export function adminKubeconfig(pki: ClusterPki, server: string): string {
  return kubeconfig(pki.caCert, server, 'admin', pki.adminCert, pki.adminKey);
}
