/**
 * Two FIFOs of background jobs run with at most `threads` at once (nydusd's prefetch workers):
 * prefetch lists first; low-priority jobs (background streaming of whole images) only when no
 * list job waits, and on at most half the threads, so that a newly mounted image's start-up
 * prefetch starts at once even while another image streams.
 * @module
 */

type Job = () => Promise<void>;

interface Queued {
  job: Job;
  done: () => void;
}

/** A FIFO array with a moving head, compacted now and then. */
class Fifo {
  #items: Queued[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(q: Queued): void {
    this.#items.push(q);
  }

  shift(): Queued | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const q = this.#items[this.#head] as Queued;
    this.#items[this.#head] = undefined as never;
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return q;
  }

  /** Everything waiting, emptied. */
  drain(): Queued[] {
    const rest = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    return rest;
  }
}

/** Bounded-concurrency job queue. */
export class PrefetchQueue {
  readonly #threads: number;
  readonly #queue = new Fifo();
  readonly #low = new Fifo();
  #running = 0;
  #runningLow = 0;
  #closed = false;

  constructor(threads: number) {
    if (!Number.isSafeInteger(threads) || threads < 1) throw new RangeError(`Cannot create prefetch queue: threads ${threads} is not a positive integer`);
    this.#threads = threads;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running;
  }

  /** Jobs waiting. */
  get waiting(): number {
    return this.#queue.size + this.#low.size;
  }

  /**
   * Queue `jobs` (`low`: at low priority); resolves when all of them finished (or were dropped by
   * close). Job errors are swallowed.
   */
  submit(jobs: readonly Job[], low = false): Promise<void> {
    if (this.#closed || jobs.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let left = jobs.length;
      const done = (): void => {
        if (--left === 0) resolve();
      };
      for (const job of jobs) (low ? this.#low : this.#queue).push({ job, done });
      this.#pump();
    });
  }

  #take(): { q: Queued; low: boolean } | undefined {
    const q = this.#queue.shift();
    if (q) return { q, low: false };
    if (this.#runningLow >= Math.max(1, this.#threads >> 1)) return undefined;
    const l = this.#low.shift();
    return l ? { q: l, low: true } : undefined;
  }

  #pump(): void {
    while (!this.#closed && this.#running < this.#threads) {
      const next = this.#take();
      if (!next) return;
      const { q, low } = next;
      this.#running++;
      if (low) this.#runningLow++;
      void q.job().catch(() => undefined).finally(() => {
        this.#running--;
        if (low) this.#runningLow--;
        q.done();
        this.#pump();
      });
    }
  }

  /** Drop the waiting jobs (their submit promises resolve); running ones finish. */
  close(): void {
    this.#closed = true;
    const rest = [...this.#queue.drain(), ...this.#low.drain()];
    for (const q of rest) q.done();
  }
}
