/**
 * One 128-byte entry of a blob's table of contents (ToC).
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { decodeCString, encodeCString, getU64, setU64 } from '../../util/bytes.js';

/** Size of one entry. */
export const TOC_ENTRY_SIZE = 128;

/** Section names. */
export const TOC_ENTRY_BLOB_RAW = 'image.blob';
export const TOC_ENTRY_BOOTSTRAP = 'image.boot';
export const TOC_ENTRY_BLOB_META = 'blob.meta';
export const TOC_ENTRY_BLOB_META_HEADER = 'blob.meta.header';
export const TOC_ENTRY_BLOB_DIGEST = 'blob.digest';
export const TOC_ENTRY_BLOB_TOC = 'rafs.blob.toc';

/** ToC flags: how a section is compressed. */
export const TOC_FLAG_NONE = 0x1;
export const TOC_FLAG_ZSTD = 0x2;
export const TOC_FLAG_LZ4_BLOCK = 0x4;

/** A decoded entry. */
export interface TocEntry {
  /** @0 flags u32. */
  flags: number;
  /** @8 name[16]. */
  name: string;
  /** @24 sha256 of the uncompressed content. */
  digest: Uint8Array;
  /** @56 compressed_offset u64. */
  compressedOffset: number;
  /** @64 compressed_size u64. */
  compressedSize: number;
  /** @72 uncompressed_size u64. */
  uncompressedSize: number;
}

/** Decode at `off`. */
export function decodeTocEntry(view: DataView, off: number): TocEntry {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const flags = view.getUint32(off, true);
  if (flags !== TOC_FLAG_NONE && flags !== TOC_FLAG_ZSTD && flags !== TOC_FLAG_LZ4_BLOCK) {
    throw new FormatError('ERR_BAD_TOC', `Cannot decode ToC entry at ${off}: flags 0x${flags.toString(16)} name no known compressor`, { offset: off });
  }
  return {
    flags,
    name: decodeCString(bytes, off + 8, 16),
    digest: bytes.slice(off + 24, off + 56),
    compressedOffset: getU64(view, off + 56, 'toc compressed_offset'),
    compressedSize: getU64(view, off + 64, 'toc compressed_size'),
    uncompressedSize: getU64(view, off + 72, 'toc uncompressed_size'),
  };
}

/** Encode at `off`. */
export function encodeTocEntry(e: TocEntry, view: DataView, off: number): void {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  bytes.fill(0, off, off + TOC_ENTRY_SIZE);
  view.setUint32(off, e.flags, true);
  encodeCString(e.name, bytes, off + 8, 16);
  bytes.set(e.digest.subarray(0, 32), off + 24);
  setU64(view, off + 56, e.compressedOffset);
  setU64(view, off + 64, e.compressedSize);
  setU64(view, off + 72, e.uncompressedSize);
}
