/**
 * nydusd's configuration (the legacy v1 JSON that nydus-snapshotter writes), validated once into
 * a readonly object with defaults. A bad config is refused with a message naming the field.
 * @module
 */
import { UsageError } from '../util/errors.js';
import type { BackendConfig } from '../storage/blob-backend.js';

/** The validated daemon/mount configuration. */
export interface DaemonConfig {
  backend: BackendConfig;
  /**
   * `fs_driver`: "fusedev" (default) serves the whole file system over FUSE; "erofs" lets the
   * kernel's EROFS serve the bootstrap (metadata at kernel speed, no daemon round trip per lookup)
   * and serves only blob data, on demand, as FUSE files.
   */
  fsDriver: 'fusedev' | 'erofs';
  /**
   * `erofs_backing` (fs_driver "erofs" only): how EROFS reaches the bootstrap and blob files.
   * "file" mounts them directly (Linux 6.12+, no loop devices, one copy less per read); "loop"
   * puts a loop device under each; "auto" (default) is "file" where the kernel can, else "loop".
   */
  erofsBacking: 'auto' | 'file' | 'loop';
  cache: {
    /** blobcache / filecache persist under workDir; dummycache keeps nothing across restarts. */
    type: 'blobcache' | 'dummycache';
    workDir: string;
  };
  mode: 'direct' | 'cached';
  digestValidate: boolean;
  iostatsFiles: boolean;
  enableXattr: boolean;
  accessPattern: boolean;
  latestReadFiles: boolean;
  amplifyIo: number;
  /** `access_trace` (default true): record the files each mount reads, in order (API metrics/trace). */
  accessTrace: boolean;
  /** `cold_read`: how a mount hides network latency on reads with no prefetch list. */
  coldRead: ColdReadConfig;
  prefetch: {
    enable: boolean;
    threads: number;
    mergingSize: number;
    bandwidthRate: number;
    prefetchAll: boolean;
  };
}

/** `cold_read` settings. */
export interface ColdReadConfig {
  /**
   * `background_stream` (default false; the snapshotter's template turns it on): once the mount's reads have gone quiet for `quiet_ms`,
   * fetch the rest of its blobs in the background at prefetch priority (bounded by
   * fs_prefetch.bandwidth_rate), so later reads find everything local.
   */
  backgroundStream: boolean;
  /** `quiet_ms` (default 3000): how long no read may miss the cache before the stream starts. */
  quietMs: number;
  /**
   * `sibling_files` (default true): when a small file misses, the other small files of its
   * directory whose data sits next to it in the blob come in the same request.
   */
  siblingFiles: boolean;
  /** `sibling_max_size` (default 64 KiB): largest file counted as small. */
  siblingMaxSize: number;
  /**
   * `adaptive_amplify` (default true): size read amplification from the backend's measured
   * bandwidth × round-trip time (between amplify_io / 4 and amplify_io × 4), not the constant.
   */
  adaptiveAmplify: boolean;
}

const MAX_SIZE = 256 * 1024 * 1024;

function bad(field: string, why: string): never {
  throw new UsageError('ERR_BAD_CONFIG', `Cannot use config: ${field} ${why}`);
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) bad(field, 'must be an object');
  return v as Record<string, unknown>;
}

function bool(v: unknown, field: string, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== 'boolean') bad(field, `must be true or false, not ${JSON.stringify(v)}`);
  return v;
}

function num(v: unknown, field: string, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(field, `must be an integer in ${min}..${max}, not ${JSON.stringify(v)}`);
  return v;
}

