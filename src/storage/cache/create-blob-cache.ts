/**
 * The one factory of the blob cache: a file cache under `workDir` shared by every mount of the
 * daemon (one CachedBlob per blob id), with one prefetch queue and one bandwidth limiter.
 * @module
 */
import { mkdirSync } from 'node:fs';
import { BackendError, FormatError } from '../../util/errors.js';
import { nullLogger, type Logger } from '../../util/logger.js';
import type { BlobBackend } from '../blob-backend.js';
import type { BlobCacheManager, BlobCacheMetrics, BlobCacheOptions, BlobInfo, CachedBlob } from '../blob-cache.js';
import { isPlainBlobId } from '../blob-id.js';
import { FileCachedBlob, type CachedBlobContext } from './cached-blob.js';
import { PrefetchQueue } from './prefetch-queue.js';
import { createRateLimiter, systemClock, type Clock } from './rate-limiter.js';
import { RecentChunks } from './recent-chunks.js';
import { LinkEstimator } from './link-estimator.js';
import { createChunkDecoder, type ChunkDecoder } from '../../blob/chunk-decoder.js';

/** Collaborators of the cache (all optional). */
export interface BlobCacheDeps {
  logger?: Logger;
  /** Time source of the prefetch bandwidth limiter (tests). */
  clock?: Clock;
  /** Decoder of fetched chunks (default: createChunkDecoder(), on worker threads). */
  decoder?: ChunkDecoder;
}

function checkOptions(o: BlobCacheOptions): void {
  const int = (v: unknown, min: number, max: number, name: string): void => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new RangeError(`Cannot create blob cache: ${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  };
  if (typeof o.workDir !== 'string' || o.workDir === '') throw new TypeError('Cannot create blob cache: workDir must be a non-empty path');
  if (typeof o.validate !== 'boolean') throw new TypeError('Cannot create blob cache: validate must be a boolean');
  int(o.amplifyIo, 0, 2 ** 40, 'amplifyIo');
  int(o.prefetch.threads, 1, 1024, 'prefetch.threads');
  int(o.prefetch.mergingSize, 0, 2 ** 40, 'prefetch.mergingSize');
  if (typeof o.prefetch.bandwidthRate !== 'number' || !(o.prefetch.bandwidthRate >= 0)) throw new RangeError(`Cannot create blob cache: prefetch.bandwidthRate must be ≥ 0, got ${String(o.prefetch.bandwidthRate)}`);
}

/** Create the cache. The work dir is created when missing. */
export function createBlobCacheManager(options: BlobCacheOptions, deps: BlobCacheDeps = {}): BlobCacheManager {
  checkOptions(options);
  return new FileCacheManager(options, deps);
}

/** Bytes of just-decoded chunks kept in memory for the reads that usually follow (recent-chunks.ts). */
const RECENT_CHUNKS_BUDGET = 32 << 20;

class FileCacheManager implements BlobCacheManager {
  readonly metrics: BlobCacheMetrics = { hits: 0, misses: 0, prefetchBytes: 0, prefetchChunks: 0, errors: 0, inflight: 0 };
  readonly #ctx: CachedBlobContext;
  readonly #blobs = new Map<string, FileCachedBlob>();
  /** Opens not yet released, per blob id. */
  readonly #opens = new Map<string, number>();
  #dirMade = false;
  #closed = false;

  constructor(options: BlobCacheOptions, deps: BlobCacheDeps) {
    const o: BlobCacheOptions = { ...options, prefetch: { ...options.prefetch } };
    this.#ctx = {
      options: o,
      metrics: this.metrics,
      logger: deps.logger ?? nullLogger,
      queue: new PrefetchQueue(o.prefetch.threads),
      limiter: createRateLimiter(o.prefetch.bandwidthRate, deps.clock ?? systemClock),
      recent: new RecentChunks(RECENT_CHUNKS_BUDGET),
      decoder: deps.decoder ?? createChunkDecoder(),
      link: new LinkEstimator(),
    };
  }

  open(info: BlobInfo, backend: BlobBackend): CachedBlob {
    if (this.#closed) throw new FormatError('ERR_CLOSED', `Cannot open blob ${info.blobId} in the cache: it is closed`, { errno: 5 });
    if (typeof info.blobId !== 'string' || !isPlainBlobId(info.blobId)) {
      throw new FormatError('ERR_BAD_BLOB_ID', `Cannot open blob ${JSON.stringify(info.blobId)} in the cache: not a plain blob id`, { errno: 5 });
    }
    if (!Number.isSafeInteger(info.chunkCount) || info.chunkCount < 0 || !Number.isSafeInteger(info.uncompressedSize) || info.uncompressedSize < 0) {
      throw new FormatError('ERR_BAD_BLOB', `Cannot open blob ${info.blobId} in the cache: chunk count ${info.chunkCount} / size ${info.uncompressedSize} are invalid`, { errno: 5 });
    }
    const had = this.#blobs.get(info.blobId);
    if (had) {
      had.adopt(info, backend);
      this.#opens.set(info.blobId, (this.#opens.get(info.blobId) ?? 0) + 1);
      return had;
    }
    if (!this.#dirMade) {
      try {
        mkdirSync(this.#ctx.options.workDir, { recursive: true });
      } catch (e) {
        throw new BackendError('ERR_CACHE_IO', `Cannot create the cache work dir ${this.#ctx.options.workDir}: ${(e as Error).message}`, { errno: 5, cause: e });
      }
      this.#dirMade = true;
    }
    const blob = new FileCachedBlob(info, backend, this.#ctx);
    this.#blobs.set(info.blobId, blob);
    this.#opens.set(info.blobId, 1);
    return blob;
  }

  async release(blob: CachedBlob): Promise<void> {
    const id = blob.info.blobId;
    const mine = this.#blobs.get(id);
    if (mine !== blob) return;
    const left = (this.#opens.get(id) ?? 1) - 1;
    if (left > 0) {
      this.#opens.set(id, left);
      return;
    }
    this.#opens.delete(id);
    this.#blobs.delete(id);
    await mine.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#ctx.queue.close();
    await Promise.all([...this.#blobs.values()].map((b) => b.close()));
    this.#blobs.clear();
    this.#opens.clear();
    await this.#ctx.decoder.close();
  }
}
