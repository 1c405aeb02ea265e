/**
 * The latency of first reads: per mount, how long the first READ of each file took (fusedev), or
 * each READ of a blob file that reached the daemon (erofs driver: the kernel's page cache answers
 * the rest). This is what a container start waits for on a cold image; a histogram in ms.
 * @module
 */

/** Bucket upper bounds in ms (the last bucket: above). */
export const FIRST_READ_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000] as const;

/** A histogram of first-read latencies. */
export class FirstReadLatency {
  readonly counts = new Array<number>(FIRST_READ_BUCKETS_MS.length + 1).fill(0);
  count = 0;
  totalMs = 0;
  maxMs = 0;
  readonly #seen = new Set<number>();

  /** Whether `nid` has not been read before (and remember it). */
  first(nid: number): boolean {
    if (this.#seen.has(nid)) return false;
    this.#seen.add(nid);
    return true;
  }

  /** Count one read that took `ms`. */
  record(ms: number): void {
    let b = 0;
    while (b < FIRST_READ_BUCKETS_MS.length && ms > (FIRST_READ_BUCKETS_MS[b] as number)) b++;
    this.counts[b] = (this.counts[b] ?? 0) + 1;
    this.count++;
    this.totalMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
  }
}
