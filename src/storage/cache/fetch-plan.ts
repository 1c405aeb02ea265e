/**
 * How missing chunks become backend requests. Pure: no I/O.
 *
 * Rule: chunks are taken in compressed-offset order; a request grows while the next chunk starts
 * exactly where the request ends (contiguous in the blob) and the request stays within `limit`
 * bytes (one chunk alone may be larger). The next chunk is a requested one at that offset, or —
 * amplification, like nydusd — chunk `last.index + 1` of the blob when `chunkAt` is given and the
 * chunk may be fetched (not cached, not in flight). So with a 1 MiB limit a 4 KiB read also brings
 * the chunks that follow it in the blob; with limit 0 every chunk is its own request.
 * @module
 */
import type { ChunkRecord } from '../../format/v6/chunk-record.js';

/** Options of {@link planFetches}. */
export interface FetchPlanOptions {
  /** Largest request in compressed bytes; 0 = one chunk per request. */
  limit: number;
  /** Record of chunk `index` of the blob, for extending requests forward. */
  chunkAt?: ((index: number) => ChunkRecord | undefined) | undefined;
  /** True when chunk `index` may be added to a request (not cached, not in flight). */
  canFetch: (index: number) => boolean;
  /**
   * Gap filling (prefetch): when the next wanted chunk starts at most `bytes` after a request's
   * end, the chunks between — found through `chunkAt`, contiguous and fetchable — join the
   * request, so that a list of scattered files becomes fewer, larger requests. Unlike
   * `chunkAt` above, nothing is added past the last wanted chunk.
   */
  fillGap?: { bytes: number; chunkAt: (index: number) => ChunkRecord | undefined };
}

/** End offset of a chunk in the blob. */
export function chunkEnd(rec: ChunkRecord): number {
  return rec.compressedOffset + rec.compressedSize;
}

/** Compressed bytes a request of contiguous `group` covers. */
export function spanOf(group: readonly ChunkRecord[]): number {
  const first = group[0];
  const last = group[group.length - 1];
  return first && last ? chunkEnd(last) - first.compressedOffset : 0;
}

/** Group `wanted` (distinct chunks that are missing) into requests of contiguous chunks. */
export function planFetches(wanted: readonly ChunkRecord[], options: FetchPlanOptions): ChunkRecord[][] {
  const byIndex = new Map<number, ChunkRecord>();
  for (const r of wanted) if (!byIndex.has(r.index)) byIndex.set(r.index, r);
  const sorted = [...byIndex.values()].sort((a, b) => a.compressedOffset - b.compressedOffset || a.index - b.index);
  const byOffset = new Map<number, ChunkRecord>();
  for (const r of sorted) if (!byOffset.has(r.compressedOffset)) byOffset.set(r.compressedOffset, r);
  const planned = new Set<number>();
  const groups: ChunkRecord[][] = [];
  const gap = options.fillGap;
  /** Position in `sorted` of the first chunk that may still be ahead (for gap filling). */
  let ahead = 0;
  for (const first of sorted) {
    if (planned.has(first.index)) continue;
    const group = [first];
    planned.add(first.index);
    const start = first.compressedOffset;
    let last = first;
    for (;;) {
      const end = chunkEnd(last);
      let next = byOffset.get(end);
      if (next && planned.has(next.index)) next = undefined;
      if (!next && options.chunkAt) {
        const cand = options.chunkAt(last.index + 1);
        if (cand && cand.index === last.index + 1 && cand.compressedOffset === end && cand.compressedSize > 0 && !planned.has(cand.index) && options.canFetch(cand.index)) next = cand;
      }
      if (!next && gap && gap.bytes > 0) {
        while (ahead < sorted.length && ((sorted[ahead] as ChunkRecord).compressedOffset < end || planned.has((sorted[ahead] as ChunkRecord).index))) ahead++;
        const want = sorted[ahead];
        if (want && want.compressedOffset - end <= gap.bytes && chunkEnd(want) - start <= options.limit) {
          // The whole gap must be fillable (contiguous, fetchable chunks), else it stays a gap.
          const fill: ChunkRecord[] = [];
          let at = end;
          for (let k = last.index + 1; at < want.compressedOffset; k++) {
            const cand = gap.chunkAt(k);
            if (!cand || cand.index !== k || cand.compressedOffset !== at || cand.compressedSize <= 0 || planned.has(k) || !options.canFetch(k)) break;
            fill.push(cand);
            at = chunkEnd(cand);
          }
          if (at === want.compressedOffset && fill.length > 0) {
            for (const f of fill) {
              group.push(f);
              planned.add(f.index);
            }
            last = fill[fill.length - 1] as ChunkRecord;
            continue;
          }
        }
      }
      if (!next || chunkEnd(next) - start > options.limit) break;
      group.push(next);
      planned.add(next.index);
      last = next;
    }
    groups.push(group);
  }
  return groups;
}
