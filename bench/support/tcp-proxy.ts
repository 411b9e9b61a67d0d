/**
 * A TCP proxy for tests and benchmarks, in bench/ so that both can import it (the build compiles bench/, not test/).
 *
 * - The e2e tests put it in front of the API server and cut it: every connection reset at once (as an API server
 *   restart or a load balancer's idle timeout does to long-lived watches), and new connections refused for a while.
 * - The pool benchmark (bench/pool-latency.ts) puts it between the runner's pool and Postgres with a delay: each
 *   chunk is held for `oneWayDelayMs` before it is written on, in both directions, so a round trip costs twice that.
 *   This kernel has no netem, and loopback alone hides everything a pool does about network latency.
 */
import { once } from 'node:events';
import net from 'node:net';
import { Worker } from 'node:worker_threads';

export interface TcpProxyOptions {
  /** Held this long in each direction before being written on. Default 0: piped straight through. */
  oneWayDelayMs?: number;
}

export class TcpProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly oneWayDelayMs: number;
  port = 0;

  constructor(
    private readonly target: { host: string; port: number },
    options: TcpProxyOptions = {},
  ) {
    this.oneWayDelayMs = options.oneWayDelayMs ?? 0;
    if (!(this.oneWayDelayMs >= 0)) throw new RangeError(`oneWayDelayMs must be ≥ 0, got ${this.oneWayDelayMs}`);
  }

  async start(port = 0): Promise<number> {
    // Half-open on both sides: a sender's FIN is passed on after its data, and the other direction goes on until its
    // own FIN. Otherwise a client that ends its side first would lose the answer still in flight.
    this.server = net.createServer({ allowHalfOpen: true }, (client) => {
      const upstream = net.connect({ port: this.target.port, host: this.target.host, allowHalfOpen: true });
      for (const s of [client, upstream]) {
        // Nagle's algorithm would hold the proxy's small writes until the peer's (delayed) ACK: tens of ms that the
        // network being imitated does not have.
        s.setNoDelay(true);
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      if (this.oneWayDelayMs === 0) {
        client.pipe(upstream).pipe(client);
      } else {
        delayLine(client, upstream, this.oneWayDelayMs);
        delayLine(upstream, client, this.oneWayDelayMs);
      }
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Resets every open connection (TCP RST) and refuses new ones until resume(). */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    for (const s of this.sockets) s.resetAndDestroy();
    await closed;
  }

  /** Listens again on the same port. */
  async resume(): Promise<void> {
    await this.start(this.port);
  }

  async stop(): Promise<void> {
    await this.cut();
  }
}

/**
 * A TcpProxy on a thread of its own, from the compiled build (dist/bench): the benchmark's own work on the main thread
 * (building batches, handling results) must not hold up the chunks in flight, as it would if the proxy shared its
 * event loop; the network being imitated does not slow down when its client is busy.
 */
export async function startTcpProxyThread(
  target: { host: string; port: number },
  options: TcpProxyOptions = {},
): Promise<{ port: number; stop: () => Promise<void> }> {
  const module = new URL('./tcp-proxy.js', import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(${JSON.stringify(module)}).then(async ({ TcpProxy }) => {
      const proxy = new TcpProxy(workerData.target, workerData.options);
      parentPort.postMessage(await proxy.start());
      parentPort.once('message', () => proxy.stop().then(() => parentPort.close()));
    });`;
  const worker = new Worker(code, { eval: true, workerData: { target, options } });
  const [port] = (await Promise.race([
    once(worker, 'message'),
    once(worker, 'error').then(([e]) => Promise.reject(e as Error)),
  ])) as [number];
  return {
    port,
    stop: async () => {
      const exited = once(worker, 'exit');
      worker.postMessage('stop');
      await exited;
    },
  };
}

/** Bytes held in one direction before the proxy stops reading from the sender, as a real link's window would. */
const HELD_BYTES_LIMIT = 4 << 20;

/**
 * Below this many ms to go, a held chunk waits on setImmediate instead of a timer: Node's timers have a resolution of
 * a millisecond and fire up to about one early or late, which would turn a 0.25 ms hold into 1 ms.
 */
const SPIN_BELOW_MS = 2;

/**
 * Everything `from` sends reaches `to` `delayMs` later, in order, its end (FIN) included. A FIFO of chunks, each due at
 * its arrival + delay: the arrivals are in order, so the due times are too, and one pump writes the head when due.
 */
function delayLine(from: net.Socket, to: net.Socket, delayMs: number): void {
  const held: { due: number; chunk: Buffer | null }[] = [];
  let heldBytes = 0;
  let scheduled = false;
  const pump = () => {
    scheduled = false;
    const now = performance.now();
    while (held.length > 0 && held[0]!.due <= now) {
      const { chunk } = held.shift()!;
      if (to.destroyed) return;
      if (chunk === null) {
        to.end();
        return;
      }
      heldBytes -= chunk.length;
      to.write(chunk);
    }
    if (from.isPaused() && heldBytes < HELD_BYTES_LIMIT / 2 && !to.writableNeedDrain) from.resume();
    schedule();
  };
  const schedule = () => {
    if (scheduled || held.length === 0) return;
    scheduled = true;
    const wait = held[0]!.due - performance.now();
    if (wait > SPIN_BELOW_MS) setTimeout(pump, wait - SPIN_BELOW_MS / 2);
    else setImmediate(pump);
  };
  from.on('data', (chunk: Buffer) => {
    held.push({ due: performance.now() + delayMs, chunk });
    heldBytes += chunk.length;
    if (heldBytes >= HELD_BYTES_LIMIT || to.writableNeedDrain) from.pause();
    schedule();
  });
  to.on('drain', () => {
    if (from.isPaused() && heldBytes < HELD_BYTES_LIMIT / 2) from.resume();
  });
  from.on('end', () => {
    held.push({ due: performance.now() + delayMs, chunk: null });
    schedule();
  });
}
