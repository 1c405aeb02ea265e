/**
 * The HTTP layer of RegistryClient: keep-alive pools, connect and idle timeouts, Basic and
 * Bearer auth (the scheme learnt from the first 401; tokens cached per scope, fetched once for
 * concurrent callers, renewed on a 401, a few times at most), redirects without the Authorization header for
 * other hosts, retries with backoff for Transient failures.
 * @module
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { nullLogger, type Logger } from '../util/logger.js';
import { RegistryError } from './registry-error.js';
import { parseChallenges, TokenCache, type AuthChallenge } from './auth.js';
import { encodeBasicAuth, type Credentials } from './credentials.js';

/** Options of {@link RegistryTransport} (and of RegistryClient). */
export interface TransportOptions {
  /** Talk plain HTTP instead of HTTPS. */
  plainHttp?: boolean;
  /** Skip TLS certificate verification. */
  insecure?: boolean;
  /** CA certificate(s), PEM, trusted besides Node's roots and NODE_EXTRA_CA_CERTS. */
  ca?: string | Buffer;
  credentials?: Credentials;
  /** Idle timeout of a request in ms: no bytes for this long fails the attempt (default 30000). */
  timeoutMs?: number;
  /** Connect timeout in ms (default 5000). */
  connectTimeoutMs?: number;
  /** Retries after the first attempt of an idempotent request (default 2). */
  retryLimit?: number;
  /** First retry delay in ms, doubled each time (default 100). */
  backoffMs?: number;
  /** Largest number of sockets per origin (default 32). */
  maxSockets?: number;
  logger?: Logger;
}

/** A failure worth retrying (network, timeout, 5xx, short body). */
export class Transient extends Error {
  constructor(readonly code: string, message: string, readonly status?: number, readonly errCause?: unknown) {
    super(message);
  }
}

export interface SendOptions {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** Auth scope; undefined for requests that carry no credentials. */
  scope?: string;
  signal?: AbortSignal | undefined;
  /** Follow redirects (GET/HEAD). */
  follow?: boolean;
}

