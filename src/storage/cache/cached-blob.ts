/**
 * One blob in the file cache: `<blob id>.blob.data` holds the uncompressed chunks at their
 * uncompressed offsets (a sparse file of `info.uncompressedSize` bytes), `<blob id>.chunk_map`
 * says which are there (see chunk-map.ts).
 *
 * Reads: ready chunks are pread from the data file (adjacent ones in one read). Missing ones are
 * fetched once however many readers want them — one in-flight entry per chunk index, joined by
 * every later reader until the chunk is marked ready — in requests planned by fetch-plan.ts
 * (merged and amplified up to `amplifyIo`). Each fetched chunk is decompressed and, with
 * `validate`, digest-checked (by the ChunkDecoder, on worker threads), written to the data file (pwrite), marked ready in
 * memory and handed to its readers; then, after an fdatasync of the data file (group-committed),
 * its bit may reach the chunk map file. A chunk that fails is rejected with errno EIO, counted in `errors`, and not marked
 * ready, so a later read tries again.
 *
 * Prefetch: jobs go through the manager's PrefetchQueue (at most `threads` at once) and rate
 * limiter; a job takes its chunks only when it runs, skipping those already cached or in flight,
 * so foreground reads never wait behind queued prefetch, and join it once it is in flight.
 * @module
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BackendError, FormatError, NydusError } from '../../util/errors.js';
import type { Logger } from '../../util/logger.js';
import type { ChunkRecord } from '../../format/v6/chunk-record.js';
import type { ChunkDecoder, DecodeResult } from '../../blob/chunk-decoder.js';
import type { BlobBackend } from '../blob-backend.js';
import type { BlobCacheMetrics, BlobCacheOptions, BlobFetchStats, BlobInfo, CachedBlob, ReadChunksOptions } from '../blob-cache.js';
import type { LinkEstimator } from './link-estimator.js';
import { openChunkMap, type ChunkStateMap } from './chunk-map.js';
import { SyncCoalescer, preadExact, pwritevAll } from './file-io.js';
import type { RecentChunks } from './recent-chunks.js';
import { planFetches, spanOf } from './fetch-plan.js';
import type { PrefetchQueue } from './prefetch-queue.js';
import type { RateLimiter } from './rate-limiter.js';

const EIO = 5;
const EINTR = 4;
/** Ready chunks closer than this in the data file are read together. */
const READ_GAP = 4096;
/** Largest single pread of ready chunks. */
const READ_MAX = 4 << 20;

/** What a CachedBlob shares with its manager. */
export interface CachedBlobContext {
  options: BlobCacheOptions;
  metrics: BlobCacheMetrics;
  logger: Logger;
  queue: PrefetchQueue;
  limiter: RateLimiter;
  /** Chunks just decoded, answered from memory before the data file. */
  recent: RecentChunks;
  /** Decompresses and verifies fetched chunks (on worker threads). */
  decoder: ChunkDecoder;
  /** Round trip and bandwidth of the backend, from the fetches' own timings. */
  link: LinkEstimator;
}

/** How long chunk writes wait to share one fdatasync (the chunk map follows the sync). */
const SYNC_DELAY_MS = 500;

/** Zeros that pad a chunk to the 4 KiB boundary where the next one starts in the data file. */
const ZEROS = new Uint8Array(4096);

interface Inflight {
  promise: Promise<Uint8Array>;
  resolve(data: Uint8Array): void;
  reject(e: unknown): void;
}

