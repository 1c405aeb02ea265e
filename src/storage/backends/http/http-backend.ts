/**
 * The `http` backend (nydusd's `http-proxy`): `GET <addr><path>/<blob id>` with a single `Range`,
 * `HEAD` for the size, over TCP, TLS or a unix socket. Connections come from a keep-alive pool of
 * bounded size; every attempt has a deadline and a connect deadline; 5xx, 408, 429, resets and
 * timeouts are retried with exponential backoff up to `retry_limit` times; other answers fail at
 * once. Never returns short or misplaced data: a 206 must carry exactly the asked range, and a 200
 * is taken only when the range is the whole blob.
 *
 * Unlike nydusd, a unix-socket address also uses `<path>/<blob id>` as the request path (nydusd
 * sends "/" for every blob there).
 * @module
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackendError } from '../../../util/errors.js';
import { newBackendMetrics, type BackendMetrics, type BlobBackend } from '../../blob-backend.js';
import { nullLogger, type Logger } from '../../../util/logger.js';
import {
  EIO, aborted, badBlobId, blobNotFound, checkReadArgs, closedBackend, isPlainBlobId, measuredRead,
} from '../backend-errors.js';
import type { HttpConfig } from './http-config.js';
import { parseContentRange } from '../../../util/content-range.js';

/** Metrics of the http backend: the common ones plus retries. */
export interface HttpBackendMetrics extends BackendMetrics {
  /** Attempts repeated after a transient failure. */
  retries: number;
}

/** An http backend (its metrics carry `retries`). */
export interface HttpBlobBackend extends BlobBackend {
  readonly metrics: HttpBackendMetrics;
}

/** Options of {@link createHttpBackend}. */
export interface HttpBackendOptions {
  logger?: Logger;
  /** Type name reported by `type` (default "http"; the factory passes "http-proxy" through). */
  type?: string;
  /** Largest number of sockets open to the server (default 32). */
  maxSockets?: number;
  /** First retry delay in ms, doubled on each retry (default 100). */
  backoffMs?: number;
  /** Largest retry delay in ms (default 2000). */
  maxBackoffMs?: number;
}

/** Create an http backend. */
export function createHttpBackend(config: HttpConfig, options: HttpBackendOptions = {}): HttpBlobBackend {
  return new HttpBackend(config, options);
}

type FailureKind = 'timeout' | 'connect-timeout' | 'network' | 'aborted' | 'short' | 'too-long';

/** A failed attempt below the HTTP status level. */
class AttemptError extends Error {
  constructor(readonly kind: FailureKind, message: string, readonly reusedSocket: boolean, readonly errCause?: unknown) {
    super(message);
  }
}

interface RawResponse {
  status: number;
  statusText: string;
  headers: http.IncomingHttpHeaders;
  body: Uint8Array | undefined;
}

/** How many body bytes to read for a response head, or undefined to discard the body. */
type BodyPlan = (status: number, headers: http.IncomingHttpHeaders) => number | undefined;

type Outcome<T> =
  | { ok: true; value: T }
  | { ok: false; retryable: boolean; code: string; reason: string; cause?: unknown; staleSocket?: boolean; error?: BackendError };

const RETRYABLE_STATUS = (s: number): boolean => s >= 500 || s === 408 || s === 429;

