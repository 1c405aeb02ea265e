/**
 * RafsV6Blob: one 256-byte entry of the blob table.
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { decodeCString, encodeCString, getU64, setU64 } from '../../util/bytes.js';
import { RAFS_BLOB_ENTRY_SIZE, isValidChunkSize } from './constants.js';
import {
  BLOB_FEATURE_ALIGNED, BLOB_FEATURE_BATCH, BLOB_FEATURE_CHUNK_INFO_V2, BLOB_FEATURE_ENCRYPTED, BLOB_FEATURE_TARFS,
  BLOB_FEATURE_ZRAN, BLOB_FEATURE_INTERNAL,
} from '../blob/features.js';

/** Size of one blob table entry. */
export const BLOB_ENTRY_SIZE = RAFS_BLOB_ENTRY_SIZE;

/** Decoded blob table entry. */
export interface BlobEntry {
  /** @0 blob_id[64]. */
  blobId: string;
  /** @64 blob_index u32: position in the table. */
  blobIndex: number;
  /** @68 chunk_size u32. */
  chunkSize: number;
  /** @72 chunk_count u32. */
  chunkCount: number;
  /** @76 compression_algo u32 (0 none, 1 lz4_block, 2 gzip, 3 zstd). */
  compressionAlgo: number;
  /** @80 digest_algo u32 (0 blake3, 1 sha256). */
  digestAlgo: number;
  /** @84 features u32 (BLOB_FEATURE_*). */
  features: number;
  /** @88 compressed_size u64. */
  compressedSize: number;
  /** @96 uncompressed_size u64. */
  uncompressedSize: number;
  /** @104 blob_toc_size u32. */
  blobTocSize: number;
  /** @108 ci_compressor u32. */
  ciCompressor: number;
  /** @112 ci_offset u64. */
  ciOffset: number;
  /** @120 ci_compressed_size u64. */
  ciCompressedSize: number;
  /** @128 ci_uncompressed_size u64. */
  ciUncompressedSize: number;
  /** @136 blob_toc_digest[32]. */
  blobTocDigest: Uint8Array;
  /** @168 blob_meta_digest[32]. */
  blobMetaDigest: Uint8Array;
  /** @200 blob_meta_size u64. */
  blobMetaSize: number;
  /** @208 cipher_iv[8]. */
  cipherIv: Uint8Array;
  /** @216 cipher_algo u32. */
  cipherAlgo: number;
}

/** Decode the entry at `off`. */
export function decodeBlobEntry(view: DataView, off: number): BlobEntry {
  if (view.byteLength < off + BLOB_ENTRY_SIZE) throw new FormatError('ERR_TRUNCATED', `Cannot decode blob table entry at ${off}: bootstrap too short`, { offset: off });
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  return {
    blobId: decodeCString(bytes, off, 64),
    blobIndex: view.getUint32(off + 64, true),
    chunkSize: view.getUint32(off + 68, true),
    chunkCount: view.getUint32(off + 72, true),
    compressionAlgo: view.getUint32(off + 76, true),
    digestAlgo: view.getUint32(off + 80, true),
    features: view.getUint32(off + 84, true),
    compressedSize: getU64(view, off + 88, 'compressed_size'),
    uncompressedSize: getU64(view, off + 96, 'uncompressed_size'),
    blobTocSize: view.getUint32(off + 104, true),
    ciCompressor: view.getUint32(off + 108, true),
    ciOffset: getU64(view, off + 112, 'ci_offset'),
    ciCompressedSize: getU64(view, off + 120, 'ci_compressed_size'),
    ciUncompressedSize: getU64(view, off + 128, 'ci_uncompressed_size'),
    blobTocDigest: bytes.slice(off + 136, off + 168),
    blobMetaDigest: bytes.slice(off + 168, off + 200),
    blobMetaSize: Number(view.getBigUint64(off + 200, true) & 0x1f_ffff_ffff_ffffn),
    cipherIv: bytes.slice(off + 208, off + 216),
    cipherAlgo: view.getUint32(off + 216, true),
  };
}

