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

/** Bounded-concurrency job queue. */
export class PrefetchQueue {
  readonly #threads: number;
  #queue: Queued[] = [];
  #head = 0;
  #low: Queued[] = [];
  #lowHead = 0;
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
    return this.#queue.length - this.#head + this.#low.length - this.#lowHead;
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
    if (this.#head < this.#queue.length) {
      const q = this.#queue[this.#head] as Queued;
      this.#queue[this.#head] = undefined as never;
      this.#head++;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      return { q, low: false };
    }
    if (this.#lowHead < this.#low.length && this.#runningLow < Math.max(1, this.#threads >> 1)) {
      const q = this.#low[this.#lowHead] as Queued;
      this.#low[this.#lowHead] = undefined as never;
      this.#lowHead++;
      if (this.#lowHead > 1024 && this.#lowHead * 2 > this.#low.length) {
        this.#low = this.#low.slice(this.#lowHead);
        this.#lowHead = 0;
      }
      return { q, low: true };
    }
    return undefined;
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
    const rest = [...this.#queue.slice(this.#head), ...this.#low.slice(this.#lowHead)];
    this.#queue = [];
    this.#head = 0;
    this.#low = [];
    this.#lowHead = 0;
    for (const q of rest) q.done();
  }
}
