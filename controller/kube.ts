/**
 * The controller's only contact with the Kubernetes API: list functions and watch paths for the informers, and the
 * few writes the reconcile makes. Everything here is a thin call; the decisions are made elsewhere.
 *
 * client-node 1.4 pitfalls handled here:
 * - Typed patch calls default to Content-Type application/json-patch+json (the first type the generated code lists),
 *   so a merge-patch body is refused; the Content-Type is set explicitly with setHeaderOptions.
 * - Objects from list calls are model classes (timestamps as Date), objects from watches are raw JSON (timestamps as
 *   strings): readers of the caches must accept both (see reconcile/observe.ts toMillis).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import {
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesListObject,
  type V1Job,
  type V1Pod,
} from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type MidiCorpus } from './api/v1alpha1/midicorpus.js';
import { CHILD_SELECTOR, LABEL_CORPUS_UID } from './plan/names.js';
import type { CorpusEvent } from './plan/status.js';
import type { SecretData } from './reconcile/database.js';
import { isNotFound } from './runtime/errors.js';

/** The writes a reconcile may make (one per pass). */
export interface ClusterWriter {
  createJob(job: V1Job): Promise<V1Job>;
  /** Merge-patches spec.parallelism and spec.suspend: the only fields of a Job's spec the operator changes. */
  patchJob(namespace: string, name: string, spec: { parallelism: number; suspend: boolean }): Promise<V1Job>;
  /**
   * Deletes a Job and, in the background, its pods (each with its grace period); a Job already gone is no error. For a
   * run superseded by spec.rerun.
   */
  deleteJob(namespace: string, name: string): Promise<void>;
  /**
   * Merge-patches metadata.finalizers with the resourceVersion read (a concurrent change gives 409): the Delete
   * deletion policy's finalizer, put on and taken off. Removing the last finalizer of a corpus being deleted lets the
   * API server delete it.
   */
  setFinalizers(corpus: MidiCorpus, finalizers: string[]): Promise<void>;
  /** PUT /status with the object's resourceVersion: a concurrent change gives 409, and the reconcile runs again. */
  replaceStatus(corpus: MidiCorpus): Promise<MidiCorpus>;
  emitEvent(corpus: MidiCorpus, event: CorpusEvent): Promise<void>;
}

/**
 * What the reconcile reads past its caches: only to confirm what a stale cache must not decide alone. A pods cache
 * whose watch has stopped misses the pods created since, and ending "vanished" pods' backends on its word would end
 * live runners'.
 */
export interface ClusterReader {
  /** The pods of a corpus (its corpus-uid label), listed from the API server now. */
  corpusPods(namespace: string, corpusUid: string): Promise<V1Pod[]>;
}

