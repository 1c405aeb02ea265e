/**
 * Splits file data into fixed-size chunks at file offsets that are multiples of the chunk size
 * and hands each to the blob writer. Holes of sparse files read as zeros.
 * @module
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { BlobWriter } from './blob-writer.js';
import type { FileChunk } from './build-node.js';
import { FormatError } from '../util/errors.js';

const scratch = new WeakMap<BlobWriter, Buffer>();

/**
 * One reusable chunk-sized buffer per blob writer (the writer copies what it keeps). Per writer,
 * not per process: builds of several layers run at the same time and must not share it.
 */
function chunkBuffer(writer: BlobWriter, size: number): Buffer {
  let b = scratch.get(writer);
  if (!b || b.length < size) {
    b = Buffer.allocUnsafe(size);
    scratch.set(writer, b);
  }
  return b;
}

/** Chunk a file on disk of `size` bytes. */
export function chunkLocalFile(writer: BlobWriter, path: string, size: number): FileChunk[] {
  const cs = writer.options.chunkSize;
  const out: FileChunk[] = [];
  if (size === 0) return out;
  const fd = openSync(path, 'r');
  try {
    const buf = chunkBuffer(writer, cs);
    for (let off = 0; off < size; off += cs) {
      const len = Math.min(cs, size - off);
      let done = 0;
      while (done < len) {
        const n = readSync(fd, buf, done, len - done, off + done);
        if (n === 0) throw new FormatError('ERR_TRUNCATED', `Cannot read ${path}: file shrank to ${off + done} bytes while building (expected ${size})`, { path, offset: off + done });
        done += n;
      }
      out.push({ blobIndex: writer.options.blobIndex, record: writer.addChunk(buf.subarray(0, len), off) });
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/**
 * Chunk a stream of (offset, data) segments describing a file of `size` bytes (holes allowed).
 * `prefetchRank`: the file's rank in the prefetch table; its chunks go to the blob's prefetch run.
 */
export async function chunkSegments(writer: BlobWriter, segments: AsyncIterable<{ offset: number; data: Uint8Array }>, size: number, where: string, prefetchRank?: number): Promise<FileChunk[]> {
  const cs = writer.options.chunkSize;
  const out: FileChunk[] = [];
  if (size === 0) {
    for await (const _ of segments) { /* drain */ }
    return out;
  }
  let chunkStart = 0;
  const buf = chunkBuffer(writer, cs);
  buf.fill(0, 0, Math.min(cs, size));
  let filled = 0; // bytes of the current chunk known (data or hole) up to this position
  const emitUpTo = (pos: number): void => {
    // Complete every chunk that ends at or before `pos`.
    while (chunkStart < size && chunkStart + Math.min(cs, size - chunkStart) <= pos) {
      const len = Math.min(cs, size - chunkStart);
      out.push({ blobIndex: writer.options.blobIndex, record: writer.addChunk(buf.subarray(0, len), chunkStart, prefetchRank) });
      chunkStart += len;
      filled = 0;
      buf.fill(0, 0, Math.min(cs, Math.max(0, size - chunkStart)));
    }
  };
  for await (const seg of segments) {
    let { offset } = seg;
    let data = seg.data;
    if (offset < chunkStart + filled || offset + data.length > size) {
      throw new FormatError('ERR_BAD_SPARSE', `Cannot read ${where}: data segment at ${offset}+${data.length} is out of order or past the ${size}-byte size`, { path: where });
    }
    emitUpTo(offset);
    while (data.length > 0) {
      const inChunk = offset - chunkStart;
      const n = Math.min(data.length, Math.min(cs, size - chunkStart) - inChunk);
      buf.set(data.subarray(0, n), inChunk);
      filled = inChunk + n;
      offset += n;
      data = data.subarray(n);
      emitUpTo(offset);
    }
  }
  emitUpTo(size);
  return out;
}