function contentLength(h: http.IncomingHttpHeaders): number | undefined {
  const v = h['content-length'];
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

class HttpBackend implements HttpBlobBackend {
  readonly type: string;
  readonly metrics: HttpBackendMetrics = { ...newBackendMetrics(), retries: 0 };
  readonly #config: HttpConfig;
  readonly #logger: Logger;
  readonly #agent: http.Agent;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  #closed = false;

  constructor(config: HttpConfig, options: HttpBackendOptions) {
    this.#config = config;
    this.type = options.type ?? 'http';
    this.#logger = options.logger ?? nullLogger;
    this.#backoffMs = options.backoffMs ?? 100;
    this.#maxBackoffMs = options.maxBackoffMs ?? 2000;
    const maxSockets = options.maxSockets ?? 32;
    const common = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' as const };
    const t = config.target;
    this.#agent = t.kind === 'tcp' && t.protocol === 'https:'
      ? new https.Agent({ ...common, rejectUnauthorized: !config.skipVerify })
      : new http.Agent(common);
  }

  #pathOf(blobId: string): string {
    const base = this.#config.target.kind === 'tcp' ? this.#config.target.basePath : '';
    return `${base}${this.#config.path}/${encodeURIComponent(blobId)}`;
  }

  #urlOf(path: string): string {
    const t = this.#config.target;
    return t.kind === 'unix' ? `unix:${t.socketPath}:${path}` : `${t.protocol}//${t.hostname.includes(':') ? `[${t.hostname}]` : t.hostname}:${t.port}${path}`;
  }

  /** One HTTP exchange; rejects with AttemptError. */
  #once(method: 'GET' | 'HEAD', path: string, headers: Record<string, string>, plan: BodyPlan, signal: AbortSignal | undefined): Promise<RawResponse> {
    const t = this.#config.target;
    const opts: http.RequestOptions = {
      method, path, agent: this.#agent,
      headers: { 'user-agent': 'nydus-ts', 'accept-encoding': 'identity', ...headers },
      ...(t.kind === 'unix' ? { socketPath: t.socketPath } : { hostname: t.hostname, port: t.port, protocol: t.protocol }),
    };
    return new Promise<RawResponse>((resolve, reject) => {
      const req = t.kind === 'tcp' && t.protocol === 'https:' ? https.request(opts) : http.request(opts);
      const timers: NodeJS.Timeout[] = [];
      let settled = false;
      const finish = (err: AttemptError | undefined, value?: RawResponse): void => {
        if (settled) return;
        settled = true;
        for (const x of timers) clearTimeout(x);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(value as RawResponse);
      };
      const fail = (kind: FailureKind, message: string, cause?: unknown): void => {
        if (settled) return;
        finish(new AttemptError(kind, message, req.reusedSocket, cause));
        req.destroy();
      };
      const onAbort = (): void => fail('aborted', 'the request was aborted', signal?.reason);
      if (signal) {
        if (signal.aborted) {
          queueMicrotask(onAbort);
        } else {
          signal.addEventListener('abort', onAbort, { once: true });
        }
      }
      timers.push(setTimeout(() => fail('timeout', `no complete answer within ${this.#config.timeoutMs} ms`), this.#config.timeoutMs));
      req.on('socket', (sock) => {
        if (!sock.connecting) return;
        const ct = setTimeout(() => fail('connect-timeout', `could not connect within ${this.#config.connectTimeoutMs} ms`), this.#config.connectTimeoutMs);
        timers.push(ct);
        sock.once('connect', () => clearTimeout(ct));
      });
      req.on('error', (e: NodeJS.ErrnoException) => fail('network', e.code ? `${e.code} (${e.message})` : e.message, e));
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        const head = { status, statusText: res.statusMessage ?? '', headers: res.headers };
        res.on('error', (e: NodeJS.ErrnoException) => fail('network', `connection lost in the body: ${e.code ?? e.message}`, e));
        const want = method === 'HEAD' ? undefined : plan(status, res.headers);
        if (want === undefined) {
          res.resume();
          finish(undefined, { ...head, body: undefined });
          return;
        }
        const body = new Uint8Array(want);
        let got = 0;
        res.on('data', (c: Buffer) => {
          if (settled) return;
          if (got + c.length > want) {
            fail('too-long', `the body is longer than the ${want} bytes asked for`);
            return;
          }
          body.set(c, got);
          got += c.length;
        });
        res.on('end', () => {
          if (got < want) fail('short', `the body ended after ${got} of ${want} bytes`);
          else finish(undefined, { ...head, body });
        });
        res.on('close', () => {
          if (!res.complete) fail('network', `the connection closed after ${got} of ${want} body bytes`);
        });
      });
      req.end();
    });
  }

  /** Map an AttemptError to an outcome. */
  #netFailure<T>(e: unknown, blobId: string, signal: AbortSignal | undefined): Outcome<T> {
    if (!(e instanceof AttemptError)) throw e;
    if (this.#closed) return { ok: false, retryable: false, code: 'ERR_CLOSED', reason: 'the backend was closed', error: closedBackend(this.type) };
    switch (e.kind) {
      case 'aborted':
        return { ok: false, retryable: false, code: 'ERR_ABORTED', reason: e.message, error: aborted(blobId, signal as AbortSignal) };
      case 'timeout':
      case 'connect-timeout':
        return { ok: false, retryable: true, code: 'ERR_TIMEOUT', reason: e.message };
      case 'short':
        return { ok: false, retryable: true, code: 'ERR_SHORT_READ', reason: e.message };
      case 'too-long':
        return { ok: false, retryable: false, code: 'ERR_BAD_RESPONSE', reason: e.message };
      case 'network': {
        const code = (e.errCause as NodeJS.ErrnoException | undefined)?.code;
        return { ok: false, retryable: true, code: 'ERR_CONNECTION', reason: e.message, cause: e.errCause, staleSocket: e.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE') };
      }
    }
  }

  #statusFailure<T>(r: RawResponse): Outcome<T> {
    return { ok: false, retryable: RETRYABLE_STATUS(r.status), code: 'ERR_HTTP_STATUS', reason: `HTTP ${r.status} ${r.statusText}`.trim() };
  }

  /** Run attempts until success, a permanent failure, or the retry limit. */
  async #withRetries<T>(what: string, blobId: string, signal: AbortSignal | undefined, attempt: () => Promise<Outcome<T>>): Promise<T> {
    let retriesLeft = this.#config.retryLimit;
    let freeRetry = true;
    let n = 0;
    let backoff = this.#backoffMs;
    for (;;) {
      if (this.#closed) throw closedBackend(this.type);
      if (signal?.aborted) throw aborted(blobId, signal);
      n++;
      const o = await attempt();
      if (o.ok) return o.value;
      const fail = (): BackendError => o.error ?? new BackendError(o.code, `Cannot ${what}: ${o.reason}${n > 1 ? ` (gave up after ${n} attempts)` : ''}`, { errno: EIO, ...(o.cause !== undefined ? { cause: o.cause } : {}) });
      if (!o.retryable) throw fail();
      if (o.staleSocket === true && freeRetry) {
        // A kept-alive socket the server had already closed: retry at once, not counted.
        freeRetry = false;
        this.metrics.retries++;
        this.#logger.debug('http backend: stale keep-alive connection, retrying', { what, reason: o.reason });
        continue;
      }
      if (retriesLeft <= 0) throw fail();
      retriesLeft--;
      this.metrics.retries++;
      const delay = Math.min(this.#maxBackoffMs, backoff) * (0.5 + Math.random() / 2);
      backoff *= 2;
      this.#logger.debug('http backend: retrying', { what, reason: o.reason, attempt: n, delayMs: Math.round(delay) });
      try {
        await sleep(delay, undefined, signal ? { signal } : undefined);
      } catch {
        throw aborted(blobId, signal as AbortSignal);
      }
    }
  }

  async blobSize(blobId: string, signal?: AbortSignal): Promise<number> {
    if (typeof blobId !== 'string' || !isPlainBlobId(blobId)) throw badBlobId(this.type, String(blobId));
    const path = this.#pathOf(blobId);
    const url = this.#urlOf(path);
    return this.#withRetries(`get the size of blob ${blobId} from ${url}`, blobId, signal, async (): Promise<Outcome<number>> => {
      let r: RawResponse;
      try {
        r = await this.#once('HEAD', path, {}, () => undefined, signal);
      } catch (e) {
        return this.#netFailure(e, blobId, signal);
      }
      if (r.status === 404 || r.status === 410) return { ok: false, retryable: false, code: 'ERR_BLOB_NOT_FOUND', reason: '', error: blobNotFound(this.type, blobId, `HEAD ${url} answered ${r.status}`) };
      if (r.status !== 200) return this.#statusFailure(r);
      const size = contentLength(r.headers);
      if (size === undefined) return { ok: false, retryable: false, code: 'ERR_BAD_RESPONSE', reason: 'the HEAD answer has no Content-Length' };
      return { ok: true, value: size };
    });
  }

  read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    checkReadArgs(blobId, offset, length);
    return measuredRead(this.metrics, async () => {
      if (signal?.aborted) throw aborted(blobId, signal);
      if (this.#closed) throw closedBackend(this.type);
      if (!isPlainBlobId(blobId)) throw badBlobId(this.type, blobId);
      if (length === 0) return new Uint8Array(0);
      const last = offset + length - 1;
      const path = this.#pathOf(blobId);
      const url = this.#urlOf(path);
      // Read the body only when the head promises exactly the asked bytes.
      const plan: BodyPlan = (status, headers) => {
        if (status === 206) {
          const cr = parseContentRange(headers['content-range'] as string | undefined);
          if (cr && (cr.start !== offset || cr.end !== last)) return undefined;
          return length;
        }
        if (status === 200 && offset === 0 && contentLength(headers) === length) return length;
        return undefined;
      };
      return this.#withRetries(`read bytes ${offset}-${last} of blob ${blobId} from ${url}`, blobId, signal, async (): Promise<Outcome<Uint8Array>> => {
        let r: RawResponse;
        try {
          r = await this.#once('GET', path, { range: `bytes=${offset}-${last}` }, plan, signal);
        } catch (e) {
          return this.#netFailure(e, blobId, signal);
        }
        return this.#checkRange(r, blobId, url, offset, length);
      });
    });
  }

  #checkRange(r: RawResponse, blobId: string, url: string, offset: number, length: number): Outcome<Uint8Array> {
    const last = offset + length - 1;
    const pastEnd = (size: number | undefined): Outcome<Uint8Array> => ({
      ok: false, retryable: false, code: 'ERR_OUT_OF_RANGE', reason: '',
      error: new BackendError('ERR_OUT_OF_RANGE', `Cannot read ${length} bytes at ${offset} of blob ${blobId}: ${size === undefined ? 'the range is past the end of the blob' : `the blob has ${size} bytes`}`, { errno: EIO, offset }),
    });
    switch (r.status) {
      case 206: {
        if (r.body) return { ok: true, value: r.body };
        const cr = parseContentRange(r.headers['content-range'] as string | undefined);
        if (cr?.total !== undefined && offset + length > cr.total) return pastEnd(cr.total);
        return { ok: false, retryable: false, code: 'ERR_BAD_RESPONSE', reason: `the server answered range ${String(r.headers['content-range'])} for bytes ${offset}-${last}` };
      }
      case 200: {
        if (r.body) return { ok: true, value: r.body };
        const size = contentLength(r.headers);
        if (size !== undefined && size < offset + length) return pastEnd(size);
        return { ok: false, retryable: false, code: 'ERR_BAD_RESPONSE', reason: `the server ignored the Range header (HTTP 200${size !== undefined ? ` with ${size} bytes` : ''})` };
      }
      case 404:
      case 410:
        return { ok: false, retryable: false, code: 'ERR_BLOB_NOT_FOUND', reason: '', error: blobNotFound(this.type, blobId, `GET ${url} answered ${r.status}`) };
      case 416:
        return pastEnd(parseContentRange(r.headers['content-range'] as string | undefined)?.total);
      default:
        return this.#statusFailure(r);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#agent.destroy();
  }
}
