import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** An API error with the HTTP status, so callers can tell a conflict (409) or a missing object (404) apart. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    method: string,
    urlPath: string,
  ) {
    super(`${method} ${urlPath}: HTTP ${status}: ${body.slice(0, 500)}`);
  }
}

export const JSON_TYPE = 'application/json';
export const MERGE_PATCH = 'application/merge-patch+json';
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';

/**
 * A small JSON client over the kubeconfig's TLS settings. The harness uses it for the calls where exact control
 * of method, content type and status matters more than typed models: evictions (a 429 is an answer, not an
 * error), cordons, selector-less EndpointSlices, pod logs.
 */
export class KubeRest {
  private readonly server: URL;
  private readonly agent: Promise<https.Agent>;

  constructor(kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    this.agent = (async () => {
      const opts: https.RequestOptions = {};
      await kc.applyToHTTPSOptions(opts);
      return new https.Agent({ ca: opts.ca, cert: opts.cert, key: opts.key, keepAlive: true });
    })();
  }

  async request<T = unknown>(method: string, urlPath: string, body?: unknown, contentType = JSON_TYPE): Promise<T> {
    const text = await this.requestText(method, urlPath, body, contentType);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** The response body as text, for endpoints that answer in plain text (a pod's log). */
  async requestText(method: string, urlPath: string, body?: unknown, contentType = JSON_TYPE): Promise<string> {
    const agent = await this.agent;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return await new Promise<string>((resolve, reject) => {
      const req = https.request(
        {
          agent,
          host: this.server.hostname,
          port: this.server.port,
          method,
          path: urlPath,
          headers: {
            Accept: `${JSON_TYPE}, text/plain`,
            ...(payload !== undefined
              ? { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(payload) }
              : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) reject(new KubeApiError(status, text, method, urlPath));
            else resolve(text);
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Closes idle keep-alive sockets. */
  async close(): Promise<void> {
    (await this.agent).destroy();
  }
}

export function isStatus(err: unknown, status: number): boolean {
  return err instanceof KubeApiError && err.status === status;
}
