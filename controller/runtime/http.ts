/**
 * The controller's HTTP endpoints: /healthz and /readyz on the health port, /metrics on the metrics port (the same
 * server when both ports are equal). /healthz answers while the process's event loop runs; /readyz once the informers
 * have listed (a standby replica is ready too: it is ready to take over).
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface HttpOptions {
  healthPort: number;
  metricsPort: number;
  registry: Registry;
  ready: () => boolean;
  host?: string;
}

/** The endpoints once listening: the ports they got (a port of 0 asks for a free one), and how to close them. */
export interface HttpEndpoints {
  ports: { health: number; metrics: number };
  close(): Promise<void>;
}

export async function startHttp(o: HttpOptions): Promise<HttpEndpoints> {
  const health = (path: string): [number, string] | undefined => {
    if (path === '/healthz' || path === '/livez') return [200, 'ok\n'];
    if (path === '/readyz') return o.ready() ? [200, 'ok\n'] : [503, 'informers not synced\n'];
    return undefined;
  };
  const handler = (serveHealth: boolean, serveMetrics: boolean) =>
    createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      const h = serveHealth ? health(path) : undefined;
      if (h) {
        res.writeHead(h[0], { 'Content-Type': 'text/plain' }).end(h[1]);
        return;
      }
      if (serveMetrics && path === '/metrics') {
        o.registry.metrics().then(
          (body) => res.writeHead(200, { 'Content-Type': o.registry.contentType }).end(body),
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
        return;
      }
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    });
  const listen = (server: Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, o.host ?? '0.0.0.0', () => {
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  const servers: Server[] = [];
  let healthPort: number;
  let metricsPort: number;
  if (o.healthPort === o.metricsPort && o.healthPort !== 0) {
    const s = handler(true, true);
    servers.push(s);
    healthPort = metricsPort = await listen(s, o.healthPort);
  } else {
    const h = handler(true, false);
    const m = handler(false, true);
    servers.push(h, m);
    healthPort = await listen(h, o.healthPort);
    metricsPort = await listen(m, o.metricsPort);
  }
  return {
    ports: { health: healthPort, metrics: metricsPort },
    close: async () => {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
