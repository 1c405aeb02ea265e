/**
 * The access trace of one mount: every data read since the mount, in order, kept in a bounded
 * ring of events so that recording costs a few typed-array stores per READ and the newest
 * start-up burst is always there however long the mount has run.
 *
 * An event is a byte range of a file (fusedev: the file's nid is known) or of a blob (the erofs
 * driver sees only blob ranges; {@link AccessTrace.entries} maps them back to files through a
 * resolver). A read that continues the previous event of the same target extends it instead of
 * taking a slot, so a large file read sequentially costs one event.
 *
 * From the events, `entries(since)` gives the files read since a moment, in first-access order,
 * each with its first-access time, bytes and merged byte ranges: what `nydusctl trace` prints as
 * a prefetch list and what the snapshotter keeps as an image's start-up trace.
 * @module
 */
import { performance } from 'node:perf_hooks';

/** One file of a trace. */
export interface TraceEntry {
  nid: number;
  path: string;
  /** First access, ms since the trace began (the mount). */
  firstAccessMs: number;
  /** Bytes read (ranges merged: each byte counted once). */
  bytes: number;
  /** Byte ranges of the file read, merged and sorted: [offset, length]. */
  ranges: Array<[number, number]>;
}

/** A range of a blob mapped to the file it holds. */
export interface FileRange {
  nid: number;
  path: string;
  offset: number;
  length: number;
}

/** Maps events to files: the paths of nids; the files a blob range holds (erofs driver). */
export interface TraceResolver {
  /** Paths of `nids` (a nid without one is reported as `nid:<n>`). */
  pathsOf(nids: readonly number[]): Promise<Map<number, string>>;
  /** Files (with their byte ranges) held by `length` bytes at `offset` of blob `blobIndex`. */
  blobRange?(blobIndex: number, offset: number, length: number): FileRange[] | Promise<FileRange[]>;
}

/** Options of a trace. */
export interface AccessTraceOptions {
  /** Events kept (the oldest are overwritten). Default 262144 (at most about 7 MiB, allocated as needed). */
  capacity?: number;
  /** Ranges kept per file in entries (the rest are merged into the last). Default 64. */
  maxRanges?: number;
}

const DEFAULT_CAPACITY = 1 << 18;
/** Events allocated at first. */
const INITIAL_EVENTS = 1024;
const DEFAULT_MAX_RANGES = 64;

/** The access trace of a mount. */
export class AccessTrace {
  /** performance.now() at the start. */
  readonly origin = performance.now();
  /** Date.now() at the start. */
  readonly originUnixMs = Date.now();
  readonly #cap: number;
  readonly #maxRanges: number;
  /**
   * Per event: target (>= 0 nid; < 0 blob -1 - index), start, length, time. Allocated small and
   * doubled as events come, up to the capacity (a mount that reads little costs little).
   */
  #target: Int32Array;
  #offset: Float64Array;
  #length: Float64Array;
  #time: Float64Array;
  /** Events recorded in total (the ring holds the last `capacity`). */
  #count = 0;

