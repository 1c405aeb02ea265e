/**
 * The Nydus extended superblock (256 bytes at offset 1152).
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { getU64, setU64 } from '../../util/bytes.js';
import {
  EROFS_BLOCK_SIZE, RAFS_BLOB_ENTRY_SIZE, RAFS_CHUNK_RECORD_SIZE, RAFS_EXT_SUPER_SIZE,
  RAFS_FLAG_COMPRESSION_GZIP, RAFS_FLAG_COMPRESSION_LZ4, RAFS_FLAG_COMPRESSION_NONE, RAFS_FLAG_COMPRESSION_ZSTD,
  RAFS_FLAG_HASH_BLAKE3, RAFS_FLAG_HASH_SHA256, isValidChunkSize,
} from './constants.js';
import type { Compressor } from '../../util/compress.js';
import type { Digester } from '../../util/digest.js';

/** Size of the encoded extended superblock. */
export const EXT_SUPERBLOCK_SIZE = RAFS_EXT_SUPER_SIZE;

/** Decoded extended superblock. */
export interface ExtSuperblock {
  /** @0 s_flags u64 (RAFS_FLAG_*). */
  flags: number;
  /** @8 blob_table_offset u64. */
  blobTableOffset: number;
  /** @16 blob_table_size u32. */
  blobTableSize: number;
  /** @20 chunk_size u32. */
  chunkSize: number;
  /** @24 chunk_table_offset u64. */
  chunkTableOffset: number;
  /** @32 chunk_table_size u64. */
  chunkTableSize: number;
  /** @40 prefetch_table_offset u64. */
  prefetchTableOffset: number;
  /** @48 prefetch_table_size u32 (bytes). */
  prefetchTableSize: number;
}

/** Decode at `off` (normally 1152). */
export function decodeExtSuperblock(view: DataView, off: number): ExtSuperblock {
  if (view.byteLength < off + EXT_SUPERBLOCK_SIZE) {
    throw new FormatError('ERR_TRUNCATED', `Cannot decode extended superblock: file has ${view.byteLength} bytes`, { offset: off });
  }
  return {
    flags: getU64(view, off, 's_flags'),
    blobTableOffset: getU64(view, off + 8, 'blob_table_offset'),
    blobTableSize: view.getUint32(off + 16, true),
    chunkSize: view.getUint32(off + 20, true),
    chunkTableOffset: getU64(view, off + 24, 'chunk_table_offset'),
    chunkTableSize: getU64(view, off + 32, 'chunk_table_size'),
    prefetchTableOffset: getU64(view, off + 40, 'prefetch_table_offset'),
    prefetchTableSize: view.getUint32(off + 48, true),
  };
}

/** Encode at `off`, zeroing the padding and reserved bytes. */
export function encodeExtSuperblock(x: ExtSuperblock, view: DataView, off: number): void {
  for (let i = 0; i < EXT_SUPERBLOCK_SIZE; i++) view.setUint8(off + i, 0);
  setU64(view, off, x.flags);
  setU64(view, off + 8, x.blobTableOffset);
  view.setUint32(off + 16, x.blobTableSize, true);
  view.setUint32(off + 20, x.chunkSize, true);
  setU64(view, off + 24, x.chunkTableOffset);
  setU64(view, off + 32, x.chunkTableSize);
  setU64(view, off + 40, x.prefetchTableOffset);
  view.setUint32(off + 48, x.prefetchTableSize, true);
}

const COMPRESSION_FLAGS: Array<[number, Compressor]> = [
  [RAFS_FLAG_COMPRESSION_NONE, 'none'], [RAFS_FLAG_COMPRESSION_LZ4, 'lz4_block'],
  [RAFS_FLAG_COMPRESSION_GZIP, 'gzip'], [RAFS_FLAG_COMPRESSION_ZSTD, 'zstd'],
];
const HASH_FLAGS: Array<[number, Digester]> = [[RAFS_FLAG_HASH_BLAKE3, 'blake3'], [RAFS_FLAG_HASH_SHA256, 'sha256']];

/** s_flags bit for a compressor. */
export function compressorFlag(c: Compressor): number {
  return (COMPRESSION_FLAGS.find(([, n]) => n === c) as [number, Compressor])[0];
}

/** s_flags bit for a digester. */
export function digesterFlag(d: Digester): number {
  return (HASH_FLAGS.find(([, n]) => n === d) as [number, Digester])[0];
}

/** The compressor named by s_flags (exactly one bit must be set). */
export function compressorOfFlags(flags: number): Compressor {
  const set = COMPRESSION_FLAGS.filter(([bit]) => (flags & bit) !== 0);
  if (set.length !== 1) throw new FormatError('ERR_BAD_SUPERBLOCK', `Cannot use extended superblock: s_flags 0x${flags.toString(16)} sets ${set.length} compression bits, expected 1`, { offset: 1152 });
  return (set[0] as [number, Compressor])[1];
}

/** The digester named by s_flags (exactly one bit must be set). */
export function digesterOfFlags(flags: number): Digester {
  const set = HASH_FLAGS.filter(([bit]) => (flags & bit) !== 0);
  if (set.length !== 1) throw new FormatError('ERR_BAD_SUPERBLOCK', `Cannot use extended superblock: s_flags 0x${flags.toString(16)} sets ${set.length} hash bits, expected 1`, { offset: 1152 });
  return (set[0] as [number, Digester])[1];
}

/** Check the invariants Nydus's reader enforces against a bootstrap of `fileSize` bytes. */
export function validateExtSuperblock(x: ExtSuperblock, fileSize: number): void {
  const bad = (field: string, why: string): never => {
    throw new FormatError('ERR_BAD_SUPERBLOCK', `Cannot use extended superblock: ${field} ${why}`, { offset: 1152 });
  };
  compressorOfFlags(x.flags);
  digesterOfFlags(x.flags);
  if (!isValidChunkSize(x.chunkSize)) bad('chunk_size', `0x${x.chunkSize.toString(16)} is not a power of two in 4 KiB..16 MiB`);
  if (x.blobTableOffset % EROFS_BLOCK_SIZE !== 0) bad('blob_table_offset', `${x.blobTableOffset} is not 4 KiB aligned`);
  if (x.blobTableSize % RAFS_BLOB_ENTRY_SIZE !== 0) bad('blob_table_size', `${x.blobTableSize} is not a multiple of ${RAFS_BLOB_ENTRY_SIZE}`);
  if (x.blobTableOffset + x.blobTableSize > fileSize) bad('blob_table_offset', `${x.blobTableOffset}+${x.blobTableSize} is past the end of the ${fileSize}-byte bootstrap`);
  if (x.chunkTableSize % RAFS_CHUNK_RECORD_SIZE !== 0) bad('chunk_table_size', `${x.chunkTableSize} is not a multiple of ${RAFS_CHUNK_RECORD_SIZE}`);
  if (x.chunkTableSize > 0 && x.chunkTableOffset % EROFS_BLOCK_SIZE !== 0) bad('chunk_table_offset', `${x.chunkTableOffset} is not 4 KiB aligned`);
  if (x.chunkTableOffset + x.chunkTableSize > fileSize) bad('chunk_table_offset', `${x.chunkTableOffset}+${x.chunkTableSize} is past the end of the bootstrap`);
  if (x.prefetchTableSize % 4 !== 0) bad('prefetch_table_size', `${x.prefetchTableSize} is not a multiple of 4`);
  if (x.prefetchTableOffset + x.prefetchTableSize > fileSize) bad('prefetch_table_offset', `${x.prefetchTableOffset}+${x.prefetchTableSize} is past the end of the bootstrap`);
}
