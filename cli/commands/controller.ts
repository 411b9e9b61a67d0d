import { readFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { nonEmpty, wholeNumber } from '../../common/flags.js';
import { REJECTED_RETRY_MS, UNSCHEDULABLE_GRACE_MS } from '../../controller/defaults.js';

interface ControllerArgs {
  namespace: string;
  'leader-elect': boolean;
  'lease-name': string;
  'lease-namespace'?: string;
  'metrics-port': number;
  'health-port': number;
  'runner-image': string;
  'rejected-retry-seconds': number;
  'unschedulable-grace-seconds': number;
}

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function defaultImage(): string {
  const version = (
    JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
  return `ghcr.io/midi-corpus/midi-corpus-operator:${version}`;
}

/** `midi-corpus controller`: the operator itself, as run by the Deployment. */
export const controllerCommand: CommandModule<object, ControllerArgs> = {
  command: 'controller',
  describe:
    'Run the Kubernetes operator: turns MidiCorpus resources into scan and Indexed run Jobs under a connection budget',
  builder: (y) =>
    y
      .usage(
        [
          '$0 controller [options]',
          '',
          'Runs inside the cluster (in-cluster config) or against $KUBECONFIG. Environment: POD_NAME (leader-election',
          'identity) and POD_NAMESPACE (where the Lease lives), both from the Downward API in the Deployment.',
        ].join('\n'),
      )
      .option('namespace', {
        type: 'string',
        default: '',
        describe: 'Watch only this namespace (empty: all namespaces)',
      })
      .option('leader-elect', {
        type: 'boolean',
        default: true,
        describe: 'Take a Lease so that only one replica acts',
      })
      .option('lease-name', {
        type: 'string',
        default: 'midi-corpus-operator',
        describe: 'Name of the coordination.k8s.io Lease',
        coerce: nonEmpty('--lease-name'),
      })
      .option('lease-namespace', {
        type: 'string',
        describe: "Namespace of the Lease (default: $POD_NAMESPACE, else the service account's)",
      })
      // 0 asks for any free port (the tests' choice); the log line 'controller running' says which.
      .option('metrics-port', {
        default: 8080,
        describe: 'Port of /metrics (Prometheus)',
        coerce: wholeNumber('--metrics-port', { min: 0, max: 65_535 }),
      })
      .option('health-port', {
        default: 8081,
        describe: 'Port of /healthz and /readyz',
        coerce: wholeNumber('--health-port', { min: 0, max: 65_535 }),
      })
      .option('runner-image', {
        type: 'string',
        default: defaultImage(),
        describe: 'Image of scan and runner pods when a MidiCorpus names none',
        coerce: nonEmpty('--runner-image'),
      })
      .option('rejected-retry-seconds', {
        default: REJECTED_RETRY_MS / 1000,
        describe:
          'How soon a Job the API server refused for good (400, 403, 404, 422) is tried again with the same spec; a changed spec is tried at once',
        coerce: wholeNumber('--rejected-retry-seconds', { min: 0 }),
      })
      .option('unschedulable-grace-seconds', {
        default: UNSCHEDULABLE_GRACE_MS / 1000,
        describe:
          'How long a scan or runner pod may be unschedulable (a cluster autoscaler adding a node) before the corpus reports it',
        coerce: wholeNumber('--unschedulable-grace-seconds', { min: 0 }),
      }),
  handler: async (args) => {
    // The Kubernetes client alone takes most of a second to load: only the controller loads it, once its flags are good.
    const [{ KubeConfig }, { createLogger }, { createController }] = await Promise.all([
      import('@kubernetes/client-node'),
      import('../../common/log.js'),
      import('../../controller/wiring.js'),
    ]);
    const log = createLogger({ base: { component: 'controller' } });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault(); // in-cluster when running in a pod, else $KUBECONFIG or ~/.kube/config
    const identity = process.env.POD_NAME || `${process.env.HOSTNAME ?? 'controller'}-${process.pid}`;
    const leaseNamespace =
      args['lease-namespace'] ?? process.env.POD_NAMESPACE ?? readServiceAccountNamespace() ?? 'default';
    const controller = createController({
      kubeConfig,
      namespace: args.namespace,
      leaderElect: args['leader-elect'],
      leaseName: args['lease-name'],
      leaseNamespace,
      identity,
      metricsPort: args['metrics-port'],
      healthPort: args['health-port'],
      runnerImage: args['runner-image'],
      rejectedRetryMs: args['rejected-retry-seconds'] * 1000,
      unschedulableGraceMs: args['unschedulable-grace-seconds'] * 1000,
      log,
      onLostLeadership: () => {
        log.error('lost leadership: exiting so that no stale replica acts');
        process.exit(1);
      },
    });
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      controller.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err: String(err) }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    const ports = await controller.start();
    log.info(
      { identity, namespace: args.namespace || '(all)', leaseNamespace, leaderElect: args['leader-elect'], ...ports },
      'controller running',
    );
  },
};

function readServiceAccountNamespace(): string | undefined {
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
