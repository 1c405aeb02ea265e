/**
 * The blob cache: uncompressed, verified chunks of blobs, fetched on demand from a backend and
 * kept under a work directory shared by every mount of the daemon.
 * @module
 */
import type { Compressor } from '../util/compress.js';
import type { Digester } from '../util/digest.js';
import type { ChunkRecord } from '../format/v6/chunk-record.js';
import type { BlobBackend } from './blob-backend.js';

/** What the cache needs to know about a blob (from the bootstrap's blob table). */
export interface BlobInfo {
  blobId: string;
  compressor: Compressor;
  digester: Digester;
  chunkCount: number;
  /** Σ aligned uncompressed chunk sizes: the size of the cache data file. */
  uncompressedSize: number;
  compressedSize: number;
  /**
   * The chunk-table record of chunk `index` of this blob, or undefined when the bootstrap has
   * none (the daemon supplies `image.chunkRecordByIndex(blobIndex, index)`). Optional: with it,
   * a fetch is extended forward to the following chunks (index + 1, + 2, … while they are
   * contiguous in the blob, not cached and within `amplifyIo`); without it, only the requested
   * chunks are fetched.
   */
  chunkAt?: (index: number) => ChunkRecord | undefined;
}

/** Cache behaviour, from nydusd's config. */
export interface BlobCacheOptions {
  /** Directory for `<blob id>.blob.data` and `<blob id>.chunk_map` (`device.cache.config.work_dir`). */
  workDir: string;
  /** Verify every chunk fetched from the backend against its digest (`digest_validate`). */
  validate: boolean;
  /** Merge adjacent missing chunks into one backend request up to this many bytes (`amplify_io`). */
  amplifyIo: number;
  /**
   * Size amplification from the backend's measured bandwidth × round-trip time, within
   * [amplifyIo / 4, amplifyIo × 4] (`cold_read.adaptive_amplify`; default false).
   */
  adaptiveAmplify?: boolean;
  /** Background prefetch (`fs_prefetch`). */
  prefetch: {
    /** Concurrent prefetch requests (`threads_count`). */
    threads: number;
    /** Largest merged prefetch request in bytes (`merging_size`). */
    mergingSize: number;
    /** Prefetch bandwidth cap in bytes per second, 0 = none (`bandwidth_rate`). */
    bandwidthRate: number;
  };
}

/** Counters (exported by /api/v1/metrics/blobcache). */
export interface BlobCacheMetrics {
  /** Chunks served from the cache file. */
  hits: number;
  /** Chunks that had to be fetched. */
  misses: number;
  /** Bytes fetched by prefetch. */
  prefetchBytes: number;
  /** Chunks fetched by prefetch. */
  prefetchChunks: number;
  /** Chunks that failed (backend, decompression or digest). */
  errors: number;
  /** Fetches in flight now. */
  inflight: number;
}

/** Options of CachedBlob.readChunks. */
export interface ReadChunksOptions {
  /**
   * Chunks to fetch in the same requests when they are missing and not in flight (e.g. the small
   * files next to the one read); not waited for, and not returned.
   */
  alongWith?: readonly ChunkRecord[];
}

/** What one blob fetched (for a mount's metrics: the sum over its blobs). */
export interface BlobFetchStats {
  /** Backend requests made, and compressed bytes they brought. */
  requests: number;
  bytes: number;
  /** Of those, made by prefetch (or background streaming). */
  prefetchRequests: number;
  prefetchBytes: number;
  /** Chunks a reader found ready that prefetch had brought (each counted once). */
  prefetchHits: number;
  /** Chunks readers asked for that had to be fetched (or joined a fetch in flight). */
  demandMisses: number;
}

/** One cached blob. */
export interface CachedBlob {
  readonly info: BlobInfo;
  readonly stats: BlobFetchStats;
  /** True when chunk `index` is in the cache file. */
  isReady(index: number): boolean;
  /**
   * The uncompressed data of each chunk, in order. Missing chunks are fetched (once, however many
   * readers ask at the same time), decompressed, verified when validation is on, and written to
   * the cache file. A chunk that cannot be fetched or verified rejects with an EIO error.
   */
  readChunks(chunks: readonly ChunkRecord[], signal?: AbortSignal, options?: ReadChunksOptions): Promise<Uint8Array[]>;
  /**
   * Fetch chunks into the cache in the background (lower priority than readChunks; with `low`,
   * also lower than other prefetch: background streaming).
   */
  prefetch(chunks: readonly ChunkRecord[], options?: { low?: boolean }): Promise<void>;
  /**
   * Call `listener` with every chunk fetched and verified from now on (demand, amplification or
   * prefetch), as soon as it is decoded. Returns the function that stops it.
   */
  onData(listener: (rec: ChunkRecord, data: Uint8Array) => void): () => void;
}

/** The daemon-wide cache of all blobs. */
export interface BlobCacheManager {
  readonly metrics: BlobCacheMetrics;
  /** The cached blob for `info`, reading through `backend` (one object per blob id, counted per open). */
  open(info: BlobInfo, backend: BlobBackend): CachedBlob;
  /**
   * Give back one open of `blob`: after the last one its files are flushed and closed (a later
   * open finds its chunks again), so that deleting them frees their space.
   */
  release(blob: CachedBlob): Promise<void>;
  /** Flush chunk maps and close files. */
  close(): Promise<void>;
}
