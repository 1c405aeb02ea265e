/**
 * Decoding fetched chunks (decompress + digest check) off the event loop. A fetch brings a run of
 * chunks in one buffer; a ChunkDecoder turns it into each chunk's data, or the error (errno EIO)
 * that chunk failed with. The worker-thread decoder hands large runs to worker threads, which
 * decode every chunk of a run into one buffer and give it back (transferred, not copied), so
 * that the daemon's thread stays free for FUSE requests and the network while a prefetch of
 * hundreds of MiB is decoded beside it. Small runs are decoded in place: the thread hop would cost
 * more than it saves.
 * @module
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { siblingModuleUrl, startModuleWorker } from '../util/module-worker.js';
import { FormatError, NydusError } from '../util/errors.js';
import { decodeChunk, type ChunkCodec, type DecodableChunk } from './chunk-reader.js';
import { DIGEST_SIZE, META_FIELDS, type DecodeReply, type DecodeRequest } from './decode-protocol.js';

/** One chunk's decoded data, or why it could not be decoded. */
export type DecodeResult = Uint8Array | NydusError;

/** Decodes runs of fetched chunks. */
export interface ChunkDecoder {
  /**
   * Decode `chunks` (in compressed-offset order) from `raw`, the blob's bytes from compressed
   * offset `base`. One result per chunk. `raw` may move to another thread: do not use it after.
   */
  decode(raw: Uint8Array, base: number, chunks: readonly DecodableChunk[], codec: ChunkCodec, where: string): Promise<DecodeResult[]>;
  /** Stop the worker threads (decodes still running fail). */
  close(): Promise<void>;
}

/** How a ChunkDecoder runs. */
export interface ChunkDecoderOptions {
  /** Worker threads; 0 decodes on the calling thread. Default: one per CPU beyond the first, 1..4. */
  threads?: number;
  /** Runs of fewer compressed bytes are decoded in place (default 64 KiB). */
  inlineBelow?: number;
}

/** The one factory of ChunkDecoder. */
export function createChunkDecoder(o: ChunkDecoderOptions = {}): ChunkDecoder {
  const threads = o.threads ?? Math.max(1, Math.min(4, availableParallelism() - 1));
  const inline = new InlineDecoder();
  if (threads <= 0) return inline;
  return new WorkerDecoder(threads, o.inlineBelow ?? 64 << 10, inline);
}

function asNydusError(e: unknown, chunk: DecodableChunk, where: string): NydusError {
  if (e instanceof NydusError && e.errno !== undefined) return e;
  return new FormatError('ERR_CHUNK_DECODE', `Cannot decode chunk ${chunk.index} of ${where}: ${(e as Error).message}`, { errno: 5, offset: chunk.compressedOffset, cause: e });
}

/** Decodes on the calling thread, yielding to the event loop every few chunks of a long run. */
class InlineDecoder implements ChunkDecoder {
  async decode(raw: Uint8Array, base: number, chunks: readonly DecodableChunk[], codec: ChunkCodec, where: string): Promise<DecodeResult[]> {
    const out: DecodeResult[] = [];
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i] as DecodableChunk;
      const off = c.compressedOffset - base;
      try {
        out.push(decodeChunk(raw.subarray(off, off + c.compressedSize), c, codec, where));
      } catch (e) {
        out.push(asNydusError(e, c, where));
      }
      if (i % 8 === 7 && i + 1 < chunks.length) await new Promise<void>((r) => setImmediate(r));
    }
    return out;
  }

  async close(): Promise<void> { /* nothing held */ }
}

interface Pending {
  resolve(r: DecodeResult[]): void;
  reject(e: unknown): void;
  chunks: readonly DecodableChunk[];
  where: string;
}

/** A worker thread and the decodes it has been given. */
interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

const WORKER_URL = siblingModuleUrl(import.meta.url, 'decode-worker');

