/**
 * One 80-byte record of the bootstrap's chunk table (RafsV5ChunkInfo layout).
 * @module
 */
import { getU64, setU64 } from '../../util/bytes.js';
import { RAFS_CHUNK_RECORD_SIZE } from './constants.js';

/** Size of one record. */
export const CHUNK_RECORD_SIZE = RAFS_CHUNK_RECORD_SIZE;

/** Chunk flags. */
export const CHUNK_FLAG_COMPRESSED = 0x1;
export const CHUNK_FLAG_ENCRYPTED = 0x4;
export const CHUNK_FLAG_BATCH = 0x8;
export const CHUNK_FLAG_HAS_CRC32 = 0x10;

/** A decoded chunk record. */
export interface ChunkRecord {
  /** @0 digest[32] of the uncompressed data. */
  digest: Uint8Array;
  /** @32 blob_index u32. */
  blobIndex: number;
  /** @36 flags u32. */
  flags: number;
  /** @40 compressed_size u32. */
  compressedSize: number;
  /** @44 uncompressed_size u32. */
  uncompressedSize: number;
  /** @48 compressed_offset u64. */
  compressedOffset: number;
  /** @56 uncompressed_offset u64. */
  uncompressedOffset: number;
  /** @64 file_offset u64 (of the first file that used the chunk). */
  fileOffset: number;
  /** @72 index u32 within the blob. */
  index: number;
  /** @76 crc32 u32 (CRC-32C), valid with HAS_CRC32. */
  crc32: number;
}

/**
 * Decode at `off`. The digest is a view of the decoded bytes, not a copy (no allocation per
 * record on the read path): they must not change while the record is in use.
 */
export function decodeChunkRecord(view: DataView, off: number): ChunkRecord {
  if (off < 0 || off + CHUNK_RECORD_SIZE > view.byteLength) throw new RangeError(`chunk record at ${off} runs past the ${view.byteLength} bytes given`);
  return {
    digest: new Uint8Array(view.buffer, view.byteOffset + off, 32),
    blobIndex: view.getUint32(off + 32, true),
    flags: view.getUint32(off + 36, true),
    compressedSize: view.getUint32(off + 40, true),
    uncompressedSize: view.getUint32(off + 44, true),
    compressedOffset: getU64(view, off + 48, 'compressed_offset'),
    uncompressedOffset: getU64(view, off + 56, 'uncompressed_offset'),
    fileOffset: getU64(view, off + 64, 'file_offset'),
    index: view.getUint32(off + 72, true),
    crc32: view.getUint32(off + 76, true),
  };
}

/** Encode at `off`. */
export function encodeChunkRecord(c: ChunkRecord, view: DataView, off: number): void {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  bytes.set(c.digest.subarray(0, 32), off);
  view.setUint32(off + 32, c.blobIndex, true);
  view.setUint32(off + 36, c.flags, true);
  view.setUint32(off + 40, c.compressedSize, true);
  view.setUint32(off + 44, c.uncompressedSize, true);
  setU64(view, off + 48, c.compressedOffset);
  setU64(view, off + 56, c.uncompressedOffset);
  setU64(view, off + 64, c.fileOffset);
  view.setUint32(off + 72, c.index, true);
  view.setUint32(off + 76, c.crc32 >>> 0, true);
}
