/**
 * The 4096-byte blob compression-context (chunk info) header that follows the CI array.
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { getU64, setU64 } from '../../util/bytes.js';

/** Size of the header. */
export const CI_HEADER_SIZE = 4096;
/** s_magic and s_magic2. */
export const CI_HEADER_MAGIC = 0xb10bb10b;

/** Decoded header. */
export interface CiHeader {
  /** @4 s_features u32 (BLOB_FEATURE_*). */
  features: number;
  /** @8 s_ci_compressor u32 (0 none, 1 lz4_block, 2 gzip, 3 zstd). */
  ciCompressor: number;
  /** @12 s_ci_entries u32. */
  ciEntries: number;
  /** @16 s_ci_offset u64: file offset of the compressed CI array. */
  ciOffset: number;
  /** @24 s_ci_compressed_size u64. */
  ciCompressedSize: number;
  /** @32 s_ci_uncompressed_size u64. */
  ciUncompressedSize: number;
  /** @40 s_ci_zran_offset u64, @48 s_ci_zran_size u64, @56 s_ci_zran_count u32. */
  zranOffset: number;
  zranSize: number;
  zranCount: number;
}

/** Decode at `off`; checks both magics. */
export function decodeCiHeader(view: DataView, off: number): CiHeader {
  if (view.byteLength < off + CI_HEADER_SIZE) throw new FormatError('ERR_TRUNCATED', `Cannot decode blob meta header at ${off}: data too short`, { offset: off });
  const m1 = view.getUint32(off, true);
  const m2 = view.getUint32(off + CI_HEADER_SIZE - 4, true);
  if (m1 !== CI_HEADER_MAGIC || m2 !== CI_HEADER_MAGIC) {
    throw new FormatError('ERR_BAD_MAGIC', `Cannot decode blob meta header at ${off}: magic 0x${m1.toString(16)}/0x${m2.toString(16)}, expected 0xb10bb10b`, { offset: off });
  }
  return {
    features: view.getUint32(off + 4, true),
    ciCompressor: view.getUint32(off + 8, true),
    ciEntries: view.getUint32(off + 12, true),
    ciOffset: getU64(view, off + 16, 's_ci_offset'),
    ciCompressedSize: getU64(view, off + 24, 's_ci_compressed_size'),
    ciUncompressedSize: getU64(view, off + 32, 's_ci_uncompressed_size'),
    zranOffset: getU64(view, off + 40, 's_ci_zran_offset'),
    zranSize: getU64(view, off + 48, 's_ci_zran_size'),
    zranCount: view.getUint32(off + 56, true),
  };
}

/** Encode into a fresh 4096-byte buffer. */
export function encodeCiHeader(h: CiHeader): Uint8Array {
  const buf = new Uint8Array(CI_HEADER_SIZE);
  const view = new DataView(buf.buffer);
  view.setUint32(0, CI_HEADER_MAGIC, true);
  view.setUint32(4, h.features >>> 0, true);
  view.setUint32(8, h.ciCompressor, true);
  view.setUint32(12, h.ciEntries, true);
  setU64(view, 16, h.ciOffset);
  setU64(view, 24, h.ciCompressedSize);
  setU64(view, 32, h.ciUncompressedSize);
  setU64(view, 40, h.zranOffset);
  setU64(view, 48, h.zranSize);
  view.setUint32(56, h.zranCount, true);
  view.setUint32(CI_HEADER_SIZE - 4, CI_HEADER_MAGIC, true);
  return buf;
}
