/**
 * What the link to the backend is like, measured from the cache's own fetches: the round-trip
 * time (the least latency of recent requests) and the bandwidth (of recent large requests, with
 * the round trip taken out). Their product, the bytes in flight during one round trip, is how
 * much a miss should bring (`cold_read.adaptive_amplify`): a request of that size costs about two
 * round trips instead of one, and a smaller one leaves the link idle while the next miss waits.
 * @module
 */

/** Requests remembered for the round-trip time. */
const RTT_WINDOW = 32;
/** Requests at least this large measure bandwidth. */
const BW_MIN_BYTES = 256 << 10;
/** Weight of a new bandwidth sample. */
const BW_ALPHA = 0.3;
/** Amplification is a multiple of this. */
const GRANULE = 64 << 10;

/** Round-trip and bandwidth estimates of one cache's backend traffic. */
export class LinkEstimator {
  readonly #lat: number[] = [];
  #next = 0;
  #bytesPerMs: number | undefined;

  /** One request of `bytes` that took `ms`. */
  sample(bytes: number, ms: number): void {
    if (!(ms >= 0) || !(bytes > 0)) return;
    if (this.#lat.length < RTT_WINDOW) this.#lat.push(ms);
    else this.#lat[this.#next] = ms;
    this.#next = (this.#next + 1) % RTT_WINDOW;
    const rtt = this.rttMs ?? 0;
    if (bytes >= BW_MIN_BYTES) {
      // A request barely slower than the round trip says little: half its time counts as transfer at least.
      const bw = bytes / Math.max(0.05, ms - rtt, ms / 2);
      this.#bytesPerMs = this.#bytesPerMs === undefined ? bw : this.#bytesPerMs * (1 - BW_ALPHA) + bw * BW_ALPHA;
    }
  }

  /** Least latency of recent requests (ms), undefined before any. */
  get rttMs(): number | undefined {
    return this.#lat.length === 0 ? undefined : Math.min(...this.#lat);
  }

  /** Bandwidth (bytes per ms), undefined before a large request. */
  get bytesPerMs(): number | undefined {
    return this.#bytesPerMs;
  }

  /**
   * Bytes a miss should fetch: bandwidth × round-trip time, within [base / 4, base × 4] and in
   * 64 KiB steps; `base` until both are measured (and 0 when `base` is 0: amplification off).
   */
  amplify(base: number): number {
    const rtt = this.rttMs;
    const bw = this.#bytesPerMs;
    if (base <= 0 || rtt === undefined || bw === undefined) return base;
    const bdp = Math.round((bw * rtt) / GRANULE) * GRANULE;
    return Math.min(base * 4, Math.max(Math.floor(base / 4), bdp));
  }
}
