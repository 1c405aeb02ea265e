/**
 * Config of the `http` backend, nydusd's `http-proxy` (`device.backend.config`):
 * `{addr, path, timeout, connect_timeout, retry_limit, skip_verify}`.
 * @module
 */
import { UsageError } from '../../../util/errors.js';
import { nullLogger, type Logger } from '../../../util/logger.js';
import { ConfigFields } from '../config-fields.js';

/** Where the server listens. */
export type HttpTarget =
  | { kind: 'tcp'; protocol: 'http:' | 'https:'; hostname: string; port: number; basePath: string }
  | { kind: 'unix'; socketPath: string };

/** A validated http backend config. */
export interface HttpConfig {
  /** `addr` as given: `http://host:port[/prefix]`, `https://…`, or an absolute unix socket path. */
  readonly addr: string;
  readonly target: HttpTarget;
  /** URL prefix of blobs (`path`, default "/"), normalised to "" or "/a/b". */
  readonly path: string;
  /** Whole-request timeout in ms (`timeout` seconds, default 5). */
  readonly timeoutMs: number;
  /** Connect timeout in ms (`connect_timeout` seconds, default 5). */
  readonly connectTimeoutMs: number;
  /** Retries after the first attempt (`retry_limit`, default 2). */
  readonly retryLimit: number;
  /** Accept any TLS certificate (`skip_verify`, default false). */
  readonly skipVerify: boolean;
}

const WHERE = 'device.backend.config';

function bad(field: string, msg: string): UsageError {
  return new UsageError('ERR_BAD_CONFIG', `Cannot use backend config: ${WHERE}.${field} ${msg}`);
}

/** Parse `addr`. */
export function parseHttpAddr(addr: string): HttpTarget {
  if (addr.startsWith('/')) return { kind: 'unix', socketPath: addr };
  let url: URL;
  try {
    url = new URL(addr);
  } catch {
    throw bad('addr', `must be http://host[:port], https://host[:port] or an absolute unix socket path, got ${JSON.stringify(addr)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad('addr', `has scheme ${url.protocol.replace(/:$/, '')}; only http and https are supported`);
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') throw bad('addr', 'must not carry credentials, a query or a fragment');
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (hostname === '') throw bad('addr', 'has no host');
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return { kind: 'tcp', protocol: url.protocol, hostname, port, basePath: url.pathname.replace(/\/+$/, '') };
}

/** Normalise `path`: a leading "/", no trailing "/". */
function normalisePath(p: string): string {
  if (/[?#\s]/.test(p)) throw bad('path', `must be a plain URL path, got ${JSON.stringify(p)}`);
  const s = `/${p}`.replace(/\/+/g, '/').replace(/\/$/, '');
  return s;
}

/** Validate nydusd's JSON config of the http-proxy backend. */
export function parseHttpConfig(raw: unknown, options: { logger?: Logger } = {}): HttpConfig {
  const f = new ConfigFields(raw, WHERE);
  const addr = f.requiredString('addr');
  const target = parseHttpAddr(addr);
  const path = normalisePath(f.string('path', { emptyIsAbsent: true }) ?? '/');
  const timeout = f.number('timeout', { min: 0.001, max: 3600 }) ?? 5;
  const connectTimeout = f.number('connect_timeout', { min: 0.001, max: 3600 }) ?? 5;
  const retryLimit = f.number('retry_limit', { min: 0, max: 100, integer: true }) ?? 2;
  const skipVerify = f.boolean('skip_verify') ?? false;
  f.warnUnknown(options.logger ?? nullLogger);
  return { addr, target, path, timeoutMs: timeout * 1000, connectTimeoutMs: connectTimeout * 1000, retryLimit, skipVerify };
}
