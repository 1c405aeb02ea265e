/**
 * Chunks decoded in the last moments, kept in memory under one byte budget shared by every blob
 * of a cache. A chunk fetched by prefetch or amplification is usually read by the workload a few
 * milliseconds later: answering that read from here saves a pread of the data file (a threadpool
 * round trip each, which costs more than the copy on a busy machine). Least recently used first
 * out. The data is the decoded, digest-checked chunk: nothing is trusted that the cache file
 * would not also hold.
 * @module
 */

/** A shared LRU of chunk data keyed by blob id and chunk index. */
export class RecentChunks {
  readonly #budget: number;
  readonly #map = new Map<string, Uint8Array>();
  #bytes = 0;

  /** `budget`: bytes kept at most; 0 keeps nothing. */
  constructor(budget: number) {
    if (!Number.isSafeInteger(budget) || budget < 0) throw new RangeError(`Cannot keep recent chunks: budget ${budget} is not a byte count`);
    this.#budget = budget;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Remember `data` as chunk `index` of `blobId`, evicting the least recently used beyond the budget. */
  put(blobId: string, index: number, data: Uint8Array): void {
    if (data.length > this.#budget) return;
    const key = `${blobId}:${index}`;
    const old = this.#map.get(key);
    if (old) {
      this.#bytes -= old.length;
      this.#map.delete(key);
    }
    this.#map.set(key, data);
    this.#bytes += data.length;
    for (const [k, v] of this.#map) {
      if (this.#bytes <= this.#budget) break;
      this.#map.delete(k);
      this.#bytes -= v.length;
    }
  }

  /** The data of chunk `index` of `blobId`, if held (and mark it recently used). */
  get(blobId: string, index: number): Uint8Array | undefined {
    const key = `${blobId}:${index}`;
    const v = this.#map.get(key);
    if (v) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  /** Forget everything of `blobId` (its cache is closing). */
  dropBlob(blobId: string): void {
    const prefix = `${blobId}:`;
    for (const [k, v] of this.#map) {
      if (k.startsWith(prefix)) {
        this.#map.delete(k);
        this.#bytes -= v.length;
      }
    }
  }
}
