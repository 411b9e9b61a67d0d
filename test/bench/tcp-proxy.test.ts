/**
 * The delaying TCP proxy the pool's latency benchmark runs through (bench/support/tcp-proxy.ts): a round trip through
 * it costs at least the delay it is given, and what it carries arrives whole and in order, both ways.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy, type startTcpProxyProcess } from '../../bench/support/tcp-proxy.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';

/** A server that sends back every byte it receives, and ends when the sender does. */
async function echoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Sends `data` through `port` and collects all that comes back until the far end closes. */
async function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    socket.once('end', resolve);
    socket.once('error', reject);
  });
  // In pieces, so the proxy holds many chunks at once and the order of its writes is what is tested.
  for (let at = 0; at < data.length; at += 64 * 1024) socket.write(data.subarray(at, at + 64 * 1024));
  socket.end();
  await ended;
  return Buffer.concat(chunks);
}

/** Milliseconds for one small message to go through `port` and come back. */
async function messageRoundTripMs(socket: net.Socket): Promise<number> {
  const started = performance.now();
  const back = new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.write('x');
  await back;
  return performance.now() - started;
}

describe('the delaying TCP proxy', () => {
  let echo: Awaited<ReturnType<typeof echoServer>>;
  let db: TestPostgres;

  beforeAll(async () => {
    echo = await echoServer();
    db = await startTestPostgres();
  });
  afterAll(async () => {
    await echo?.close();
    await db?.destroy();
  });

  it.each([0.25, 1, 5])('makes a round trip last at least twice a one-way delay of %s ms', async (oneWayDelayMs) => {
    const proxy = new TcpProxy({ host: '127.0.0.1', port: echo.port }, { oneWayDelayMs });
    const port = await proxy.start();
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    try {
      const times: number[] = [];
      for (let i = 0; i < 20; i++) times.push(await messageRoundTripMs(socket));
      expect(Math.min(...times)).toBeGreaterThanOrEqual(2 * oneWayDelayMs);
    } finally {
      socket.destroy();
      await proxy.stop();
    }
  });

  it('delays a real Postgres query by at least its round trip', async () => {
    const u = new URL(db.url);
    const proxy = new TcpProxy({ host: u.hostname, port: Number(u.port) }, { oneWayDelayMs: 5 });
    u.port = String(await proxy.start());
    const client = new pg.Client({ connectionString: u.toString() });
    try {
      await client.connect();
      const times: number[] = [];
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        const { rows } = await client.query<{ n: number }>('SELECT $1::int AS n', [i]);
        times.push(performance.now() - started);
        expect(rows[0]!.n).toBe(i);
      }
      expect(Math.min(...times)).toBeGreaterThanOrEqual(10);
    } finally {
      await client.end();
      await proxy.stop();
    }
  });

  it.each([0, 0.25, 2])(
    'carries 16 MB both ways whole and in order with a one-way delay of %s ms',
    async (oneWayDelayMs) => {
      const proxy = new TcpProxy({ host: '127.0.0.1', port: echo.port }, { oneWayDelayMs });
      const port = await proxy.start();
      try {
        const data = randomBytes(16 << 20);
        const back = await roundTrip(port, data);
        expect(back.length).toBe(data.length);
        expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      } finally {
        await proxy.stop();
      }
    },
  );

  it('delays as much in a process of its own (the build, as the benchmark runs it)', async () => {
    // From dist/ (`npm test` builds it first): the process loads the compiled proxy beside it.
    const built = (await import(pathToFileURL(path.resolve('dist/bench/support/tcp-proxy.js')).href)) as {
      startTcpProxyProcess: typeof startTcpProxyProcess;
    };
    const proxy = await built.startTcpProxyProcess({ host: '127.0.0.1', port: echo.port }, { oneWayDelayMs: 2 });
    const socket = net.connect(proxy.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    try {
      const times: number[] = [];
      for (let i = 0; i < 10; i++) times.push(await messageRoundTripMs(socket));
      expect(Math.min(...times)).toBeGreaterThanOrEqual(4);
      const data = randomBytes(4 << 20);
      const back = await roundTrip(proxy.port, data);
      expect(back.equals(data)).toBe(true);
    } finally {
      socket.destroy();
      await proxy.stop();
    }
  });

  it('refuses a negative delay', () => {
    expect(() => new TcpProxy({ host: '127.0.0.1', port: 1 }, { oneWayDelayMs: -1 })).toThrow(/oneWayDelayMs/);
  });
});
