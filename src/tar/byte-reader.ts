/**
 * A pull reader over an async iterable of byte chunks that keeps only the unread remainder of
 * the current chunk. Data is handed out as subarrays of the source chunks (no copies), except
 * for fixed-size reads that straddle chunk boundaries.
 * @module
 */
import { FormatError } from '../util/errors.js';

/** Result of {@link ByteReader.readExact}: `got < want` means the input ended early. */
export interface ExactRead {
  data: Uint8Array;
  got: number;
}

const EMPTY = new Uint8Array(0);

/** Sequential reader over `AsyncIterable<Uint8Array>`, tracking the absolute offset. */
export class ByteReader {
  /** Bytes consumed so far (offset of the next unread byte). */
  offset = 0;
  private readonly it: AsyncIterator<Uint8Array>;
  private chunk: Uint8Array = EMPTY;
  private pos = 0;
  private ended = false;
  private busy = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Make sure unread bytes are buffered; false at the end of the input. */
  private async fill(): Promise<boolean> {
    while (this.pos >= this.chunk.length) {
      if (this.ended) return false;
      if (this.busy) {
        throw new FormatError('ERR_TAR_BODY', 'Cannot read tar stream: another read is still pending (read entry bodies one at a time, before advancing)');
      }
      this.busy = true;
      let r: IteratorResult<Uint8Array>;
      try {
        r = await this.it.next();
      } finally {
        this.busy = false;
      }
      if (r.done === true) {
        this.ended = true;
        this.chunk = EMPTY;
        this.pos = 0;
        return false;
      }
      this.chunk = r.value;
      this.pos = 0;
    }
    return true;
  }

  /** `n` bytes as a view of the current chunk if it holds them all (no waiting), else undefined. */
  takeBuffered(n: number): Uint8Array | undefined {
    if (this.chunk.length - this.pos < n) return undefined;
    const data = this.chunk.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.offset += n;
    return data;
  }

  /** Up to `max` bytes of the current chunk (a view) without waiting; undefined when none is buffered. */
  nextBuffered(max: number): Uint8Array | undefined {
    if (this.pos >= this.chunk.length || max <= 0) return undefined;
    const take = Math.min(max, this.chunk.length - this.pos);
    const data = this.chunk.subarray(this.pos, this.pos + take);
    this.pos += take;
    this.offset += take;
    return data;
  }

  /** Discard up to `n` bytes of the current chunk without waiting; returns how many. */
  skipBuffered(n: number): number {
    const take = Math.min(n, this.chunk.length - this.pos);
    this.pos += take;
    this.offset += take;
    return take;
  }

  /**
   * Read exactly `n` bytes. A view into the source chunk when possible, else a fresh copy.
   * At the end of the input returns what was read (`got < n`).
   */
  async readExact(n: number): Promise<ExactRead> {
    if (!(await this.fill())) return { data: EMPTY, got: 0 };
    if (this.chunk.length - this.pos >= n) {
      const data = this.chunk.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.offset += n;
      return { data, got: n };
    }
    const data = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      if (!(await this.fill())) break;
      const take = Math.min(n - got, this.chunk.length - this.pos);
      data.set(this.chunk.subarray(this.pos, this.pos + take), got);
      this.pos += take;
      this.offset += take;
      got += take;
    }
    return { data, got };
  }

  /** Next run of at most `max` bytes (a view into a source chunk); null at the end of the input. */
  async next(max: number): Promise<Uint8Array | null> {
    if (!(await this.fill())) return null;
    const take = Math.min(max, this.chunk.length - this.pos);
    const data = this.chunk.subarray(this.pos, this.pos + take);
    this.pos += take;
    this.offset += take;
    return data;
  }

  /** Discard `n` bytes; returns how many were discarded (fewer at the end of the input). */
  async skip(n: number): Promise<number> {
    let done = 0;
    while (done < n) {
      if (!(await this.fill())) break;
      const take = Math.min(n - done, this.chunk.length - this.pos);
      this.pos += take;
      this.offset += take;
      done += take;
    }
    return done;
  }

  /** Release the source (calls its iterator's `return`). */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.chunk = EMPTY;
    await this.it.return?.();
  }
}