/** Encode the entry at `off`. */
export function encodeBlobEntry(b: BlobEntry, view: DataView, off: number): void {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  bytes.fill(0, off, off + BLOB_ENTRY_SIZE);
  encodeCString(b.blobId, bytes, off, 64);
  view.setUint32(off + 64, b.blobIndex, true);
  view.setUint32(off + 68, b.chunkSize, true);
  view.setUint32(off + 72, b.chunkCount, true);
  view.setUint32(off + 76, b.compressionAlgo, true);
  view.setUint32(off + 80, b.digestAlgo, true);
  view.setUint32(off + 84, b.features, true);
  setU64(view, off + 88, b.compressedSize);
  setU64(view, off + 96, b.uncompressedSize);
  view.setUint32(off + 104, b.blobTocSize, true);
  view.setUint32(off + 108, b.ciCompressor, true);
  setU64(view, off + 112, b.ciOffset);
  setU64(view, off + 120, b.ciCompressedSize);
  setU64(view, off + 128, b.ciUncompressedSize);
  bytes.set(b.blobTocDigest.subarray(0, 32), off + 136);
  bytes.set(b.blobMetaDigest.subarray(0, 32), off + 168);
  setU64(view, off + 200, b.blobMetaSize);
  bytes.set(b.cipherIv.subarray(0, 8), off + 208);
  view.setUint32(off + 216, b.cipherAlgo, true);
}

/** Apply the checks Nydus's reader makes to one entry at table position `index`. */
export function validateBlobEntry(b: BlobEntry, index: number, sbChunkSize: number, tableOffset: number): void {
  const off = tableOffset + index * BLOB_ENTRY_SIZE;
  const bad = (field: string, why: string): never => {
    throw new FormatError('ERR_BAD_BLOB_ENTRY', `Cannot use blob table entry ${index}: ${field} ${why}`, { offset: off });
  };
  if (b.blobId.length === 0 || b.blobId.length > 64) bad('blob_id', 'is empty');
  if (b.blobIndex !== index) bad('blob_index', `is ${b.blobIndex}, expected ${index}`);
  if (!isValidChunkSize(b.chunkSize) || b.chunkSize !== sbChunkSize) bad('chunk_size', `0x${b.chunkSize.toString(16)} differs from the superblock's 0x${sbChunkSize.toString(16)}`);
  if (b.chunkCount > 1 << 24) bad('chunk_count', `${b.chunkCount} exceeds 2^24`);
  if (b.compressionAlgo > 3) bad('compression_algo', `${b.compressionAlgo} is unknown`);
  if (b.digestAlgo > 1) bad('digest_algo', `${b.digestAlgo} is unknown`);
  if ((b.features & BLOB_FEATURE_INTERNAL) !== 0) bad('features', `0x${b.features.toString(16)} has the internal bit 0x80000000`);
  if (b.compressedSize > 2 ** 40) bad('compressed_size', `${b.compressedSize} exceeds 2^40`);
  if (b.uncompressedSize > 2 ** 44) bad('uncompressed_size', `${b.uncompressedSize} exceeds 2^44`);
  if ((b.features & BLOB_FEATURE_TARFS) === 0 && (b.features & BLOB_FEATURE_ALIGNED) === 0) bad('features', `0x${b.features.toString(16)} lacks ALIGNED`);
  if (b.cipherAlgo > 1) bad('cipher_algo', `${b.cipherAlgo} is unknown`);
  const v2 = (b.features & BLOB_FEATURE_CHUNK_INFO_V2) !== 0;
  const special = (b.features & (BLOB_FEATURE_BATCH | BLOB_FEATURE_ZRAN | BLOB_FEATURE_ENCRYPTED)) !== 0;
  if (b.ciUncompressedSize !== 0 || b.chunkCount !== 0) {
    if (v2) {
      if (special ? b.ciUncompressedSize < 24 * b.chunkCount : b.ciUncompressedSize !== 24 * b.chunkCount) bad('ci_uncompressed_size', `${b.ciUncompressedSize} does not fit ${b.chunkCount} v2 chunk infos`);
    } else {
      if (special) bad('features', 'BATCH/ZRAN/ENCRYPTED require CHUNK_INFO_V2');
      if (b.ciUncompressedSize !== 0 && b.ciUncompressedSize !== 16 * b.chunkCount) bad('ci_uncompressed_size', `${b.ciUncompressedSize} does not fit ${b.chunkCount} v1 chunk infos`);
    }
  }
}
