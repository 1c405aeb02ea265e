/**
 * The `registry` backend: blob `<id>` is `GET /v2/<repo>/blobs/sha256:<id>` with a `Range` on an
 * OCI registry (RegistryClient does auth, pooling, retries). With `proxy.url` set, reads go to
 * the proxy first (same path); when it fails and `fallback` is on, the read goes to the registry
 * and the proxy is marked unhealthy until a health check (`GET ping_url` every
 * `check_interval` s) answers again.
 * @module
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { SecureContext } from 'node:tls';
import { BackendError } from '../../../util/errors.js';
import { nullLogger, type Logger } from '../../../util/logger.js';
import { newBackendMetrics, type BackendMetrics, type BlobBackend } from '../../blob-backend.js';
import { RegistryClient, type RegistryClientOptions } from '../../../registry/registry-client.js';
import { RegistryError } from '../../../registry/registry-error.js';
import { trustingAlso } from '../../../registry/registry-transport.js';
import { EIO, aborted, badBlobId, blobNotFound, checkReadArgs, closedBackend, isPlainBlobId, measuredRead } from '../backend-errors.js';
import type { RegistryConfig } from './registry-config.js';

/** Metrics of the registry backend: the common ones plus the proxy's share. */
export interface RegistryBackendMetrics extends BackendMetrics {
  /** Reads answered by the proxy. */
  proxyReads: number;
  /** Reads that failed at the proxy and went to the registry. */
  proxyFallbacks: number;
}

/** A registry backend. */
export interface RegistryBlobBackend extends BlobBackend {
  readonly metrics: RegistryBackendMetrics;
  /** Whether reads currently go to the proxy (false without a proxy). */
  readonly proxyHealthy: boolean;
  /** Run one proxy health check now; resolves to the new health. */
  checkProxy(): Promise<boolean>;
}

/** Options of {@link createRegistryBackend}. */
export interface RegistryBackendOptions {
  logger?: Logger;
  /** First retry delay in ms (default 100). */
  backoffMs?: number;
}

/** Create a registry backend. */
export function createRegistryBackend(config: RegistryConfig, options: RegistryBackendOptions = {}): RegistryBlobBackend {
  return new RegistryBackend(config, options);
}

const TYPE = 'registry';

class RegistryBackend implements RegistryBlobBackend {
  readonly type = TYPE;
  readonly metrics: RegistryBackendMetrics = { ...newBackendMetrics(), proxyReads: 0, proxyFallbacks: 0 };
  readonly #config: RegistryConfig;
  readonly #logger: Logger;
  readonly #client: RegistryClient;
  readonly #proxy: RegistryClient | undefined;
  readonly #timer: NodeJS.Timeout | undefined;
  #proxyHealthy: boolean;
  #closed = false;

  constructor(config: RegistryConfig, options: RegistryBackendOptions) {
    this.#config = config;
    this.#logger = (options.logger ?? nullLogger).child({ backend: TYPE, host: config.host, repo: config.repo });
    const common: RegistryClientOptions = {
      insecure: config.skipVerify,
      timeoutMs: config.timeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
      logger: this.#logger,
      ...(config.ca !== undefined ? { ca: config.ca } : {}),
      ...(config.credentials ? { credentials: config.credentials } : {}),
      ...(options.backoffMs !== undefined ? { backoffMs: options.backoffMs } : {}),
    };
    this.#client = new RegistryClient(config.host, { ...common, plainHttp: config.scheme === 'http', retryLimit: config.retryLimit });
    if (config.registryToken !== undefined) this.#client.setStaticToken(config.registryToken);
    this.#proxyHealthy = config.proxy !== undefined;
    if (config.proxy) {
      // The proxy gets one attempt: on failure the registry is the retry.
      this.#proxy = new RegistryClient(config.proxy.url.host, { ...common, plainHttp: config.proxy.url.protocol === 'http:', retryLimit: 0 });
      if (config.registryToken !== undefined) this.#proxy.setStaticToken(config.registryToken);
      this.#timer = setInterval(() => void this.checkProxy(), config.proxy.checkIntervalMs);
      this.#timer.unref();
    }
  }

  get proxyHealthy(): boolean {
    return this.#proxyHealthy;
  }

