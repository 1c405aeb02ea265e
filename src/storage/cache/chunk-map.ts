/**
 * `<blob id>.chunk_map`: which chunks of a blob are in the cache data file, one bit per chunk
 * index, persisted. The layout is nydusd's indexed chunk map (storage/src/cache/state/
 * persist_map.rs), so a work dir can be shared with nydusd:
 *
 * | Offset | Field |
 * |---|---|
 * | @0 | magic u32 = 0x424D4150 ("PAMB" little-endian) |
 * | @4 | version u32 = 1 |
 * | @8 | magic2 u32 = 0x434D4150 |
 * | @12 | all_ready u32 = 0x4D4D4150 once every chunk is ready, else 0 |
 * | @16 | reserved, zero, up to 4096 |
 * | @4096 | bitmap, ceil(chunk_count / 8) bytes; chunk i is bit 7 - (i & 7) of byte i >> 3 |
 *
 * The file size is exactly 4096 + ceil(chunk_count / 8); any other size, or a bad header, resets
 * the map (everything not ready) instead of trusting it.
 *
 Two bitmaps are kept in memory: *ready* (the data is in the data file, maybe only in the page
 * cache: readers of this process may use it) and *durable* (the data file was fdatasync'd after the
 * data was written: the bit may go to disk). Only durable bits are ever written, so a crash never
 * leaves a bit on disk whose data is not. Bits are only ever set. File writes run one at a time,
 * each writing the current durable bytes of the dirty range, so a later write never goes behind an
 * earlier one. The bitmap is fdatasync'd at close and before `all_ready` is written. A lost bit
 * costs a refetch.
 * @module
 */
import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import type { Logger } from '../../util/logger.js';
import { fdatasyncAsync, pwriteAll } from './file-io.js';

/** Header size; the bitmap starts here. */
export const CHUNK_MAP_HEADER_SIZE = 4096;
/** @0 magic. */
export const CHUNK_MAP_MAGIC = 0x424d4150;
/** @8 magic2 (version ≥ 1). */
export const CHUNK_MAP_MAGIC2 = 0x434d4150;
/** @12 value once every chunk is ready. */
export const CHUNK_MAP_ALL_READY = 0x4d4d4150;
/** @4 version written. */
export const CHUNK_MAP_VERSION = 1;

/** Readiness of the chunks of one blob. */
export interface ChunkStateMap {
  readonly chunkCount: number;
  /** Chunks marked ready. */
  readonly readyCount: number;
  isReady(index: number): boolean;
  /** Mark chunks ready in memory (their data is written, maybe not yet synced). */
  markReady(indexes: readonly number[]): void;
  /** Mark chunks durable (their data is synced) and queue the bitmap write. Implies ready. */
  persist(indexes: readonly number[]): void;
  /** Wait for queued writes. */
  flush(): Promise<void>;
  /** Flush, sync and close the file. */
  close(): Promise<void>;
}

/** Options of {@link openChunkMap}. */
export interface OpenChunkMapOptions {
  /** Start empty whatever the file holds (the data file was reset). */
  reset?: boolean;
  logger: Logger;
}

function headerBytes(allReady: boolean): Uint8Array {
  const h = new Uint8Array(CHUNK_MAP_HEADER_SIZE);
  const v = new DataView(h.buffer);
  v.setUint32(0, CHUNK_MAP_MAGIC, true);
  v.setUint32(4, CHUNK_MAP_VERSION, true);
  v.setUint32(8, CHUNK_MAP_MAGIC2, true);
  v.setUint32(12, allReady ? CHUNK_MAP_ALL_READY : 0, true);
  return h;
}

function popcount8(b: number): number {
  let n = 0;
  for (let x = b; x !== 0; x &= x - 1) n++;
  return n;
}

