/**
 * The 8-byte chunk index of a chunk-based inode, as Nydus encodes it:
 * @0 u16 chunk index bits 0-15, @2 u16 (index bits 16-23) << 8 | (blob_index + 1), @4 u32 block address.
 * The kernel sees @2 as the device id (masked by the device count).
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { EROFS_CHUNK_INDEX_SIZE } from './constants.js';

/** Size of one chunk index. */
export const CHUNK_INDEX_SIZE = EROFS_CHUNK_INDEX_SIZE;

/** A decoded chunk address. */
export interface ChunkIndex {
  /** Blob table index. */
  blobIndex: number;
  /** Chunk index within the blob (24 bits). */
  chunkIndex: number;
  /** Uncompressed offset in the blob / block size. */
  blkaddr: number;
}

/** Decode at `off`. A device id of 0 (the bootstrap itself) is rejected. */
export function decodeChunkIndex(view: DataView, off: number): ChunkIndex {
  const lo = view.getUint16(off, true);
  const hi = view.getUint16(off + 2, true);
  const dev = hi & 0xff;
  if (dev === 0) throw new FormatError('ERR_BAD_CHUNK_INDEX', `Cannot decode chunk index at ${off}: device id 0 is not a blob`, { offset: off });
  return { blobIndex: dev - 1, chunkIndex: ((hi >> 8) << 16) | lo, blkaddr: view.getUint32(off + 4, true) };
}

/** Encode at `off`. */
export function encodeChunkIndex(c: ChunkIndex, view: DataView, off: number): void {
  if (c.blobIndex >= 255) throw new RangeError(`Cannot encode chunk index: blob index ${c.blobIndex} needs fewer than 255 blobs`);
  if (c.chunkIndex >= 1 << 24) throw new RangeError(`Cannot encode chunk index: chunk index ${c.chunkIndex} exceeds 2^24`);
  view.setUint16(off, c.chunkIndex & 0xffff, true);
  view.setUint16(off + 2, ((c.chunkIndex >>> 16) << 8) | (c.blobIndex + 1), true);
  view.setUint32(off + 4, c.blkaddr, true);
}

/** The i_u chunk format value: INDEXES | (log2(chunk size) - block bits). */
export function chunkFormat(chunkSize: number, blockBits = 12): number {
  return 0x20 | (Math.log2(chunkSize) - blockBits);
}
