/**
 * An informer that survives watch errors.
 *
 * client-node's ListWatch (cache.js, 2.0 as 1.4) restarts its watch by itself only on a clean close, a 410 Gone or its
 * own client-side timeout; any other
 * error (API server restart, network reset, 5xx, a failed list) calls the ERROR handlers and leaves the informer
 * stopped for good, with a cache that silently stops changing. This wrapper restarts it after an exponential delay
 * (reset once events flow again), and ignores the AbortError that its own stop() provokes.
 */
import {
  ADD,
  DELETE,
  ERROR,
  ListWatch,
  UPDATE,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Logger } from '../../common/log.js';
import { scrubSecrets } from '../../contract/describe-error.js';
import { backoffDelay } from '../../common/backoff.js';
import { realClock, type Clock } from '../../common/clock.js';
import { describeApiError, statusOf } from './errors.js';

export type InformerEvent = 'add' | 'update' | 'delete';

/** What the controller needs of an informer: its life, and its cache once it has listed. */
export interface Informer<T> {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True once a list has succeeded: until then the cache is empty, not "no objects". */
  readonly synced: boolean;
  list(namespace?: string): readonly T[];
  get(name: string, namespace?: string): T | undefined;
}

export interface InformerOptions<T extends KubernetesObject> {
  /** For logs and metrics: "midicorpora", "jobs", "pods". */
  name: string;
  kubeConfig: KubeConfig;
  /** The watch path, e.g. /apis/batch/v1/jobs or /apis/batch/v1/namespaces/NS/jobs. */
  path: string;
  /** Lists the same objects the watch sees (same namespace and label selector). */
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  onEvent: (event: InformerEvent, obj: T) => void;
  /** Called on every watch or list error, before the restart is scheduled. */
  onError?: (err: unknown) => void;
  log: Logger;
  clock?: Clock;
  /** Restart delays: base·2^n up to max. */
  restartBaseMs?: number;
  restartMaxMs?: number;
}

export class RestartingInformer<T extends KubernetesObject> implements Informer<T> {
  private readonly cache: ListWatch<T>;
  private readonly clock: Clock;
  private stopped = true;
  private failures = 0;
  private restartTimer: unknown;
  private everSynced = false;

  constructor(private readonly options: InformerOptions<T>) {
    this.clock = options.clock ?? realClock;
    this.cache = new ListWatch<T>(
      options.path,
      new Watch(options.kubeConfig),
      options.list,
      false,
      options.labelSelector,
    );
    const forward = (event: InformerEvent) => (obj: T) => {
      this.failures = 0;
      options.onEvent(event, obj);
    };
    this.cache.on(ADD, forward('add'));
    this.cache.on(UPDATE, forward('update'));
    this.cache.on(DELETE, forward('delete'));
    this.cache.on(ERROR, (err) => this.handleError(err));
  }

  /** Lists, starts watching, and resolves once the first list is in the cache (or has failed: a restart follows). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.cache.start();
    if (!this.stopped && this.restartTimer === undefined) this.everSynced = true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer !== undefined) this.clock.clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.cache.stop();
  }

  get synced(): boolean {
    return this.everSynced;
  }

  list(namespace?: string): readonly T[] {
    return this.cache.list(namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(name, namespace);
  }

  private handleError(err: unknown): void {
    if (this.stopped) return; // our own stop() aborts the watch request
    this.options.onError?.(err);
    const delay = backoffDelay(this.failures++, {
      baseMs: this.options.restartBaseMs ?? 1000,
      maxMs: this.options.restartMaxMs ?? 30_000,
    });
    this.options.log.warn(
      { informer: this.options.name, delayMs: delay, err: describe(err) },
      'watch failed; restarting',
    );
    if (this.restartTimer !== undefined) return;
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      void this.start().catch((e: unknown) => this.handleError(e));
    }, delay);
  }
}

/**
 * One line: the status and the API's reason for an API error (not client-node's message, which carries the whole
 * response with its headers: a fresh CRD's first list gives `429 TooManyRequests: storage is (re)initializing`), the
 * code and message for a network error (`ECONNRESET read ECONNRESET`).
 */
function describe(err: unknown): string {
  if (statusOf(err) !== undefined) return scrubSecrets(describeApiError(err));
  const e = err as { code?: string; message?: string };
  return scrubSecrets(`${e?.code !== undefined ? `${e.code} ` : ''}${(e?.message ?? String(err)).split('\n')[0]}`);
}
