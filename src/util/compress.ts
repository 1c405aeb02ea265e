/**
 * Per-chunk compressors: zstd (zstd-napi, level 3, one frame a chunk), lz4_block (a raw LZ4
 * block, no size prefix) and none.
 * @module
 */
import { createRequire } from 'node:module';
import * as zstd from 'zstd-napi';
import type { DCtx } from 'zstd-napi/binding.js';
import { compressSync as lz4CompressPrefixed, uncompressSync as lz4UncompressPrefixed } from 'lz4-napi';
import { FormatError } from './errors.js';

/** Compressors by their CLI names. */
export type Compressor = 'none' | 'lz4_block' | 'zstd' | 'gzip';

/** Nydus's on-disk code (RafsV6Blob.compression_algo). */
export const COMPRESSOR_CODE: Record<Compressor, number> = { none: 0, lz4_block: 1, gzip: 2, zstd: 3 };

/** Type guard for CLI input (gzip is read-only here). */
export function isWritableCompressor(s: string): s is Exclude<Compressor, 'gzip'> {
  return s === 'none' || s === 'lz4_block' || s === 'zstd';
}

/** The compressor for an on-disk code. */
export function compressorFromCode(code: number): Compressor | undefined {
  return (Object.keys(COMPRESSOR_CODE) as Compressor[]).find((k) => COMPRESSOR_CODE[k] === code);
}

const zstdCompressor = new zstd.Compressor();
zstdCompressor.setParameters({ compressionLevel: 3 });
const zstdDecompressor = new zstd.Decompressor();
/** zstd-napi's native context, which decompresses into a buffer the caller gives. */
const zstdDctx: DCtx = new (createRequire(import.meta.url)('zstd-napi/binding.js') as { DCtx: new () => DCtx }).DCtx();

/**
 * Compress one chunk. Returns the input itself when compression does not make it smaller,
 * as Nydus does (the chunk is then stored raw and not flagged COMPRESSED).
 */
export function compressChunk(algo: Compressor, data: Uint8Array): { data: Uint8Array; compressed: boolean } {
  let out: Uint8Array;
  switch (algo) {
    case 'none':
      return { data, compressed: false };
    case 'zstd':
      out = zstdCompressor.compress(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      break;
    case 'lz4_block': {
      const p = lz4CompressPrefixed(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      out = p.subarray(4);
      break;
    }
    case 'gzip':
      throw new RangeError('Cannot compress chunk: gzip is not supported for writing');
  }
  if (out.length >= data.length) return { data, compressed: false };
  return { data: out, compressed: true };
}

/**
 * Decompress one chunk into exactly `size` bytes. Throws FormatError('ERR_DECOMPRESS') when the
 * data is corrupt or of the wrong size.
 */
export function decompressChunk(algo: Compressor, data: Uint8Array, size: number): Uint8Array {
  let out: Uint8Array;
  try {
    switch (algo) {
      case 'none':
        out = data;
        break;
      case 'zstd':
        out = zstdDecompressor.decompress(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
        break;
      case 'lz4_block': {
        const p = Buffer.allocUnsafe(data.length + 4);
        p.writeUInt32LE(size, 0);
        p.set(data, 4);
        out = lz4UncompressPrefixed(p);
        break;
      }
      case 'gzip': {
        throw new FormatError('ERR_UNSUPPORTED', 'Cannot decompress chunk: gzip chunks are not supported');
      }
    }
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError('ERR_DECOMPRESS', `Cannot decompress chunk: ${algo} data is corrupt (${(e as Error).message})`, { cause: e, errno: 5 });
  }
  if (out.length !== size) {
    throw new FormatError('ERR_DECOMPRESS', `Cannot decompress chunk: got ${out.length} bytes, expected ${size}`, { errno: 5 });
  }
  return out;
}

/**
 * Decompress one chunk into `dst`, which must be exactly its uncompressed size. Throws
 * FormatError('ERR_DECOMPRESS') when the data is corrupt or of another size.
 */
export function decompressChunkInto(algo: Compressor, data: Uint8Array, dst: Uint8Array): void {
  if (algo !== 'zstd') {
    const out = decompressChunk(algo, data, dst.length);
    dst.set(out);
    return;
  }
  let n: number;
  try {
    n = zstdDctx.decompress(dst, data);
  } catch (e) {
    throw new FormatError('ERR_DECOMPRESS', `Cannot decompress chunk: zstd data is corrupt or larger than ${dst.length} bytes (${(e as Error).message})`, { cause: e, errno: 5 });
  }
  if (n !== dst.length) throw new FormatError('ERR_DECOMPRESS', `Cannot decompress chunk: got ${n} bytes, expected ${dst.length}`, { errno: 5 });
}

/** Compress a whole buffer with zstd (metadata sections: CI array, inline bootstrap). */
export function zstdCompress(data: Uint8Array): Uint8Array {
  return zstdCompressor.compress(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

/** Decompress a whole zstd frame. */
export function zstdDecompress(data: Uint8Array): Uint8Array {
  try {
    return zstdDecompressor.decompress(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  } catch (e) {
    throw new FormatError('ERR_DECOMPRESS', `Cannot decompress zstd data: ${(e as Error).message}`, { cause: e });
  }
}
