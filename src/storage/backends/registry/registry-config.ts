/**
 * Config of the `registry` backend, nydusd's `device.backend.config` for `type: "registry"`:
 * `{scheme, host, repo, auth, skip_verify, ca_cert_files, timeout, connect_timeout, retry_limit,
 * registry_token, proxy: {url, ping_url, fallback, check_interval}}`.
 * @module
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../../../util/errors.js';
import { nullLogger, type Logger } from '../../../util/logger.js';
import { ConfigFields } from '../config-fields.js';
import { decodeBasicAuth, type Credentials } from '../../../registry/credentials.js';
import { checkRepo } from '../../../registry/reference.js';

/** A validated proxy section (dfdaemon, an nginx mirror …). */
export interface RegistryProxyConfig {
  /** `http(s)://host[:port]` of the proxy; blob reads go to `<url>/v2/<repo>/blobs/sha256:<id>`. */
  readonly url: URL;
  /** Health check URL (`ping_url`, default `<url>/v2/`). */
  readonly pingUrl: URL;
  /** Read from the registry when the proxy fails (`fallback`, default true). */
  readonly fallback: boolean;
  /** Seconds between health checks (`check_interval`, default 5). */
  readonly checkIntervalMs: number;
}

/** A validated registry backend config. */
export interface RegistryConfig {
  /** `scheme`: "https" (default) or "http". */
  readonly scheme: 'https' | 'http';
  /** `host[:port]` of the registry. */
  readonly host: string;
  /** Repository, e.g. `library/busybox`. */
  readonly repo: string;
  /** From `auth` (base64 `user:pass`). */
  readonly credentials: Credentials | undefined;
  /** `skip_verify`, default false. */
  readonly skipVerify: boolean;
  /** PEM contents of `ca_cert_files`. */
  readonly ca: string | undefined;
  /** Idle timeout in ms (`timeout` s, default 5). */
  readonly timeoutMs: number;
  /** `connect_timeout` s, default 5, in ms. */
  readonly connectTimeoutMs: number;
  /** Retries of a failed read: `retry_limit` (nydusd default 0), but at least 1 so a stale keep-alive socket never fails a read. */
  readonly retryLimit: number;
  /** `registry_token`: a Bearer token used until the registry rejects it. */
  readonly registryToken: string | undefined;
  readonly proxy: RegistryProxyConfig | undefined;
}

const WHERE = 'device.backend.config';

function bad(field: string, msg: string): UsageError {
  return new UsageError('ERR_BAD_CONFIG', `Cannot use backend config: ${WHERE}.${field} ${msg}`);
}

function parseProxy(raw: unknown, logger: Logger): RegistryProxyConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const f = new ConfigFields(raw, `${WHERE}.proxy`);
  const urlText = f.string('url', { emptyIsAbsent: true });
  const pingText = f.string('ping_url', { emptyIsAbsent: true });
  const fallback = f.boolean('fallback') ?? true;
  const checkInterval = f.number('check_interval', { min: 0.01, max: 86_400 }) ?? 5;
  f.boolean('use_http');
  f.number('check_pause_elapsed', { min: 0, max: 1e9 });
  f.string('dragonfly_scheduler_endpoint');
  f.warnUnknown(logger);
  if (urlText === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(urlText);
  } catch {
    throw bad('proxy.url', `must be http://host[:port] or https://host[:port], got ${JSON.stringify(urlText)}`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname.replace(/\/+$/, '') !== '' || url.search !== '' || url.username !== '') {
    throw bad('proxy.url', `must be http://host[:port] or https://host[:port] without a path, got ${JSON.stringify(urlText)}`);
  }
  let pingUrl: URL;
  try {
    pingUrl = new URL(pingText ?? `${url.origin}/v2/`);
  } catch {
    throw bad('proxy.ping_url', `must be a URL, got ${JSON.stringify(pingText)}`);
  }
  if (pingUrl.protocol !== 'http:' && pingUrl.protocol !== 'https:') throw bad('proxy.ping_url', 'must be an http or https URL');
  return { url, pingUrl, fallback, checkIntervalMs: checkInterval * 1000 };
}

/** Validate nydusd's JSON config of the registry backend (reads `ca_cert_files`). */
export function parseRegistryConfig(raw: unknown, options: { logger?: Logger } = {}): RegistryConfig {
  const logger = options.logger ?? nullLogger;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new UsageError('ERR_BAD_CONFIG', `Cannot use backend config: ${WHERE} must be an object`);
  const { proxy: rawProxy, ...rest } = raw as Record<string, unknown>;
  const f = new ConfigFields(rest, WHERE);
  const scheme = f.string('scheme', { emptyIsAbsent: true }) ?? 'https';
  if (scheme !== 'https' && scheme !== 'http') throw bad('scheme', `must be "https" or "http", got ${JSON.stringify(scheme)}`);
  const host = f.requiredString('host');
  if (!/^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9a-fA-F:]+\](?::\d{1,5})?$/.test(host)) throw bad('host', `must be host[:port] without a scheme or path, got ${JSON.stringify(host)}`);
  const repo = f.requiredString('repo');
  try {
    checkRepo(repo);
  } catch (e) {
    throw bad('repo', `is not a repository name: ${(e as Error).message}`);
  }
  const auth = f.string('auth', { emptyIsAbsent: true });
  let credentials: Credentials | undefined;
  if (auth !== undefined) {
    credentials = /^[A-Za-z0-9+/=\s]+$/.test(auth) ? decodeBasicAuth(auth) : undefined;
    if (!credentials) throw bad('auth', 'must be base64 of "user:password"');
  }
  const skipVerify = f.boolean('skip_verify') ?? false;
  const caFiles = f.stringArray('ca_cert_files') ?? [];
  let ca: string | undefined;
  if (caFiles.length > 0) {
    ca = caFiles.map((p, i) => {
      try {
        return readFileSync(p, 'utf8');
      } catch (e) {
        throw bad(`ca_cert_files[${i}]`, `cannot be read: ${(e as Error).message}`);
      }
    }).join('\n');
  }
  const timeout = f.number('timeout', { min: 0.001, max: 3600 }) ?? 5;
  const connectTimeout = f.number('connect_timeout', { min: 0.001, max: 3600 }) ?? 5;
  const retryLimit = f.number('retry_limit', { min: 0, max: 100, integer: true }) ?? 0;
  const registryToken = f.string('registry_token', { emptyIsAbsent: true });
  const blobUrlScheme = f.string('blob_url_scheme', { emptyIsAbsent: true });
  const redirectedHost = f.string('blob_redirected_host', { emptyIsAbsent: true });
  if (blobUrlScheme !== undefined || redirectedHost !== undefined) {
    logger.warn('registry backend: blob_url_scheme and blob_redirected_host are not supported; redirects are followed as the registry sends them', { field: `${WHERE}.blob_redirected_host` });
  }
  f.warnUnknown(logger);
  const proxy = parseProxy(rawProxy, logger);
  return {
    scheme, host, repo, credentials, skipVerify, ca,
    timeoutMs: timeout * 1000, connectTimeoutMs: connectTimeout * 1000,
    retryLimit: Math.max(1, retryLimit), registryToken, proxy,
  };
}
