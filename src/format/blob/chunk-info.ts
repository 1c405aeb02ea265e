/**
 * Blob meta chunk-info records: v1 (16 bytes, native blobs) and v2 (24 bytes, read only).
 * @module
 */
import { FormatError } from '../../util/errors.js';

/** Size of a v1 record. */
export const CHUNK_INFO_V1_SIZE = 16;
/** Size of a v2 record. */
export const CHUNK_INFO_V2_SIZE = 24;

/** A chunk's placement in its blob. */
export interface ChunkInfo {
  compressedOffset: number;
  compressedSize: number;
  uncompressedOffset: number;
  uncompressedSize: number;
  compressed: boolean;
}

const M20 = 0xf_ffffn;

/** Encode a v1 record at `off`. */
export function encodeChunkInfoV1(c: ChunkInfo, view: DataView, off: number): void {
  const us = BigInt(c.uncompressedSize - 1);
  const cs = BigInt(c.compressedSize - 1);
  const uncomp = (BigInt(c.uncompressedOffset) & 0xfff_ffff_f000n) | (((us >> 20n) & 0xfn) << 8n) | ((us & M20) << 44n);
  const comp = (BigInt(c.compressedOffset) & 0xff_ffff_ffffn) | (((cs >> 20n) & 0xfn) << 40n) | ((cs & M20) << 44n);
  view.setBigUint64(off, uncomp, true);
  view.setBigUint64(off + 8, comp, true);
}

/** Decode a v1 record at `off`. A chunk counts as compressed when its sizes differ. */
export function decodeChunkInfoV1(view: DataView, off: number): ChunkInfo {
  const uncomp = view.getBigUint64(off, true);
  const comp = view.getBigUint64(off + 8, true);
  const uncompressedSize = Number((((uncomp >> 8n) & 0xfn) << 20n) | (uncomp >> 44n)) + 1;
  const compressedSize = Number((((comp >> 40n) & 0xfn) << 20n) | (comp >> 44n)) + 1;
  return {
    uncompressedOffset: Number(uncomp & 0xfff_ffff_f000n),
    uncompressedSize,
    compressedOffset: Number(comp & 0xff_ffff_ffffn),
    compressedSize,
    compressed: compressedSize !== uncompressedSize,
  };
}

/** Decode a v2 record at `off` (zran/batch/encrypted chunks are rejected). */
export function decodeChunkInfoV2(view: DataView, off: number): ChunkInfo {
  const uncomp = view.getBigUint64(off, true);
  const comp = view.getBigUint64(off + 8, true);
  const flags = Number(uncomp >> 56n);
  if ((flags & 0xe) !== 0) throw new FormatError('ERR_UNSUPPORTED', `Cannot decode chunk info at ${off}: zran/batch/encrypted chunks (flags 0x${flags.toString(16)}) are not supported`, { offset: off });
  return {
    uncompressedOffset: Number(uncomp & 0xffff_ffffn) * 4096,
    uncompressedSize: Number((uncomp >> 32n) & 0xff_ffffn) + 1,
    compressedOffset: Number(comp & 0xff_ffff_ffffn),
    compressedSize: Number(comp >> 40n),
    compressed: (flags & 1) !== 0,
  };
}