export function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function header(res: http.IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Read the whole body (at most `max` bytes, more is an error). */
export async function readBody(res: http.IncomingMessage, max = 64 << 20): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > max) {
        res.destroy();
        throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot read the answer: the body is longer than ${max} bytes`);
      }
      parts.push(c);
    }
  } catch (e) {
    if (e instanceof RegistryError) throw e;
    throw new Transient('ERR_REGISTRY_CONNECTION', `the connection broke in the body after ${n} bytes`, undefined, e);
  }
  if (!res.complete) throw new Transient('ERR_REGISTRY_CONNECTION', `the connection closed after ${n} body bytes`);
  const out = Buffer.concat(parts);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** Drain a response we do not need. */
export function discard(res: http.IncomingMessage): void {
  res.resume();
  res.on('error', () => undefined);
}

/** The registry's own error text from a JSON error body. */
function errorDetail(body: Uint8Array): string {
  try {
    const j = JSON.parse(Buffer.from(body).toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const e = j.errors?.[0];
    if (e) return `${e.code ?? ''}${e.message ? ` (${e.message})` : ''}`.trim();
  } catch { /* not JSON */ }
  return '';
}


/**
 * A TLS context trusting `ca` as well as what Node trusts by default (its roots and
 * NODE_EXTRA_CA_CERTS): a `ca` option alone would replace those. Built once per transport, not
 * per connection.
 */
export function trustingAlso(ca: string | Buffer): tls.SecureContext {
  const all: Array<string | Buffer> = [...tls.rootCertificates];
  const extra = process.env['NODE_EXTRA_CA_CERTS'];
  if (extra) {
    try { all.push(readFileSync(extra)); } catch { /* Node warned about it at start-up */ }
  }
  all.push(ca);
  return tls.createSecureContext({ ca: all });
}

/** Token fetches (and retries with a newer token) one request may do after 401 answers. */
const MAX_RENEWALS = 3;

/** Sends requests to one registry host with auth, redirects and retries. */
export class RegistryTransport {
  /** `host[:port]` of the registry. */
  readonly host: string;
  /** `http(s)://host[:port]`. */
  readonly base: string;
  readonly #opts: TransportOptions;
  readonly #logger: Logger;
  readonly #httpAgent: http.Agent;
  readonly #httpsAgent: https.Agent;
  readonly #tokens = new TokenCache();
  readonly #tokenFlights = new Map<string, Promise<string>>();
  readonly #timeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #retryLimit: number;
  readonly #backoffMs: number;
  /** Which scheme the registry asked for (learnt from its first 401). */
  #mode: 'none' | 'basic' | 'bearer' = 'none';
  #closed = false;
  /** Retries done (for tests and metrics). */
  retries = 0;

  constructor(host: string, options: TransportOptions = {}) {
    if (typeof host !== 'string' || !/^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9a-fA-F:]+\](?::\d{1,5})?$/.test(host)) {
      throw new TypeError(`Cannot create a registry client: ${JSON.stringify(host)} is not host[:port]`);
    }
    this.host = host;
    this.#opts = options;
    this.base = `${options.plainHttp ? 'http' : 'https'}://${host}`;
    this.#logger = options.logger ?? nullLogger;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.#retryLimit = options.retryLimit ?? 2;
    this.#backoffMs = options.backoffMs ?? 100;
    const maxSockets = options.maxSockets ?? 32;
    const common = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' as const };
    this.#httpAgent = new http.Agent(common);
    this.#httpsAgent = new https.Agent({ ...common, rejectUnauthorized: options.insecure !== true, ...(options.ca !== undefined ? { secureContext: trustingAlso(options.ca) } : {}) });
  }

  /** One HTTP exchange up to the response head. */
  #sendOnce(o: SendOptions, headers: Record<string, string>): Promise<http.IncomingMessage> {
    if (this.#closed) return Promise.reject(new RegistryError('ERR_CLOSED', `Cannot talk to ${this.host}: the registry client is closed`));
    const https_ = o.url.protocol === 'https:';
    const req = (https_ ? https : http).request(o.url, {
      method: o.method,
      agent: https_ ? this.#httpsAgent : this.#httpAgent,
      headers: { 'user-agent': 'nydus-ts', ...headers, ...(o.body !== undefined ? { 'content-length': String(o.body.length) } : {}) },
      ...(o.signal ? { signal: o.signal } : {}),
    });
    return new Promise((resolve, reject) => {
      let ct: NodeJS.Timeout | undefined;
      const fail = (e: unknown): void => {
        if (ct) clearTimeout(ct);
        reject(e);
      };
      req.on('socket', (sock) => {
        if (!sock.connecting) return;
        ct = setTimeout(() => req.destroy(new Transient('ERR_REGISTRY_TIMEOUT', `could not connect to ${o.url.host} within ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs);
        sock.once('connect', () => clearTimeout(ct));
      });
      req.setTimeout(this.#timeoutMs, () => req.destroy(new Transient('ERR_REGISTRY_TIMEOUT', `${o.url.host} sent nothing for ${this.#timeoutMs} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (o.signal?.aborted) fail(new RegistryError('ERR_ABORTED', `Cannot ${o.method} ${o.url.pathname}: the request was aborted`, { cause: o.signal.reason }));
        else if (e instanceof Transient) fail(e);
        else if (this.#closed) fail(new RegistryError('ERR_CLOSED', `Cannot talk to ${this.host}: the registry client is closed`));
        else if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO/.test(e.code ?? '')) fail(new RegistryError('ERR_REGISTRY_TLS', `Cannot connect to ${o.url.host}: TLS verification failed (${e.code}: ${e.message})`, { cause: e }));
        else fail(new Transient('ERR_REGISTRY_CONNECTION', e.code ? `${e.code} (${e.message})` : e.message, undefined, e));
      });
      req.on('response', (res) => {
        if (ct) clearTimeout(ct);
        resolve(res);
      });
      req.end(o.body === undefined ? undefined : Buffer.from(o.body.buffer, o.body.byteOffset, o.body.byteLength));
    });
  }

  #authorization(scope: string | undefined): string | undefined {
    if (scope === undefined) return undefined;
    if (this.#mode === 'bearer') {
      const t = this.#tokens.get(scope) ?? this.#staticToken;
      return t !== undefined ? `Bearer ${t}` : undefined;
    }
    if (this.#mode === 'basic' && this.#opts.credentials) return `Basic ${encodeBasicAuth(this.#opts.credentials)}`;
    return undefined;
  }

  #staticToken: string | undefined;

  /** Use a fixed Bearer token (nydusd's `registry_token`) until the registry rejects it. */
  setStaticToken(token: string): void {
    this.#staticToken = token;
    this.#mode = 'bearer';
  }

  async #fetchToken(ch: AuthChallenge, scope: string, signal: AbortSignal | undefined): Promise<string> {
    const key = scope;
    const inflight = this.#tokenFlights.get(key);
    if (inflight) return inflight;
    const p = (async () => {
      const realm = ch.params['realm'];
      if (realm === undefined) throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot authenticate to ${this.host}: its Bearer challenge has no realm`);
      let url: URL;
      try {
        url = new URL(realm);
      } catch (e) {
        throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot authenticate to ${this.host}: token realm ${JSON.stringify(realm)} is not a URL`, { cause: e });
      }
      if (ch.params['service'] !== undefined) url.searchParams.set('service', ch.params['service']);
      for (const s of (ch.params['scope'] ?? scope).split(' ')) if (s !== '') url.searchParams.append('scope', s);
      const headers: Record<string, string> = { accept: 'application/json' };
      if (this.#opts.credentials) headers['authorization'] = `Basic ${encodeBasicAuth(this.#opts.credentials)}`;
      const res = await this.#sendOnce({ method: 'GET', url, signal }, headers);
      const body = await readBody(res, 1 << 20);
      if (res.statusCode === 401 || res.statusCode === 403) {
        throw new RegistryError('ERR_REGISTRY_UNAUTHORIZED', `Cannot authenticate to ${this.host}: the token server ${url.host} answered ${res.statusCode}${this.#opts.credentials ? ` for user ${this.#opts.credentials.username} (wrong credentials?)` : ' (no credentials given)'}`, { status: res.statusCode });
      }
      if (res.statusCode !== 200) throw new Transient('ERR_REGISTRY_STATUS', `the token server ${url.host} answered ${res.statusCode}`, res.statusCode);
      let j: { token?: unknown; access_token?: unknown; expires_in?: unknown };
      try {
        j = JSON.parse(Buffer.from(body).toString('utf8')) as typeof j;
      } catch (e) {
        throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot authenticate to ${this.host}: the token server answered no JSON`, { cause: e });
      }
      const token = typeof j.token === 'string' ? j.token : typeof j.access_token === 'string' ? j.access_token : undefined;
      if (token === undefined || token === '') throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot authenticate to ${this.host}: the token server answered no token`);
      this.#tokens.set(key, token, typeof j.expires_in === 'number' ? j.expires_in : undefined);
      this.#logger.debug('registry: got a bearer token', { host: this.host, scope });
      return token;
    })();
    this.#tokenFlights.set(key, p);
    try {
      return await p;
    } finally {
      this.#tokenFlights.delete(key);
    }
  }

  #unauthorized(action: string, res: http.IncomingMessage): RegistryError {
    const who = this.#opts.credentials ? `the credentials of user ${this.#opts.credentials.username} were rejected` : 'no credentials were given';
    return new RegistryError('ERR_REGISTRY_UNAUTHORIZED', `Cannot ${action}: ${this.host} answered ${res.statusCode} ${res.statusMessage ?? ''}`.trimEnd() + ` (${who})`, { status: res.statusCode ?? 0 });
  }

  /** Send with auth (learn the scheme, fetch/renew tokens) and redirects; the response head. */
  async send(action: string, o: SendOptions): Promise<http.IncomingMessage> {
    // A 401 renews the token, a few times at most: under many concurrent requests a token can
    // expire again before this request's retry. When another request renewed it meanwhile, the
    // retry just uses the newer one.
    let renewals = 0;
    let newerTokens = 0;
    let triedBasic = false;
    for (;;) {
      const headers: Record<string, string> = { ...o.headers };
      const auth = this.#authorization(o.scope);
      if (auth !== undefined) headers['authorization'] = auth;
      const res = await this.#sendOnce(o, headers);
      const status = res.statusCode ?? 0;
      if (status === 401 && o.scope !== undefined) {
        discard(res);
        const chs = parseChallenges(header(res, 'www-authenticate'));
        const bearer = chs.find((c) => c.scheme === 'bearer');
        const basic = chs.find((c) => c.scheme === 'basic');
        if (bearer) {
          const current = this.#mode === 'bearer' ? this.#authorization(o.scope) : undefined;
          if (current !== undefined && current !== auth && newerTokens < MAX_RENEWALS) {
            newerTokens++;
            continue;
          }
          if (renewals < MAX_RENEWALS) {
            // First challenge, an expired token, or a rejected static token: fetch one.
            renewals++;
            this.#mode = 'bearer';
            this.#tokens.delete(o.scope);
            this.#staticToken = undefined;
            await this.#fetchToken(bearer, o.scope, o.signal);
            continue;
          }
        }
        // Retry with Basic credentials unless this very request already carried them: a request
        // sent before a concurrent one learned the scheme (mode already 'basic') retries too.
        if (basic && this.#opts.credentials && !triedBasic && !(auth ?? '').startsWith('Basic ')) {
          triedBasic = true;
          this.#mode = 'basic';
          continue;
        }
        throw this.#unauthorized(action, res);
      }
      if (status === 403) {
        discard(res);
        throw this.#unauthorized(action, res);
      }
      if (o.follow && [301, 302, 303, 307, 308].includes(status)) {
        return this.#followRedirects(action, o, res);
      }
      return res;
    }
  }

  async #followRedirects(action: string, o: SendOptions, first: http.IncomingMessage): Promise<http.IncomingMessage> {
    let res = first;
    let url = o.url;
    for (let hops = 0; hops < 5; hops++) {
      const loc = header(res, 'location');
      discard(res);
      if (loc === undefined) throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot ${action}: a ${res.statusCode} redirect without Location`);
      url = new URL(loc, url);
      const headers: Record<string, string> = { ...o.headers };
      // Credentials go only to the registry itself, never to the redirect target (a CDN, S3 …).
      if (url.host === this.host && url.protocol === new URL(this.base).protocol) {
        const auth = this.#authorization(o.scope);
        if (auth !== undefined) headers['authorization'] = auth;
      }
      this.#logger.debug('registry: following redirect', { host: this.host, to: url.host });
      res = await this.#sendOnce({ ...o, url }, headers);
      if (![301, 302, 303, 307, 308].includes(res.statusCode ?? 0)) return res;
    }
    discard(res);
    throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot ${action}: too many redirects`);
  }

  /** Run `fn`, retrying Transient failures with backoff when `retry`. */
  async withRetries<T>(action: string, signal: AbortSignal | undefined, retry: boolean, fn: () => Promise<T>): Promise<T> {
    let left = retry ? this.#retryLimit : 0;
    let backoff = this.#backoffMs;
    let n = 0;
    for (;;) {
      if (signal?.aborted) throw new RegistryError('ERR_ABORTED', `Cannot ${action}: the request was aborted`, { cause: signal.reason });
      if (this.#closed) throw new RegistryError('ERR_CLOSED', `Cannot ${action}: the registry client is closed`);
      n++;
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof Transient)) throw e;
        if (left <= 0 || this.#closed || signal?.aborted) {
          throw new RegistryError(e.code, `Cannot ${action}: ${e.message}${n > 1 ? ` (gave up after ${n} attempts)` : ''}`, { ...(e.status !== undefined ? { status: e.status } : {}), ...(e.errCause !== undefined ? { cause: e.errCause } : {}) });
        }
        left--;
        this.retries++;
        const delay = backoff * (0.5 + Math.random() / 2);
        backoff = Math.min(backoff * 2, 5000);
        this.#logger.debug('registry: retrying', { host: this.host, action, reason: e.message, attempt: n, delayMs: Math.round(delay) });
        try {
          await sleep(delay, undefined, signal ? { signal } : undefined);
        } catch {
          throw new RegistryError('ERR_ABORTED', `Cannot ${action}: the request was aborted`, { cause: signal?.reason });
        }
      }
    }
  }

  /** Turn an unexpected status into an error (Transient for 5xx/408/429). */
  async statusError(action: string, res: http.IncomingMessage, notFound?: string): Promise<Error> {
    const status = res.statusCode ?? 0;
    let detail = '';
    try {
      detail = errorDetail(await readBody(res, 1 << 20));
    } catch { /* ignore */ }
    const text = `${this.host} answered ${status} ${res.statusMessage ?? ''}`.trimEnd() + (detail ? `: ${detail}` : '');
    if (status >= 500 || status === 408 || status === 429) return new Transient('ERR_REGISTRY_STATUS', text, status);
    if (status === 404 && notFound !== undefined) return new RegistryError('ERR_REGISTRY_NOT_FOUND', `Cannot ${action}: ${notFound} (${text})`, { status });
    return new RegistryError('ERR_REGISTRY_STATUS', `Cannot ${action}: ${text}`, { status });
  }

  async statusErrorFinal(action: string, res: http.IncomingMessage): Promise<Error> {
    const e = await this.statusError(action, res);
    return e instanceof Transient ? new RegistryError(e.code, `Cannot ${action}: ${e.message}`, e.status !== undefined ? { status: e.status } : {}) : e;
  }


  /** Drop pooled connections; later calls reject with ERR_CLOSED. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
    this.#tokens.clear();
  }
}
