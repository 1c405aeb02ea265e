/**
 * An emulated network link for benchmarks: a TCP proxy on loopback that forwards to an upstream
 * (the registry) and makes every byte cross a link with a fixed one-way delay and a capped
 * bandwidth in each direction (the kernel here has no netem).
 *
 * Model, per direction (client → upstream and upstream → client), shared by all connections as
 * one physical link would be: a chunk of n bytes that arrives at time t starts being sent when
 * the direction's line is free (a token bucket with no burst: the line is busy n / bandwidth
 * seconds per chunk) and is delivered `delayMs` after its last byte left. A new connection pays
 * the TCP handshake (one round trip) before its first byte may leave. Each connection's queue is
 * bounded (its source socket is paused above `windowBytes` queued), as a TCP window would bound it,
 * so a fast upstream does not pile gigabytes into memory.
 *
 * Counted: bytes each way, connections, and HTTP requests (request lines seen in the client →
 * upstream stream, with their method and path kept for inspection). The profile can be changed
 * between runs (`setProfile`); counters are read and reset with `take()`.
 * @module
 */
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';

/** One link's shape. */
export interface LinkProfile {
  /** Name as given in BENCH_LINKS, e.g. `10ms-1g`. */
  name: string;
  /** One-way delay in ms (each direction). */
  delayMs: number;
  /** Bandwidth per direction in bytes per second. */
  bytesPerSec: number;
}

/**
 * Parse `<delay>ms-<rate><k|m|g>` (rate in bit/s, e.g. `10ms-1g` = 10 ms each way at 1 Gbit/s,
 * `25ms-200m` = 25 ms each way at 200 Mbit/s).
 */
export function parseLinkProfile(s: string): LinkProfile {
  const m = /^(\d+(?:\.\d+)?)ms-(\d+(?:\.\d+)?)([kmg])$/i.exec(s.trim());
  if (!m) throw new Error(`Cannot use link profile "${s}": expected <delay>ms-<rate><k|m|g>, e.g. 10ms-1g or 25ms-200m`);
  const unit = { k: 1e3, m: 1e6, g: 1e9 }[(m[3] as string).toLowerCase() as 'k' | 'm' | 'g'];
  return { name: s.trim(), delayMs: Number(m[1]), bytesPerSec: (Number(m[2]) * unit) / 8 };
}

/** Traffic counted since the last take(). */
export interface LinkCounters {
  /** Bytes upstream → client (the registry's responses, headers included). */
  down: number;
  /** Bytes client → upstream. */
  up: number;
  connections: number;
  requests: number;
  /** `METHOD path` of every request, in order. */
  requestLines: string[];
}

/** A running link proxy. */
export interface LinkProxy {
  /** `127.0.0.1:PORT`: use it as the registry host of image references. */
  host: string;
  port: number;
  profile(): LinkProfile;
  setProfile(p: LinkProfile): void;
  /** The counters since the last take(), and reset them. */
  take(): LinkCounters;
  /** The counters since the last take() (a copy), without resetting them. */
  peek(): LinkCounters;
  /** Close the listener and every connection. */
  stop(): Promise<void>;
}

/** One direction of the link: when its line is next free (ms, performance.now clock). */
interface Line { freeAt: number }

const REQUEST_LINE = /(?:^|\r\n)(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\S+) HTTP\/1\.[01]\r\n/g;

/** Start a link proxy on a free loopback port forwarding to `upstream` (`host:port`). */
export async function startLinkProxy(upstream: string, initial: LinkProfile, opts: { windowBytes?: number } = {}): Promise<LinkProxy> {
  const [uHost, uPort] = [upstream.slice(0, upstream.lastIndexOf(':')), Number(upstream.slice(upstream.lastIndexOf(':') + 1))];
  const windowBytes = opts.windowBytes ?? 8 << 20;
  let profile = initial;
  const lines = { up: { freeAt: 0 } as Line, down: { freeAt: 0 } as Line };
  let counters: LinkCounters = { down: 0, up: 0, connections: 0, requests: 0, requestLines: [] };
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();

  /**
   * Forward `from` → `to` across `line`, not before `notBefore` (the handshake); `onData` counts.
   * Chunks are delivered in order (delivery times only grow: the line serialises them).
   */
  const pipe = (from: net.Socket, to: net.Socket, line: Line, notBefore: number, onData: (b: Buffer) => void): void => {
    const queue: Array<{ buf: Buffer; at: number }> = [];
    let queued = 0;
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    const flush = (): void => {
      timer = undefined;
      const now = performance.now();
      while (queue.length > 0 && (queue[0] as { at: number }).at <= now + 0.5) {
        const { buf } = queue.shift() as { buf: Buffer; at: number };
        queued -= buf.length;
        if (!to.destroyed) to.write(buf);
      }
      if (queued < windowBytes && from.isPaused()) from.resume();
      if (queue.length > 0) arm();
      else if (ended && !to.destroyed) to.end();
    };
    const arm = (): void => {
      if (timer || queue.length === 0) return;
      const wait = Math.max(0, (queue[0] as { at: number }).at - performance.now());
      timer = setTimeout(() => { if (timer) timers.delete(timer); flush(); }, wait);
      timers.add(timer);
    };
    from.on('data', (buf: Buffer) => {
      onData(buf);
      const now = performance.now();
      const start = Math.max(now, line.freeAt, notBefore);
      const done = start + (buf.length * 1000) / profile.bytesPerSec;
      line.freeAt = done;
      queue.push({ buf, at: done + profile.delayMs });
      queued += buf.length;
      if (queued >= windowBytes) from.pause();
      arm();
    });
    from.on('end', () => {
      ended = true;
      if (queue.length === 0 && !to.destroyed) to.end();
    });
  };

  const server = net.createServer((client) => {
    counters.connections++;
    const accepted = performance.now();
    // The handshake: SYN out, SYN-ACK back, before the first request byte may leave.
    const handshakeDone = accepted + 2 * profile.delayMs;
    const up = net.connect(uPort, uHost);
    sockets.add(client);
    sockets.add(up);
    client.setNoDelay(true);
    up.setNoDelay(true);
    let carry = '';
    pipe(client, up, lines.up, handshakeDone, (b) => {
      counters.up += b.length;
      // Request lines (GET/HEAD from pulls; a request body is not scanned apart, pulls send none).
      const text = carry + b.toString('latin1');
      for (const m of text.matchAll(REQUEST_LINE)) {
        if ((m.index ?? 0) + m[0].length <= carry.length) continue;
        counters.requests++;
        if (counters.requestLines.length < 100_000) counters.requestLines.push(`${m[1]} ${m[2]}`);
      }
      carry = text.slice(-2048);
    });
    pipe(up, client, lines.down, 0, (b) => { counters.down += b.length; });
    const close = (): void => {
      client.destroy();
      up.destroy();
      sockets.delete(client);
      sockets.delete(up);
    };
    client.on('error', close);
    up.on('error', close);
    client.on('close', () => { if (!up.writableEnded) setTimeout(close, profile.delayMs + 50); });
    up.on('close', () => { sockets.delete(up); });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    port,
    profile: () => profile,
    setProfile: (p) => { profile = p; lines.up.freeAt = 0; lines.down.freeAt = 0; },
    peek: () => ({ ...counters, requestLines: [...counters.requestLines] }),
    take: () => {
      const c = counters;
      counters = { down: 0, up: 0, connections: 0, requests: 0, requestLines: [] };
      return c;
    },
    stop: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
