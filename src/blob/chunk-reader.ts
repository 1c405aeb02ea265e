/**
 * Reading one chunk of a blob: fetch its compressed bytes, decompress, verify the digest.
 * A chunk that fails verification is an EIO-carrying FormatError, never wrong bytes.
 * @module
 */
import { FormatError, NydusError } from '../util/errors.js';
import { toHex } from '../util/bytes.js';
import { decompressChunk, decompressChunkInto, type Compressor } from '../util/compress.js';
import { digest, type Digester } from '../util/digest.js';
import type { ByteSource } from '../image/byte-source.js';
import { CHUNK_FLAG_COMPRESSED, type ChunkRecord } from '../format/v6/chunk-record.js';

/** How to decode chunks of one blob. */
export interface ChunkCodec {
  compressor: Compressor;
  digester: Digester;
  /** Check the digest of every chunk (default true). */
  validate?: boolean;
}

/** The fields of a chunk record that decoding needs. */
export type DecodableChunk = Pick<ChunkRecord, 'index' | 'flags' | 'compressedOffset' | 'compressedSize' | 'uncompressedSize' | 'digest'>;

/**
 * Decode a chunk from its stored bytes: into `dst` when given (exactly `uncompressedSize` bytes,
 * then returned), else into a new buffer.
 */
export function decodeChunk(stored: Uint8Array, rec: DecodableChunk, codec: ChunkCodec, where: string, dst?: Uint8Array): Uint8Array {
  let data = stored;
  if ((rec.flags & CHUNK_FLAG_COMPRESSED) !== 0) {
    try {
      if (dst && dst.length === rec.uncompressedSize) {
        decompressChunkInto(codec.compressor, stored, dst);
        data = dst;
      } else {
        data = decompressChunk(codec.compressor, stored, rec.uncompressedSize);
      }
    } catch (e) {
      // Name the chunk: the codec's message only says what is wrong with the bytes.
      if (e instanceof NydusError) throw new FormatError(e.code, `Cannot read chunk ${rec.index} of ${where} (${rec.compressedSize} bytes at ${rec.compressedOffset}): ${e.message}`, { errno: 5, offset: rec.compressedOffset, cause: e });
      throw e;
    }
  } else if (dst && dst.length === stored.length) {
    dst.set(stored);
    data = dst;
  }
  if (data.length !== rec.uncompressedSize) {
    throw new FormatError('ERR_CHUNK_SIZE', `Cannot read chunk ${rec.index} of ${where}: ${data.length} bytes, expected ${rec.uncompressedSize}`, { errno: 5, offset: rec.compressedOffset });
  }
  if (codec.validate !== false) {
    const d = digest(codec.digester, data);
    if (Buffer.compare(d, rec.digest) !== 0) {
      throw new FormatError('ERR_CHUNK_DIGEST', `Cannot read chunk ${rec.index} of ${where}: ${codec.digester} ${toHex(d)} differs from the stored ${toHex(rec.digest)}`, { errno: 5, offset: rec.compressedOffset });
    }
  }
  return data;
}

/** Read and decode chunk `rec` from a blob file. */
export function readChunk(blob: ByteSource, rec: ChunkRecord, codec: ChunkCodec, where: string): Uint8Array {
  if (rec.compressedOffset + rec.compressedSize > blob.size) {
    throw new FormatError('ERR_TRUNCATED', `Cannot read chunk ${rec.index} of ${where}: ${rec.compressedOffset}+${rec.compressedSize} is past the blob's ${blob.size} bytes`, { errno: 5, offset: rec.compressedOffset });
  }
  return decodeChunk(blob.read(rec.compressedOffset, rec.compressedSize), rec, codec, where);
}
