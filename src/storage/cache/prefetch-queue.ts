/**
 * A FIFO of background jobs run with at most `threads` at once (nydusd's prefetch workers).
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
  #running = 0;
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
    return this.#queue.length - this.#head;
  }

  /** Queue `jobs`; resolves when all of them finished (or were dropped by close). Job errors are swallowed. */
  submit(jobs: readonly Job[]): Promise<void> {
    if (this.#closed || jobs.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let left = jobs.length;
      const done = (): void => {
        if (--left === 0) resolve();
      };
      for (const job of jobs) this.#queue.push({ job, done });
      this.#pump();
    });
  }

  #pump(): void {
    while (!this.#closed && this.#running < this.#threads && this.#head < this.#queue.length) {
      const q = this.#queue[this.#head] as Queued;
      this.#queue[this.#head] = undefined as never;
      this.#head++;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      this.#running++;
      void q.job().catch(() => undefined).finally(() => {
        this.#running--;
        q.done();
        this.#pump();
      });
    }
  }

  /** Drop the waiting jobs (their submit promises resolve); running ones finish. */
  close(): void {
    this.#closed = true;
    const rest = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    for (const q of rest) q.done();
  }
}
