/**
 * The production wiring of the controller: the one place that builds its collaborators on a KubeConfig (informers
 * that watch the API server, the API client that writes, Postgres for the databases, a Lease, the HTTP ports, the
 * real clock). `midi-corpus controller` calls it; tests build a Controller with fakes instead.
 */
import { CoordinationV1Api, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { realClock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import { Controller, type InformerFactory } from './controller.js';
import { CHILD_SELECTOR } from './plan/names.js';
import { PostgresDatabaseAccess } from './reconcile/database.js';
import { startHttp } from './runtime/http.js';
import { RestartingInformer } from './runtime/informer.js';
import { KubeClient } from './kube.js';
import { LeaderElector } from './runtime/leader-election.js';

export interface ControllerConfig {
  kubeConfig: KubeConfig;
  /** Watch one namespace; empty: all. */
  namespace: string;
  leaderElect: boolean;
  leaseName: string;
  leaseNamespace: string;
  /** Leader-election identity and Events' reportingInstance: the pod name. */
  identity: string;
  metricsPort: number;
  healthPort: number;
  /** Runner image for corpora that do not name one. */
  runnerImage: string;
  log: Logger;
  /** Called when leadership is lost: the process must stop acting at once (the CLI exits). */
  onLostLeadership: () => void;
  /** How soon a write the API server refused for good is tried again with the same spec. */
  rejectedRetryMs?: number;
  /** How long a pod may be unschedulable before the corpus says so. */
  unschedulableGraceMs?: number;
}

export function createController(config: ControllerConfig): Controller {
  const { kubeConfig, log } = config;
  const kube = new KubeClient({ kubeConfig, namespace: config.namespace, identity: config.identity });
  const informer =
    <T extends KubernetesObject>(
      name: string,
      source: KubeClient['jobs' | 'pods' | 'corpora'],
      labelSelector: string | undefined,
    ): InformerFactory<T> =>
    (handlers) =>
      new RestartingInformer<T>({
        name,
        kubeConfig,
        path: source.path(),
        list: source.list as () => Promise<never>,
        labelSelector,
        ...handlers,
        log,
      });
  return new Controller({
    informers: {
      corpora: informer('midicorpora', kube.corpora, undefined),
      jobs: informer('jobs', kube.jobs, CHILD_SELECTOR),
      pods: informer('pods', kube.pods, CHILD_SELECTOR),
    },
    writer: kube,
    reader: kube,
    database: new PostgresDatabaseAccess({ readSecret: (ns, name) => kube.readSecret(ns, name) }),
    campaign: config.leaderElect
      ? (callbacks) =>
          new LeaderElector({
            api: kubeConfig.makeApiClient(CoordinationV1Api),
            namespace: config.leaseNamespace,
            name: config.leaseName,
            identity: config.identity,
            ...callbacks,
            log,
          })
      : undefined,
    serve: (o) => startHttp({ healthPort: config.healthPort, metricsPort: config.metricsPort, ...o }),
    runnerImage: config.runnerImage,
    clock: realClock,
    log,
    onLostLeadership: config.onLostLeadership,
    rejectedRetryMs: config.rejectedRetryMs,
    unschedulableGraceMs: config.unschedulableGraceMs,
  });
}