export interface KubeClientOptions {
  kubeConfig: KubeConfig;
  /** Watch one namespace; empty: all namespaces. */
  namespace: string;
  /** reportingInstance of Events: the pod name. */
  identity: string;
}

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export class KubeClient implements ClusterWriter, ClusterReader {
  readonly batch: BatchV1Api;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;

  constructor(private readonly o: KubeClientOptions) {
    this.batch = o.kubeConfig.makeApiClient(BatchV1Api);
    this.core = o.kubeConfig.makeApiClient(CoreV1Api);
    this.custom = o.kubeConfig.makeApiClient(CustomObjectsApi);
  }

  private scoped(base: string, resource: string): string {
    return this.o.namespace ? `${base}/namespaces/${this.o.namespace}/${resource}` : `${base}/${resource}`;
  }

  readonly corpora = {
    path: () => this.scoped(`/apis/${GROUP}/${VERSION}`, PLURAL),
    list: async (): Promise<KubernetesListObject<MidiCorpus>> =>
      (this.o.namespace
        ? this.custom.listNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace: this.o.namespace,
            plural: PLURAL,
          })
        : this.custom.listCustomObjectForAllNamespaces({
            group: GROUP,
            version: VERSION,
            resourcePlural: PLURAL,
          })) as Promise<KubernetesListObject<MidiCorpus>>,
  };

  readonly jobs = {
    path: () => this.scoped('/apis/batch/v1', 'jobs'),
    list: async (): Promise<KubernetesListObject<V1Job>> =>
      (this.o.namespace
        ? this.batch.listNamespacedJob({ namespace: this.o.namespace, labelSelector: CHILD_SELECTOR })
        : this.batch.listJobForAllNamespaces({ labelSelector: CHILD_SELECTOR })) as Promise<
        KubernetesListObject<V1Job>
      >,
  };

  readonly pods = {
    path: () => this.scoped('/api/v1', 'pods'),
    list: async (): Promise<KubernetesListObject<V1Pod>> =>
      (this.o.namespace
        ? this.core.listNamespacedPod({ namespace: this.o.namespace, labelSelector: CHILD_SELECTOR })
        : this.core.listPodForAllNamespaces({ labelSelector: CHILD_SELECTOR })) as Promise<KubernetesListObject<V1Pod>>,
  };

  async corpusPods(namespace: string, corpusUid: string): Promise<V1Pod[]> {
    const labelSelector = `${CHILD_SELECTOR},${LABEL_CORPUS_UID}=${corpusUid}`;
    return (await this.core.listNamespacedPod({ namespace, labelSelector })).items;
  }

  createJob(job: V1Job): Promise<V1Job> {
    return this.batch.createNamespacedJob({ namespace: job.metadata!.namespace!, body: job });
  }

  patchJob(namespace: string, name: string, spec: { parallelism: number; suspend: boolean }): Promise<V1Job> {
    return this.batch.patchNamespacedJob({ name, namespace, body: { spec } }, MERGE_PATCH);
  }

  async deleteJob(namespace: string, name: string): Promise<void> {
    try {
      await this.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async setFinalizers(corpus: MidiCorpus, finalizers: string[]): Promise<void> {
    const { namespace, name, resourceVersion } = corpus.metadata;
    await this.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace,
        name,
        body: { metadata: { finalizers, resourceVersion } },
      },
      MERGE_PATCH,
    );
  }

  async replaceStatus(corpus: MidiCorpus): Promise<MidiCorpus> {
    const { namespace, name } = corpus.metadata;
    return (await this.custom.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
      name,
      body: corpus,
    })) as MidiCorpus;
  }

  /**
   * A core/v1 Event (not events.k8s.io/v1: its eventTime is a MicroTime, which a plain Date serialises wrongly in
   * client-node 1.4). Messages come from computeStatus and never contain the database URL.
   */
  async emitEvent(corpus: MidiCorpus, event: CorpusEvent): Promise<void> {
    const now = new Date();
    const { namespace, name, uid, resourceVersion } = corpus.metadata;
    await this.core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { generateName: `${name}.`, namespace },
        involvedObject: { apiVersion: corpus.apiVersion, kind: corpus.kind, name, namespace, uid, resourceVersion },
        type: event.type,
        reason: event.reason,
        message: event.message.slice(0, 1024),
        source: { component: 'midi-corpus-operator' },
        reportingComponent: 'midi.corpus.dev/operator',
        reportingInstance: this.o.identity,
        action: 'Reconcile',
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  }

  /**
   * A Secret's labels and decoded data; undefined when it does not exist. Only in the namespace watched, when one is:
   * a corpus names a Secret of its own namespace (secretRef has no namespace), so a read elsewhere would be a bug, and
   * one that the Role of a single-namespace install would refuse anyway.
   */
  async readSecret(namespace: string, name: string): Promise<SecretData> {
    if (this.o.namespace && namespace !== this.o.namespace)
      throw new Error(
        `refusing to read Secret ${namespace}/${name}: the controller watches namespace ${this.o.namespace} only`,
      );
    try {
      const secret = await this.core.readNamespacedSecret({ name, namespace });
      return {
        labels: secret.metadata?.labels ?? {},
        data: Object.fromEntries(
          Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
        ),
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}
