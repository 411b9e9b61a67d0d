/**
 * A TCP proxy for tests and benchmarks, in bench/ so that both can import it (the build compiles bench/, not test/).
 *
 * - The e2e tests put it in front of the API server and cut it: every connection reset at once (as an API server
 *   restart or a load balancer's idle timeout does to long-lived watches), and new connections refused for a while.
 * - The pool benchmark (bench/pool-latency.ts) puts it between the runner's pool and Postgres with a delay: each
 *   chunk is held for `oneWayDelayMs` before it is written on, in both directions, so a round trip costs twice that.
 *   This kernel has no netem, and loopback alone hides everything a pool does about network latency.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';

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
 * A TcpProxy in a process of its own, from the compiled build (dist/bench), at a raised CPU priority where allowed
 * (root). The network being imitated neither slows down when its client is busy, as a proxy sharing the benchmark's
 * event loop would, nor when other work loads the machine: on two shared cores, a proxy at normal priority waited for
 * a core often enough to turn a 0.5 ms round trip into 3.6 ms. `priorityRaised` says whether it got the priority.
 */
export async function startTcpProxyProcess(
  target: { host: string; port: number },
  options: TcpProxyOptions = {},
): Promise<{ port: number; priorityRaised: boolean; stop: () => Promise<void> }> {
  const module = new URL('./tcp-proxy.js', import.meta.url).href;
  const code = `
    import { TcpProxy } from ${JSON.stringify(module)};
    const proxy = new TcpProxy(${JSON.stringify(target)}, ${JSON.stringify(options)});
    process.send(await proxy.start());
    process.once('message', () => proxy.stop().then(() => process.disconnect()));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  const [port] = (await Promise.race([
    once(child, 'message'),
    exited.then(([code]) => Promise.reject(new Error(`the proxy process exited with code ${String(code)}`))),
  ])) as [number];
  let priorityRaised = true;
  try {
    os.setPriority(child.pid!, PROXY_PRIORITY);
  } catch {
    priorityRaised = false;
  }
  return {
    port,
    priorityRaised,
    stop: async () => {
      child.send('stop');
      await exited;
    },
  };
}

/** A nice value well above the benchmark's and the machine's other work (-20 is the highest). */
const PROXY_PRIORITY = -15;

/** Bytes held in one direction before the proxy stops reading from the sender, as a real link's window would. */
const HELD_BYTES_LIMIT = 4 << 20;

/**
 * Below this many ms to go, a held chunk waits in short sleeps instead of on a timer: Node's timers have a resolution
 * of a millisecond and fire up to about one early or late, which would turn a 0.25 ms hold into 1 ms.
 */
const SPIN_BELOW_MS = 2;

/**
 * The short sleep: Atomics.wait has microsecond resolution but blocks the event loop, so it sleeps this little at a
 * time and lets the loop read what arrived meanwhile (a chunk is stamped at most this late). Spinning on setImmediate
 * instead kept a core busy, and on a loaded machine a process that never sleeps waits longer for its turn.
 */
const SLEEP_SLICE_MS = 0.05;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

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
    if (wait > SPIN_BELOW_MS) {
      setTimeout(pump, wait - SPIN_BELOW_MS / 2);
    } else {
      if (wait > 0) Atomics.wait(sleeper, 0, 0, Math.min(wait, SLEEP_SLICE_MS));
      setImmediate(pump);
    }
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