function inflightEntry(): Inflight {
  let resolve!: (d: Uint8Array) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<Uint8Array>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Amplified and prefetched chunks may have no reader: never an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

function rangeOf(group: readonly ChunkRecord[]): string {
  const a = group[0]?.index;
  const b = group[group.length - 1]?.index;
  return a === b ? `chunk ${a}` : `chunks ${a}..${b}`;
}

/** The file-cache implementation of CachedBlob. */
export class FileCachedBlob implements CachedBlob {
  readonly info: BlobInfo;
  readonly #ctx: CachedBlobContext;
  readonly #backends: BlobBackend[];
  readonly #dataFd: number;
  readonly #map: ChunkStateMap;
  readonly #sync: SyncCoalescer;
  readonly #inflight = new Map<number, Inflight>();
  readonly #tasks = new Set<Promise<void>>();
  #chunkAt: ((index: number) => ChunkRecord | undefined) | undefined;
  #closed = false;
  readonly #listeners = new Set<(rec: ChunkRecord, data: Uint8Array) => void>();
  readonly stats: BlobFetchStats = { requests: 0, bytes: 0, prefetchRequests: 0, prefetchBytes: 0, prefetchHits: 0, demandMisses: 0 };
  /** Per chunk: 1 when prefetch brought it and no reader has asked for it yet. */
  readonly #prefetched: Uint8Array;

  /** Open or create the cache files of `info` (synchronous, once per blob). */
  constructor(info: BlobInfo, backend: BlobBackend, ctx: CachedBlobContext) {
    this.info = info;
    this.#ctx = ctx;
    this.#backends = [backend];
    this.#chunkAt = info.chunkAt;
    const dir = ctx.options.workDir;
    const dataPath = join(dir, `${info.blobId}.blob.data`);
    const fd = openSync(dataPath, constants.O_RDWR | constants.O_CREAT, 0o644);
    try {
      const size = fstatSync(fd).size;
      const reset = size !== info.uncompressedSize;
      if (reset && size !== 0) ctx.logger.warn('cache data file has the wrong size, starting empty', { path: dataPath, size, expected: info.uncompressedSize });
      // The map is reset (and synced) before the data goes, so no bit ever outlives its data.
      this.#map = openChunkMap(join(dir, `${info.blobId}.chunk_map`), info.chunkCount, { reset, logger: ctx.logger });
      if (reset) {
        ftruncateSync(fd, 0);
        ftruncateSync(fd, info.uncompressedSize);
      }
    } catch (e) {
      closeSync(fd);
      throw new BackendError('ERR_CACHE_IO', `Cannot open the cache of blob ${info.blobId} in ${dir}: ${(e as Error).message}`, { errno: EIO, cause: e });
    }
    this.#dataFd = fd;
    this.#sync = new SyncCoalescer(fd, SYNC_DELAY_MS);
    this.#prefetched = new Uint8Array(info.chunkCount);
  }

  /** Another opener of the same blob: remember its backend (used when the first one is closed). */
  adopt(info: BlobInfo, backend: BlobBackend): void {
    if (info.chunkCount !== this.info.chunkCount || info.uncompressedSize !== this.info.uncompressedSize) {
      throw new FormatError('ERR_BLOB_MISMATCH', `Cannot open blob ${info.blobId} in the cache: ${info.chunkCount} chunks / ${info.uncompressedSize} bytes differ from the ${this.info.chunkCount} / ${this.info.uncompressedSize} it was opened with`, { errno: EIO });
    }
    if (!this.#backends.includes(backend)) this.#backends.push(backend);
    this.#chunkAt ??= info.chunkAt;
  }

  onData(listener: (rec: ChunkRecord, data: Uint8Array) => void): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  /** Chunks marked ready. */
  get readyCount(): number {
    return this.#map.readyCount;
  }

  isReady(index: number): boolean {
    return this.#map.isReady(index);
  }

  #check(rec: ChunkRecord): void {
    if (!Number.isSafeInteger(rec.index) || rec.index < 0 || rec.index >= this.info.chunkCount
      || rec.uncompressedSize <= 0 || rec.uncompressedOffset < 0 || rec.uncompressedOffset + rec.uncompressedSize > this.info.uncompressedSize || rec.compressedSize <= 0) {
      throw new FormatError('ERR_BAD_CHUNK', `Cannot read chunk ${rec.index} of blob ${this.info.blobId}: the record (uncompressed ${rec.uncompressedSize} at ${rec.uncompressedOffset}, compressed ${rec.compressedSize}) does not fit the blob's ${this.info.chunkCount} chunks / ${this.info.uncompressedSize} bytes`, { errno: EIO });
    }
  }

  #closedError(): BackendError {
    return new BackendError('ERR_CLOSED', `Cannot read blob ${this.info.blobId}: the cache is closed`, { errno: EIO });
  }

  #fetchable = (index: number): boolean => !this.#map.isReady(index) && !this.#inflight.has(index);

  /** Bytes a demand fetch may grow to (amplify_io, or measured: see LinkEstimator). */
  #amplify(): number {
    const o = this.#ctx.options;
    return o.adaptiveAmplify ? this.#ctx.link.amplify(o.amplifyIo) : o.amplifyIo;
  }

  async readChunks(chunks: readonly ChunkRecord[], signal?: AbortSignal, options: ReadChunksOptions = {}): Promise<Uint8Array[]> {
    if (this.#closed) throw this.#closedError();
    if (signal?.aborted) throw new BackendError('ERR_ABORTED', `Cannot read blob ${this.info.blobId}: aborted`, { errno: EINTR, cause: signal.reason });
    for (const rec of chunks) this.#check(rec);
    const m = this.#ctx.metrics;
    const out: Promise<Uint8Array>[] = new Array<Promise<Uint8Array>>(chunks.length);
    const ready: { pos: number; rec: ChunkRecord }[] = [];
    const missingPos: { pos: number; rec: ChunkRecord }[] = [];
    const toFetch: ChunkRecord[] = [];
    const recent = this.#ctx.recent;
    chunks.forEach((rec, pos) => {
      if (this.#map.isReady(rec.index)) {
        m.hits++;
        if (this.#prefetched[rec.index] === 1) {
          this.#prefetched[rec.index] = 0;
          this.stats.prefetchHits++;
        }
        const held = recent.get(this.info.blobId, rec.index);
        if (held) out[pos] = Promise.resolve(held);
        else ready.push({ pos, rec });
        return;
      }
      m.misses++;
      this.stats.demandMisses++;
      const f = this.#inflight.get(rec.index);
      if (f) out[pos] = f.promise;
      else {
        missingPos.push({ pos, rec });
        toFetch.push(rec);
      }
    });
    if (toFetch.length > 0) {
      const along = options.alongWith === undefined ? [] : options.alongWith.filter((rec) => {
        try {
          this.#check(rec);
        } catch {
          return false;
        }
        return this.#fetchable(rec.index) && !toFetch.includes(rec);
      });
      const wanted = along.length > 0 ? new Set(toFetch.map((r) => r.index)) : undefined;
      for (const g of planFetches(along.length > 0 ? [...toFetch, ...along] : toFetch, { limit: this.#amplify(), chunkAt: this.#chunkAt, canFetch: this.#fetchable })) {
        // Chunks fetched along with the wanted ones ride in their requests, never alone.
        if (!wanted || g.some((r) => wanted.has(r.index))) this.#startFetch(g, false);
      }
      for (const { pos, rec } of missingPos) out[pos] = (this.#inflight.get(rec.index) as Inflight).promise;
    }
    for (const { pos, data } of this.#readReady(ready)) out[pos] = data;
    const all = Promise.all(out);
    if (!signal) return all;
    return new Promise<Uint8Array[]>((resolve, reject) => {
      const onAbort = (): void => reject(new BackendError('ERR_ABORTED', `Cannot read blob ${this.info.blobId}: aborted`, { errno: EINTR, cause: signal.reason }));
      signal.addEventListener('abort', onAbort, { once: true });
      all.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** Read ready chunks from the data file, adjacent ones in one pread; one promise per item. */
  #readReady(ready: readonly { pos: number; rec: ChunkRecord }[]): { pos: number; data: Promise<Uint8Array> }[] {
    const sorted = [...ready].sort((a, b) => a.rec.uncompressedOffset - b.rec.uncompressedOffset);
    const runs: { start: number; end: number; items: { pos: number; rec: ChunkRecord }[] }[] = [];
    for (const it of sorted) {
      const r = runs[runs.length - 1];
      const s = it.rec.uncompressedOffset;
      const e = s + it.rec.uncompressedSize;
      if (r && s - r.end < READ_GAP && Math.max(r.end, e) - r.start <= READ_MAX) {
        r.end = Math.max(r.end, e);
        r.items.push(it);
      } else {
        runs.push({ start: s, end: e, items: [it] });
      }
    }
    const out: { pos: number; data: Promise<Uint8Array> }[] = [];
    for (const r of runs) {
      const read = preadExact(this.#dataFd, r.end - r.start, r.start).catch((e: unknown) => {
        this.#ctx.metrics.errors += r.items.length;
        throw new BackendError('ERR_CACHE_IO', `Cannot read ${r.end - r.start} bytes at ${r.start} of the cache of blob ${this.info.blobId}: ${(e as Error).message}`, { errno: EIO, cause: e });
      });
      // close() waits for this read too: the descriptor must outlive it.
      const task: Promise<void> = read.then(() => undefined, () => undefined).finally(() => this.#tasks.delete(task));
      this.#tasks.add(task);
      for (const { pos, rec } of r.items) {
        const off = rec.uncompressedOffset - r.start;
        out.push({ pos, data: read.then((buf) => buf.subarray(off, off + rec.uncompressedSize)) });
      }
    }
    return out;
  }

  /** Register in-flight entries for `group` (synchronously) and fetch it in the background. */
  #startFetch(group: readonly ChunkRecord[], background: boolean): Promise<void> {
    const entries = group.map((rec) => {
      const e = inflightEntry();
      this.#inflight.set(rec.index, e);
      return e;
    });
    const task = this.#runFetch(group, entries, background).finally(() => this.#tasks.delete(task));
    this.#tasks.add(task);
    return task;
  }

  #forget(rec: ChunkRecord, entry: Inflight): void {
    if (this.#inflight.get(rec.index) === entry) this.#inflight.delete(rec.index);
  }

  /** Read from the backend, falling back to other openers' backends when one was closed. */
  async #backendRead(offset: number, length: number): Promise<Uint8Array> {
    for (;;) {
      const b = this.#backends[this.#backends.length - 1] as BlobBackend;
      try {
        return await b.read(this.info.blobId, offset, length);
      } catch (e) {
        if (e instanceof NydusError && e.code === 'ERR_CLOSED' && this.#backends.length > 1) {
          this.#backends.pop();
          continue;
        }
        throw e;
      }
    }
  }

  async #runFetch(group: readonly ChunkRecord[], entries: Inflight[], background: boolean): Promise<void> {
    const m = this.#ctx.metrics;
    const id = this.info.blobId;
    const start = (group[0] as ChunkRecord).compressedOffset;
    const length = spanOf(group);
    let raw: Uint8Array;
    m.inflight++;
    this.stats.requests++;
    this.stats.bytes += length;
    if (background) {
      this.stats.prefetchRequests++;
      this.stats.prefetchBytes += length;
    }
    const t0 = performance.now();
    try {
      raw = await this.#backendRead(start, length);
      this.#ctx.link.sample(length, performance.now() - t0);
    } catch (e) {
      m.errors += group.length;
      const code = e instanceof NydusError ? e.code : 'ERR_BACKEND_IO';
      const err = new BackendError(code, `Cannot fetch ${rangeOf(group)} of blob ${id} (${length} bytes at ${start}): ${(e as Error).message}`, { errno: EIO, cause: e });
      this.#ctx.logger.warn('blob cache: fetch failed', { blobId: id, offset: start, length, error: (e as Error).message });
      group.forEach((rec, i) => {
        const entry = entries[i] as Inflight;
        this.#forget(rec, entry);
        entry.reject(err);
      });
      return;
    } finally {
      m.inflight--;
    }
    if (background) m.prefetchBytes += length;
    const good: { rec: ChunkRecord; data: Uint8Array; entry: Inflight }[] = [];
    let decoded: DecodeResult[];
    try {
      decoded = await this.#ctx.decoder.decode(raw, start, group, { compressor: this.info.compressor, digester: this.info.digester, validate: this.#ctx.options.validate }, `blob ${id}`);
    } catch (e) {
      const err = e instanceof NydusError && e.errno !== undefined ? e : new FormatError('ERR_CHUNK_DECODE', `Cannot decode ${rangeOf(group)} of blob ${id}: ${(e as Error).message}`, { errno: EIO, cause: e });
      decoded = group.map(() => err);
    }
    for (let i = 0; i < group.length; i++) {
      const rec = group[i] as ChunkRecord;
      const entry = entries[i] as Inflight;
      const r = decoded[i] as DecodeResult;
      if (r instanceof Uint8Array) {
        good.push({ rec, data: r, entry });
        if (background) {
          m.prefetchChunks++;
          this.#prefetched[rec.index] = 1;
        }
      } else {
        m.errors++;
        this.#ctx.logger.warn('blob cache: bad chunk', { blobId: id, chunk: rec.index, error: r.message });
        this.#forget(rec, entry);
        entry.reject(r);
      }
    }
    if (good.length === 0) return;
    const indexes = good.map((g) => g.rec.index);
    for (const g of good) {
      this.#ctx.recent.put(id, g.rec.index, g.data);
      for (const l of this.#listeners) {
        try {
          l(g.rec, g.data);
        } catch (e) {
          this.#ctx.logger.warn('blob cache: data listener failed', { blobId: id, chunk: g.rec.index, error: (e as Error).message });
        }
      }
    }
    // Write first, so that readers see the chunks ready (in the page cache) once they have them:
    // chunks that follow each other in the data file in one pwritev, padded to their 4 KiB starts.
    let written = false;
    try {
      const runs: { start: number; parts: Uint8Array[]; end: number }[] = [];
      for (const g of good) {
        const r = runs[runs.length - 1];
        const pad = r ? g.rec.uncompressedOffset - r.end : -1;
        if (r && pad >= 0 && pad < ZEROS.length) {
          if (pad > 0) r.parts.push(ZEROS.subarray(0, pad));
          r.parts.push(g.data);
          r.end = g.rec.uncompressedOffset + g.data.length;
        } else {
          runs.push({ start: g.rec.uncompressedOffset, parts: [g.data], end: g.rec.uncompressedOffset + g.data.length });
        }
      }
      await Promise.all(runs.map((r) => pwritevAll(this.#dataFd, r.parts, r.start)));
      this.#map.markReady(indexes);
      written = true;
    } catch (e) {
      this.#ctx.logger.warn('blob cache: cannot write chunks to the cache file', { blobId: id, chunks: rangeOf(good.map((g) => g.rec)), error: (e as Error).message });
    }
    for (const g of good) {
      this.#forget(g.rec, g.entry);
      g.entry.resolve(g.data);
    }
    if (!written) return;
    // Then make the data durable before its bits may reach the chunk map file. In the
    // background: the fetch (and the prefetch worker running it) is done once readers have the
    // data, and close() still waits for this task.
    const durable: Promise<void> = this.#sync.sync().then(
      () => this.#map.persist(indexes),
      (e: unknown) => this.#ctx.logger.warn('blob cache: cannot sync the cache file', { blobId: id, error: (e as Error).message }),
    ).finally(() => this.#tasks.delete(durable));
    this.#tasks.add(durable);
  }

  prefetch(chunks: readonly ChunkRecord[], options: { low?: boolean } = {}): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const want = chunks.filter((rec) => {
      this.#check(rec);
      return !this.#map.isReady(rec.index);
    });
    const limit = this.#ctx.options.prefetch.mergingSize;
    // Scattered chunks of a list: the chunks in gaps of up to the amplification size join the
    // requests (and are cached), so a list costs a few large requests instead of one per file.
    const gap = this.#amplify();
    const groups = planFetches(want, {
      limit, canFetch: this.#fetchable, ...(this.#chunkAt && gap > 0 ? { fillGap: { bytes: gap, chunkAt: this.#chunkAt } } : {}),
    });
    return this.#ctx.queue.submit(groups.map((g) => () => this.#prefetchGroup(g, limit)), options.low === true);
  }

  /** One prefetch job: its chunks still missing, rate-limited, fetched one request at a time. */
  async #prefetchGroup(group: readonly ChunkRecord[], limit: number): Promise<void> {
    for (const run of planFetches(group.filter((r) => this.#fetchable(r.index)), { limit, canFetch: () => false })) {
      if (this.#closed) return;
      await this.#ctx.limiter.take(spanOf(run));
      if (this.#closed) return;
      for (const sub of planFetches(run.filter((r) => this.#fetchable(r.index)), { limit, canFetch: () => false })) {
        if (this.#closed) return;
        await this.#startFetch(sub, true);
      }
    }
  }

  /** Wait for fetches in flight, flush the chunk map, close the files. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sync.flush();
    while (this.#tasks.size > 0) {
      await Promise.race([Promise.all([...this.#tasks]), new Promise((r) => setTimeout(r, 10))]);
      this.#sync.flush();
    }
    this.#ctx.recent.dropBlob(this.info.blobId);
    await this.#map.close();
    closeSync(this.#dataFd);
  }
}
