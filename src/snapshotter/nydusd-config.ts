/**
 * nydusd's per-image config. `--nydusd-config` gives a template in nydusd's v1 JSON layout (as
 * nydus-snapshotter's does); for each image the snapshotter fills in where the blobs are — the
 * registry backend's scheme, host, repo, auth and skip_verify — and points the blob cache at the
 * snapshotter's shared cache directory. A template whose backend is not `registry` (localfs, an
 * http proxy) is used as it is.
 * @module
 */
import { UsageError } from '../util/errors.js';
import type { RegistryLocation } from './image-resolver.js';

/** A parsed template. */
export type NydusdTemplate = Readonly<Record<string, unknown>>;

/**
 * The template used without `--nydusd-config`: registry backend, blobcache, and prefetch of the
 * start-up files an image's prefetch table (or prefetch profile) lists (8 threads, 4 MiB
 * requests), never of a whole image at mount (see nydusdConfigFor). Once an image's reads have
 * been quiet for 5 s (its containers have started), the rest of it streams in at low priority
 * (`cold_read.background_stream`), so that later reads find it local.
 */
export const DEFAULT_NYDUSD_TEMPLATE: NydusdTemplate = {
  device: {
    backend: { type: 'registry', config: { timeout: 30, connect_timeout: 10, retry_limit: 3 } },
    cache: { type: 'blobcache', config: {} },
  },
  mode: 'direct', digest_validate: false, enable_xattr: true, iostats_files: false, access_pattern: false,
  latest_read_files: false, amplify_io: 1048576,
  fs_prefetch: { enable: true, threads_count: 8, merging_size: 4 << 20, bandwidth_rate: 0, prefetch_all: false },
  cold_read: { background_stream: true, quiet_ms: 5000 },
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parse a template; `where` names it in errors. */
export function parseNydusdTemplate(text: string, where: string): NydusdTemplate {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError('ERR_BAD_CONFIG', `Cannot parse ${where}: not JSON (${(e as Error).message})`);
  }
  if (!isObject(v)) throw new UsageError('ERR_BAD_CONFIG', `Cannot use ${where}: it must be a JSON object`);
  if (v.device !== undefined && !isObject(v.device)) throw new UsageError('ERR_BAD_CONFIG', `Cannot use ${where}: device must be an object`);
  const device = (v.device ?? {}) as Record<string, unknown>;
  for (const k of ['backend', 'cache']) {
    if (device[k] !== undefined && !isObject(device[k])) throw new UsageError('ERR_BAD_CONFIG', `Cannot use ${where}: device.${k} must be an object`);
  }
  return v;
}

/**
 * The config text of one image: `template` with the registry location and the shared cache dir.
 * `startupListed` says whether the image's prefetch table names its start-up files (it was
 * converted with `--prefetch-patterns`); when it does not (the table is empty or only "/", what
 * nydusify writes by default), a template that prefetches the table but not everything
 * (`prefetch_all` false) gets no prefetch for this image: "/" would mean the whole image.
 */
export function nydusdConfigFor(template: NydusdTemplate, location: RegistryLocation, cacheDir: string, startupListed = true): string {
  const device = (isObject(template.device) ? template.device : {}) as Record<string, unknown>;
  const backend = (isObject(device.backend) ? device.backend : { type: 'registry' }) as Record<string, unknown>;
  const cache = (isObject(device.cache) ? device.cache : { type: 'blobcache' }) as Record<string, unknown>;
  const backendConfig = isObject(backend.config) ? backend.config : {};
  const filledBackend = backend.type === undefined || backend.type === 'registry'
    ? {
      ...backend, type: 'registry',
      config: {
        ...backendConfig, scheme: location.scheme, host: location.host, repo: location.repo,
        ...(location.auth !== undefined ? { auth: location.auth } : {}),
        ...(location.skipVerify ? { skip_verify: true } : {}),
        ...(location.caFiles.length > 0 ? { ca_cert_files: location.caFiles } : {}),
      },
    }
    : backend;
  const cacheType = typeof cache.type === 'string' && cache.type !== '' ? cache.type : 'blobcache';
  const cacheConfig = isObject(cache.config) ? cache.config : {};
  const fp = isObject(template.fs_prefetch) ? template.fs_prefetch : undefined;
  const noStartupPrefetch = fp !== undefined && fp.enable === true && fp.prefetch_all !== true && !startupListed;
  return JSON.stringify({
    ...template,
    device: { ...device, backend: filledBackend, cache: { ...cache, type: cacheType, config: { ...cacheConfig, work_dir: cacheDir } } },
    ...(noStartupPrefetch ? { fs_prefetch: { ...fp, enable: false } } : {}),
  });
}