/** Parse and validate nydusd's v1 JSON config text. */
export function parseDaemonConfig(text: string, where = 'config'): DaemonConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UsageError('ERR_BAD_CONFIG', `Cannot parse ${where}: not JSON (${(e as Error).message})`);
  }
  const top = obj(raw, '(top level)');
  if (top.version === 2) bad('version', '2 (TOML/JSON v2) is not supported yet; use the v1 JSON layout ("device": {"backend", "cache"})');
  const device = obj(top.device, 'device');
  const backend = obj(device.backend, 'device.backend');
  if (typeof backend.type !== 'string' || backend.type.length === 0) bad('device.backend.type', 'is missing (localfs, http, registry, ...)');
  const cache = obj(device.cache, 'device.cache');
  const cacheType = cache.type === undefined || cache.type === '' ? 'dummycache' : cache.type;
  if (cacheType !== 'blobcache' && cacheType !== 'filecache' && cacheType !== 'dummycache') bad('device.cache.type', `"${String(cacheType)}" is not blobcache, filecache or dummycache (fscache needs kernel support this machine lacks)`);
  const cacheConfig = obj(cache.config, 'device.cache.config');
  const workDir = cacheConfig.work_dir;
  if (cacheType !== 'dummycache' && (typeof workDir !== 'string' || workDir.length === 0)) bad('device.cache.config.work_dir', 'must be a non-empty path');
  const mode = top.mode ?? 'direct';
  if (mode !== 'direct' && mode !== 'cached') bad('mode', `"${String(mode)}" is not direct or cached`);
  const fp = obj(top.fs_prefetch, 'fs_prefetch');
  const fsDriver = top.fs_driver ?? 'fusedev';
  if (fsDriver !== 'fusedev' && fsDriver !== 'erofs') bad('fs_driver', `"${String(fsDriver)}" is not fusedev or erofs`);
  const cr = obj(top.cold_read, 'cold_read');
  const erofsBacking = top.erofs_backing ?? 'auto';
  if (erofsBacking !== 'auto' && erofsBacking !== 'file' && erofsBacking !== 'loop') bad('erofs_backing', `"${String(erofsBacking)}" is not auto, file or loop`);
  return {
    fsDriver,
    erofsBacking,
    backend: { type: backend.type, config: obj(backend.config, 'device.backend.config') },
    cache: { type: cacheType === 'dummycache' ? 'dummycache' : 'blobcache', workDir: typeof workDir === 'string' ? workDir : '' },
    mode,
    digestValidate: bool(top.digest_validate, 'digest_validate', false),
    iostatsFiles: bool(top.iostats_files, 'iostats_files', false),
    enableXattr: bool(top.enable_xattr, 'enable_xattr', false),
    accessPattern: bool(top.access_pattern, 'access_pattern', false),
    latestReadFiles: bool(top.latest_read_files, 'latest_read_files', false),
    amplifyIo: num(top.amplify_io, 'amplify_io', 1 << 20, 0, MAX_SIZE),
    accessTrace: bool(top.access_trace, 'access_trace', true),
    coldRead: {
      backgroundStream: bool(cr.background_stream, 'cold_read.background_stream', false),
      quietMs: num(cr.quiet_ms, 'cold_read.quiet_ms', 3000, 0, 3_600_000),
      siblingFiles: bool(cr.sibling_files, 'cold_read.sibling_files', true),
      siblingMaxSize: num(cr.sibling_max_size, 'cold_read.sibling_max_size', 64 << 10, 0, MAX_SIZE),
      adaptiveAmplify: bool(cr.adaptive_amplify, 'cold_read.adaptive_amplify', true),
    },
    prefetch: {
      enable: bool(fp.enable, 'fs_prefetch.enable', false),
      threads: num(fp.threads_count, 'fs_prefetch.threads_count', 8, 1, 1024),
      mergingSize: num(fp.merging_size, 'fs_prefetch.merging_size', 1 << 20, 0, MAX_SIZE),
      bandwidthRate: num(fp.bandwidth_rate, 'fs_prefetch.bandwidth_rate', 0, 0, Number.MAX_SAFE_INTEGER),
      prefetchAll: bool(fp.prefetch_all, 'fs_prefetch.prefetch_all', true),
    },
  };
}
