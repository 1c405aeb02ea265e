/**
 * Background streaming of a whole image once its start-up burst is over (`cold_read.
 * background_stream`): after the mount's own prefetch and once no READ has reached the mount for
 * `quietMs`, every chunk of its blobs not yet cached is handed to the blob caches' prefetch, in
 * blob order and in batches, so that it runs at prefetch priority (foreground misses are fetched
 * at once and never queue behind it), within `fs_prefetch.bandwidth_rate`, and stops soon after
 * an unmount. A later read of the image then needs no backend request.
 * @module
 */
import type { Logger } from '../util/logger.js';
import type { ChunkRecord } from '../format/v6/chunk-record.js';
import type { RafsImage } from '../image/rafs-image.js';
import type { CachedBlob } from '../storage/blob-cache.js';

/** Chunks handed to prefetch at a time (the abort signal is checked between batches). */
const BATCH = 256;
/** How often the mount's activity is looked at while waiting for quiet. */
const POLL_MS = 250;

/** What a background stream needs. */
export interface BackgroundStreamOptions {
  image: RafsImage;
  blobs: readonly CachedBlob[];
  /** A counter that grows with every READ the mount answers. */
  activity: () => number;
  /** True while requests of the mount are in flight (a read stalled on the network is not quiet). */
  busy?: () => boolean;
  quietMs: number;
  /** Settles when the mount's own prefetch is done (the stream starts after it). */
  after: Promise<void>;
  /** Filled with the stream's begin and end (ms since the epoch). */
  times: { begin: number; end: number };
  signal: AbortSignal;
  logger: Logger;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> => new Promise((resolve) => {
  const t = setTimeout(done, ms);
  function done(): void {
    clearTimeout(t);
    signal.removeEventListener('abort', done);
    resolve();
  }
  signal.addEventListener('abort', done, { once: true });
});

/** Start streaming in the background; returns at once. */
export function startBackgroundStream(o: BackgroundStreamOptions): void {
  const run = async (): Promise<void> => {
    await o.after;
    let last = o.activity();
    let quietSince = Date.now();
    while (!o.signal.aborted) {
      await sleep(Math.min(POLL_MS, Math.max(1, o.quietMs)), o.signal);
      const now = o.activity();
      if (now !== last || o.busy?.() === true) {
        last = now;
        quietSince = Date.now();
      } else if (Date.now() - quietSince >= o.quietMs) {
        break;
      }
    }
    if (o.signal.aborted) return;
    o.times.begin = Date.now();
    let chunks = 0;
    for (const b of o.image.blobs) {
      const blob = o.blobs[b.index] as CachedBlob;
      let batch: ChunkRecord[] = [];
      for (let k = 0; k < b.entry.chunkCount && !o.signal.aborted; k++) {
        if (blob.isReady(k)) continue;
        const rec = o.image.chunkRecordByIndex(b.index, k);
        if (!rec) continue;
        batch.push(rec);
        if (batch.length >= BATCH) {
          chunks += batch.length;
          await blob.prefetch(batch, { low: true });
          batch = [];
        }
      }
      if (batch.length > 0 && !o.signal.aborted) {
        chunks += batch.length;
        await blob.prefetch(batch, { low: true });
      }
    }
    o.times.end = Date.now();
    o.logger.info('background stream done', { chunks, ms: o.times.end - o.times.begin, aborted: o.signal.aborted });
  };
  void run().catch((e: unknown) => o.logger.warn('background stream failed', { error: (e as Error).message }));
}
