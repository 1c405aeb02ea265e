/**
 * The one factory of blob backends, keyed by nydusd's `device.backend.type`.
 * @module
 */
import { UsageError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { BackendConfig, BlobBackend } from './blob-backend.js';
import { createLocalfsBackend, parseLocalfsConfig } from './backends/localfs/localfs-backend.js';
import { createHttpBackend } from './backends/http/http-backend.js';
import { parseHttpConfig } from './backends/http/http-config.js';
import { createRegistryBackend } from './backends/registry/registry-backend.js';
import { parseRegistryConfig } from './backends/registry/registry-config.js';

/** Options of {@link createBackend}. */
export interface CreateBackendOptions {
  /** Where the backend logs (retries at debug, unknown config fields at warn). */
  logger?: Logger;
}

/** Backend types this build understands. */
export const BACKEND_TYPES = ['localfs', 'http', 'http-proxy', 'registry'] as const;

/**
 * Create the backend `config.type` from its JSON config (`device.backend`), validating it.
 * Throws UsageError `ERR_BAD_CONFIG` naming the bad field.
 *
 * - `localfs`: `{dir, blob_file?, alt_dirs?}`
 * - `http` / `http-proxy`: `{addr, path = "/", timeout = 5, connect_timeout = 5, retry_limit = 2, skip_verify = false}`
 * - `registry`: `{scheme = "https", host, repo, auth?, skip_verify = false, ca_cert_files?, timeout = 5, connect_timeout = 5,
 *   retry_limit = 0 (at least 1 is used), registry_token?, proxy?: {url, ping_url?, fallback = true, check_interval = 5}}`
 */
export function createBackend(config: BackendConfig, options: CreateBackendOptions = {}): BlobBackend {
  if (config === null || typeof config !== 'object') throw new UsageError('ERR_BAD_CONFIG', 'Cannot create backend: device.backend must be an object');
  const type: unknown = config.type;
  if (typeof type !== 'string' || type === '') throw new UsageError('ERR_BAD_CONFIG', 'Cannot create backend: device.backend.type must be a non-empty string');
  const raw: unknown = config.config ?? {};
  const logger = options.logger;
  const o = logger ? { logger } : {};
  switch (type) {
    case 'localfs':
      return createLocalfsBackend(parseLocalfsConfig(raw, o), o);
    case 'http':
    case 'http-proxy':
      return createHttpBackend(parseHttpConfig(raw, o), { ...o, type });
    case 'registry':
      return createRegistryBackend(parseRegistryConfig(raw, o), o);
    case 'oss':
    case 's3':
    case 'localdisk':
      throw new UsageError('ERR_BAD_CONFIG', `Cannot create backend: device.backend.type "${type}" is not supported by this build (supported: ${BACKEND_TYPES.join(', ')})`);
    default:
      throw new UsageError('ERR_BAD_CONFIG', `Cannot create backend: unknown device.backend.type "${type}" (supported: ${BACKEND_TYPES.join(', ')})`);
  }
}