  #digest(blobId: string): string {
    if (!isPlainBlobId(blobId) || !/^[0-9a-f]{64}$/.test(blobId)) throw badBlobId(TYPE, blobId);
    return `sha256:${blobId}`;
  }

  /** Map a client error to the backend's codes. */
  #map(e: unknown, blobId: string, signal: AbortSignal | undefined): unknown {
    if (!(e instanceof RegistryError)) return e;
    const cause = { errno: EIO, cause: e };
    switch (e.code) {
      case 'ERR_REGISTRY_NOT_FOUND':
        return blobNotFound(TYPE, blobId, e.message, e);
      case 'ERR_REGISTRY_OUT_OF_RANGE':
        return new BackendError('ERR_OUT_OF_RANGE', e.message, { ...cause, ...(e.offset !== undefined ? { offset: e.offset } : {}) });
      case 'ERR_ABORTED':
        return signal ? aborted(blobId, signal) : new BackendError('ERR_ABORTED', e.message, { errno: 4, cause: e });
      case 'ERR_CLOSED':
        return closedBackend(TYPE);
      case 'ERR_REGISTRY_TIMEOUT':
        return new BackendError('ERR_TIMEOUT', e.message, cause);
      case 'ERR_REGISTRY_CONNECTION':
      case 'ERR_REGISTRY_TLS':
        return new BackendError('ERR_CONNECTION', e.message, cause);
      case 'ERR_REGISTRY_SHORT_READ':
        return new BackendError('ERR_SHORT_READ', e.message, cause);
      case 'ERR_REGISTRY_UNAUTHORIZED':
        return new BackendError('ERR_UNAUTHORIZED', e.message, cause);
      case 'ERR_REGISTRY_STATUS':
        return new BackendError('ERR_HTTP_STATUS', e.message, cause);
      default:
        return new BackendError('ERR_BAD_RESPONSE', e.message, cause);
    }
  }

  async blobSize(blobId: string, signal?: AbortSignal): Promise<number> {
    if (typeof blobId !== 'string') throw badBlobId(TYPE, String(blobId));
    if (this.#closed) throw closedBackend(TYPE);
    const digest = this.#digest(blobId);
    let size: number | undefined;
    try {
      size = await this.#client.headBlob(this.#config.repo, digest, signal ? { signal } : {});
    } catch (e) {
      throw this.#map(e, blobId, signal);
    }
    if (size === undefined) throw blobNotFound(TYPE, blobId, `HEAD /v2/${this.#config.repo}/blobs/${digest} on ${this.#config.host} answered 404`);
    return size;
  }

  read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    checkReadArgs(blobId, offset, length);
    return measuredRead(this.metrics, async () => {
      if (signal?.aborted) throw aborted(blobId, signal);
      if (this.#closed) throw closedBackend(TYPE);
      const digest = this.#digest(blobId);
      if (length === 0) return new Uint8Array(0);
      const repo = this.#config.repo;
      if (this.#proxy && this.#proxyHealthy) {
        try {
          const out = await this.#proxy.readBlob(repo, digest, offset, length, signal);
          this.metrics.proxyReads++;
          return out;
        } catch (e) {
          const code = e instanceof RegistryError ? e.code : '';
          if (!this.#config.proxy?.fallback || code === 'ERR_ABORTED' || code === 'ERR_CLOSED' || code === 'ERR_REGISTRY_OUT_OF_RANGE' || this.#closed) {
            throw this.#map(e, blobId, signal);
          }
          this.#proxyHealthy = false;
          this.metrics.proxyFallbacks++;
          this.#logger.warn('registry backend: the proxy failed, reading from the registry until it is healthy again', { proxy: this.#config.proxy.url.origin, error: (e as Error).message });
        }
      }
      try {
        return await this.#client.readBlob(repo, digest, offset, length, signal);
      } catch (e) {
        throw this.#map(e, blobId, signal);
      }
    });
  }

  /** TLS context of the proxy health check (built on first use). */
  #proxyTls: SecureContext | undefined;

  /** GET ping_url; any answer below 500 counts as healthy. */
  async checkProxy(): Promise<boolean> {
    const p = this.#config.proxy;
    if (!p || this.#closed) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const mod = p.pingUrl.protocol === 'https:' ? https : http;
      const req = mod.get(p.pingUrl, {
        agent: false,
        rejectUnauthorized: !this.#config.skipVerify,
        // The CA files are trusted besides the usual roots, as for the registry itself.
        ...(this.#config.ca !== undefined ? { secureContext: this.#proxyTls ??= trustingAlso(this.#config.ca) } : {}),
      }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 500) < 500);
      });
      req.setTimeout(this.#config.connectTimeoutMs, () => req.destroy());
      req.on('error', () => resolve(false));
    });
    if (ok !== this.#proxyHealthy && !this.#closed) {
      this.#logger.info(`registry backend: the proxy is ${ok ? 'healthy again' : 'unhealthy'}`, { proxy: p.url.origin });
      this.#proxyHealthy = ok;
    }
    return ok;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#client.close();
    await this.#proxy?.close();
  }
}