/** Open (creating or resetting as needed) the chunk map at `path`. Synchronous: done once per blob. */
export function openChunkMap(path: string, chunkCount: number, options: OpenChunkMapOptions): ChunkStateMap {
  if (!Number.isSafeInteger(chunkCount) || chunkCount < 0) throw new RangeError(`Cannot open chunk map ${path}: chunk count ${chunkCount} is invalid`);
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  try {
    return new PersistentChunkMap(fd, path, chunkCount, options);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

class PersistentChunkMap implements ChunkStateMap {
  readonly chunkCount: number;
  readyCount = 0;
  readonly #fd: number;
  readonly #path: string;
  readonly #logger: Logger;
  /** Ready in memory. */
  readonly #bits: Uint8Array;
  /** Durable: what the file may say. */
  readonly #durable: Uint8Array;
  #durableCount = 0;
  #allReadyWritten = false;
  #dirtyLo = Infinity;
  #dirtyHi = -1;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(fd: number, path: string, chunkCount: number, options: OpenChunkMapOptions) {
    this.#fd = fd;
    this.#path = path;
    this.#logger = options.logger;
    this.chunkCount = chunkCount;
    const bitmapSize = Math.ceil(chunkCount / 8);
    this.#bits = new Uint8Array(bitmapSize);
    this.#durable = new Uint8Array(bitmapSize);
    const expected = CHUNK_MAP_HEADER_SIZE + bitmapSize;
    const size = fstatSync(fd).size;
    if (options.reset === true || size !== expected) {
      if (size !== 0 && options.reset !== true) this.#logger.warn('chunk map has the wrong size, starting empty', { path, size, expected });
      this.#init(expected, size !== 0);
      return;
    }
    const all = new Uint8Array(expected);
    let done = 0;
    while (done < expected) {
      const n = readSync(fd, all, done, expected - done, done);
      if (n === 0) break;
      done += n;
    }
    const v = new DataView(all.buffer);
    if (done !== expected || v.getUint32(0, true) !== CHUNK_MAP_MAGIC || v.getUint32(4, true) < 1 || v.getUint32(8, true) !== CHUNK_MAP_MAGIC2) {
      if (all.some((b) => b !== 0)) this.#logger.warn('chunk map has a bad header, starting empty', { path });
      this.#init(expected, true);
      return;
    }
    if (v.getUint32(12, true) === CHUNK_MAP_ALL_READY) {
      this.#bits.fill(0xff);
      this.#allReadyWritten = true;
    } else {
      this.#bits.set(all.subarray(CHUNK_MAP_HEADER_SIZE));
    }
    // Bits past chunkCount in the last byte mean nothing.
    if (chunkCount % 8 !== 0 && bitmapSize > 0) this.#bits[bitmapSize - 1] = (this.#bits[bitmapSize - 1] as number) & (0xff << (8 - (chunkCount % 8)) & 0xff);
    for (const b of this.#bits) this.readyCount += popcount8(b);
    this.#durable.set(this.#bits);
    this.#durableCount = this.readyCount;
    if (this.readyCount === chunkCount && !this.#allReadyWritten && chunkCount > 0) {
      writeSync(fd, headerBytes(true), 0, CHUNK_MAP_HEADER_SIZE, 0);
      this.#allReadyWritten = true;
    }
  }

  /**
   * A fresh file: size first, then the header, each synced (as nydusd does) when the file held
   * something, so that no old bit can come back after a crash. A new, empty file has no bits to
   * lose: a crash before its header is on disk only leaves a bad header, which starts empty.
   */
  #init(expected: number, hadContent: boolean): void {
    ftruncateSync(this.#fd, 0);
    ftruncateSync(this.#fd, expected);
    if (hadContent) fsyncSync(this.#fd);
    writeSync(this.#fd, headerBytes(false), 0, CHUNK_MAP_HEADER_SIZE, 0);
    if (hadContent) fsyncSync(this.#fd);
  }

  isReady(index: number): boolean {
    const b = this.#bits[index >>> 3];
    return b !== undefined && index < this.chunkCount && (b & (0x80 >>> (index & 7))) !== 0;
  }

  markReady(indexes: readonly number[]): void {
    for (const i of indexes) {
      if (!Number.isSafeInteger(i) || i < 0 || i >= this.chunkCount || this.isReady(i)) continue;
      const k = i >>> 3;
      this.#bits[k] = (this.#bits[k] as number) | (0x80 >>> (i & 7));
      this.readyCount++;
    }
  }

  persist(indexes: readonly number[]): void {
    if (this.#closed) return;
    this.markReady(indexes);
    let changed = false;
    for (const i of indexes) {
      if (!Number.isSafeInteger(i) || i < 0 || i >= this.chunkCount) continue;
      const k = i >>> 3;
      const bit = 0x80 >>> (i & 7);
      const cur = this.#durable[k] as number;
      if ((cur & bit) !== 0) continue;
      this.#durable[k] = cur | bit;
      this.#durableCount++;
      if (k < this.#dirtyLo) this.#dirtyLo = k;
      if (k > this.#dirtyHi) this.#dirtyHi = k;
      changed = true;
    }
    if (changed) this.#chain = this.#chain.then(() => this.#writeDirty());
  }

  async #writeDirty(): Promise<void> {
    const lo = this.#dirtyLo;
    const hi = this.#dirtyHi;
    if (hi < lo) return;
    this.#dirtyLo = Infinity;
    this.#dirtyHi = -1;
    try {
      await pwriteAll(this.#fd, this.#durable.slice(lo, hi + 1), CHUNK_MAP_HEADER_SIZE + lo);
      if (this.#durableCount === this.chunkCount && !this.#allReadyWritten) {
        await fdatasyncAsync(this.#fd);
        await pwriteAll(this.#fd, headerBytes(true), 0);
        this.#allReadyWritten = true;
      }
    } catch (e) {
      this.#logger.warn('cannot write chunk map', { path: this.#path, error: (e as Error).message });
    }
  }

  flush(): Promise<void> {
    return this.#chain;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#chain;
    this.#closed = true;
    try {
      await fdatasyncAsync(this.#fd);
    } catch (e) {
      this.#logger.warn('cannot sync chunk map', { path: this.#path, error: (e as Error).message });
    }
    closeSync(this.#fd);
  }
}