/** Decodes large runs on worker threads (the least busy one), small ones in place. */
class WorkerDecoder implements ChunkDecoder {
  readonly #slots: (Slot | undefined)[];
  readonly #inlineBelow: number;
  readonly #inline: InlineDecoder;
  #nextId = 1;
  #closed = false;

  constructor(threads: number, inlineBelow: number, inline: InlineDecoder) {
    this.#slots = new Array<Slot | undefined>(threads).fill(undefined);
    this.#inlineBelow = inlineBelow;
    this.#inline = inline;
    // Start the threads now: they load while the daemon mounts, not on the first read.
    for (let k = 0; k < threads; k++) this.#slot(k);
  }

  #slot(k: number): Slot {
    const had = this.#slots[k];
    if (had) return had;
    const worker = startModuleWorker(WORKER_URL);
    const slot: Slot = { worker, pending: new Map() };
    worker.unref();
    worker.on('message', (m: DecodeReply) => {
      const p = slot.pending.get(m.id);
      if (!p) return;
      slot.pending.delete(m.id);
      if (slot.pending.size === 0) worker.unref();
      p.resolve(this.#results(m, p));
    });
    const fail = (why: string): void => {
      if (this.#slots[k] === slot) this.#slots[k] = undefined;
      for (const p of slot.pending.values()) p.reject(new FormatError('ERR_DECODE_WORKER', `Cannot decode chunks of ${p.where}: the decoding thread ${why}`, { errno: 5 }));
      slot.pending.clear();
    };
    worker.on('error', (e) => fail(`failed: ${e.message}`));
    worker.on('exit', (code) => fail(`exited (${code})`));
    this.#slots[k] = slot;
    return slot;
  }

  #results(m: DecodeReply, p: Pending): DecodeResult[] {
    const out: DecodeResult[] = [];
    let pos = 0;
    for (const c of p.chunks) {
      out.push(m.slab.subarray(pos, pos + c.uncompressedSize));
      pos += c.uncompressedSize;
    }
    for (const e of m.errors) out[e.i] = new FormatError(e.code, e.message, { errno: 5, ...(e.offset === undefined ? {} : { offset: e.offset }) });
    return out;
  }

  decode(raw: Uint8Array, base: number, chunks: readonly DecodableChunk[], codec: ChunkCodec, where: string): Promise<DecodeResult[]> {
    if (this.#closed || raw.length < this.#inlineBelow || chunks.length === 0) return this.#inline.decode(raw, base, chunks, codec, where);
    let best: Slot | undefined;
    for (let k = 0; k < this.#slots.length; k++) {
      const s = this.#slot(k);
      if (!best || s.pending.size < best.pending.size) best = s;
    }
    const slot = best as Slot;
    const meta = new Float64Array(chunks.length * META_FIELDS);
    const digests = new Uint8Array(chunks.length * DIGEST_SIZE);
    chunks.forEach((c, i) => {
      meta.set([c.index, c.flags, c.compressedOffset, c.compressedSize, c.uncompressedSize], i * META_FIELDS);
      digests.set(c.digest.subarray(0, DIGEST_SIZE), i * DIGEST_SIZE);
    });
    // A buffer that is all of its ArrayBuffer moves to the thread; a view into a larger one is copied.
    const whole = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength && raw.buffer instanceof ArrayBuffer;
    const bytes = whole ? raw : raw.slice();
    const id = this.#nextId++;
    const req: DecodeRequest = { id, raw: bytes, base, meta, digests, compressor: codec.compressor, digester: codec.digester, validate: codec.validate !== false, where };
    return new Promise<DecodeResult[]>((resolve, reject) => {
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(id, { resolve, reject, chunks, where });
      slot.worker.postMessage(req, [bytes.buffer as ArrayBuffer, meta.buffer, digests.buffer]);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const slots = this.#slots.filter((s): s is Slot => s !== undefined);
    this.#slots.fill(undefined);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
