/**
 * A byte-rate limiter for background work: each `take(n)` is scheduled after the previous ones at
 * `bytesPerSecond`, so the average rate never exceeds it (the first request goes at once).
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Time source (injectable for tests). */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => sleep(ms),
};

/** A limiter. */
export interface RateLimiter {
  /** Resolve when `bytes` more may be sent. */
  take(bytes: number): Promise<void>;
}

/** A limiter of `bytesPerSecond` (0 = unlimited). */
export function createRateLimiter(bytesPerSecond: number, clock: Clock = systemClock): RateLimiter {
  if (!(bytesPerSecond > 0)) return { take: () => Promise.resolve() };
  let next = -Infinity;
  return {
    async take(bytes: number): Promise<void> {
      const now = clock.now();
      const start = Math.max(now, next);
      next = start + (bytes * 1000) / bytesPerSecond;
      if (start > now) await clock.sleep(start - now);
    },
  };
}