  constructor(options: AccessTraceOptions = {}) {
    this.#cap = options.capacity ?? DEFAULT_CAPACITY;
    this.#maxRanges = options.maxRanges ?? DEFAULT_MAX_RANGES;
    if (!Number.isSafeInteger(this.#cap) || this.#cap < 1) throw new RangeError(`Cannot create an access trace: capacity ${this.#cap} is not a positive integer`);
    const n = Math.min(this.#cap, INITIAL_EVENTS);
    this.#target = new Int32Array(n);
    this.#offset = new Float64Array(n);
    this.#length = new Float64Array(n);
    this.#time = new Float64Array(n);
  }

  /** Room for one more event before the ring is full size. */
  #grow(): void {
    const n = Math.min(this.#cap, this.#target.length * 2);
    const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.#target = grow(this.#target, (k) => new Int32Array(k));
    this.#offset = grow(this.#offset, (k) => new Float64Array(k));
    this.#length = grow(this.#length, (k) => new Float64Array(k));
    this.#time = grow(this.#time, (k) => new Float64Array(k));
  }

  /** Events recorded since the start (including those the ring no longer holds). */
  get recorded(): number {
    return this.#count;
  }

  /** ms since the start. */
  now(): number {
    return performance.now() - this.origin;
  }

  #record(target: number, offset: number, length: number): void {
    if (length <= 0) return;
    if (this.#count > 0) {
      const last = (this.#count - 1) % this.#cap;
      if (this.#target[last] === target) {
        const s = this.#offset[last] as number;
        const e = s + (this.#length[last] as number);
        // Continues (or repeats inside) the previous event: extend it.
        if (offset >= s && offset <= e) {
          if (offset + length > e) this.#length[last] = offset + length - s;
          return;
        }
      }
    }
    if (this.#count < this.#cap && this.#count === this.#target.length) this.#grow();
    const k = this.#count % this.#cap;
    this.#target[k] = target;
    this.#offset[k] = offset;
    this.#length[k] = length;
    this.#time[k] = this.now();
    this.#count++;
  }

  /** A read of `length` bytes at `offset` of file `nid`. */
  file(nid: number, offset: number, length: number): void {
    this.#record(nid, offset, length);
  }

  /** A read of `length` bytes at `offset` of blob `blobIndex` (erofs driver). */
  blob(blobIndex: number, offset: number, length: number): void {
    this.#record(-1 - blobIndex, offset, length);
  }

  /**
   * The files read at or after `sinceMs` (ms since the start; 0: all the ring holds), in order of
   * their first read in that window, at most `maxFiles`.
   */
  async entries(resolver: TraceResolver, sinceMs = 0, maxFiles = Infinity): Promise<TraceEntry[]> {
    const n = Math.min(this.#count, this.#cap);
    const first = this.#count - n;
    const byNid = new Map<number, { nid: number; path: string | undefined; firstAccessMs: number; ranges: Array<[number, number]> }>();
    const add = (nid: number, path: string | undefined, t: number, offset: number, length: number): void => {
      let e = byNid.get(nid);
      if (!e) {
        if (byNid.size >= maxFiles) return;
        e = { nid, path, firstAccessMs: t, ranges: [] };
        byNid.set(nid, e);
      }
      e.ranges.push([offset, length]);
    };
    for (let c = first; c < this.#count; c++) {
      const k = c % this.#cap;
      const t = this.#time[k] as number;
      if (t < sinceMs) continue;
      const target = this.#target[k] as number;
      const offset = this.#offset[k] as number;
      const length = this.#length[k] as number;
      if (target >= 0) {
        add(target, undefined, t, offset, length);
      } else if (resolver.blobRange) {
        for (const f of await resolver.blobRange(-1 - target, offset, length)) add(f.nid, f.path, t, f.offset, f.length);
      }
    }
    const unnamed = [...byNid.values()].filter((e) => e.path === undefined).map((e) => e.nid);
    const names = unnamed.length > 0 ? await resolver.pathsOf(unnamed) : new Map<number, string>();
    return [...byNid.values()].map((e) => {
      const path = e.path ?? names.get(e.nid) ?? `nid:${e.nid}`;
      const merged = mergeRanges(e.ranges, Infinity);
      const bytes = merged.reduce((s, r) => s + r[1], 0);
      return { nid: e.nid, path, firstAccessMs: e.firstAccessMs, ranges: merged.length > this.#maxRanges ? mergeRanges(merged, this.#maxRanges) : merged, bytes };
    });
  }
}

/** Sort and merge overlapping or touching ranges; beyond `max`, the tail is merged into the last. */
export function mergeRanges(ranges: ReadonlyArray<readonly [number, number]>, max: number): Array<[number, number]> {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [o, l] of sorted) {
    const last = out[out.length - 1];
    if (last && (o <= last[0] + last[1] || out.length >= max)) {
      last[1] = Math.max(last[0] + last[1], o + l) - last[0];
    } else {
      out.push([o, l]);
    }
  }
  return out;
}
