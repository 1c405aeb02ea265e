/**
 * Reading a blob's ToC (the "reverse tar" tail) and the sections it names, e.g. the inline
 * bootstrap `image.boot`.
 * @module
 */
import { createHash } from 'node:crypto';
import { FormatError } from '../util/errors.js';
import { isZero, toHex, viewOf } from '../util/bytes.js';
import { decompressChunk, zstdDecompress } from '../util/compress.js';
import type { ByteSource } from '../image/byte-source.js';
import { decodeSectionHeader, SECTION_HEADER_SIZE } from '../format/blob/section-header.js';
import {
  decodeTocEntry, TOC_ENTRY_BLOB_TOC, TOC_ENTRY_SIZE, TOC_FLAG_LZ4_BLOCK, TOC_FLAG_NONE, TOC_FLAG_ZSTD, type TocEntry,
} from '../format/blob/toc-entry.js';

/** Read the ToC at the end of a blob. `expectedDigest` (blob_toc_digest) is checked unless all zero. */
export function readBlobToc(blob: ByteSource, expectedDigest?: Uint8Array): TocEntry[] {
  if (blob.size < SECTION_HEADER_SIZE + TOC_ENTRY_SIZE) throw new FormatError('ERR_BAD_TOC', `Cannot read blob ToC: blob of ${blob.size} bytes is too small`);
  const hdrOff = blob.size - SECTION_HEADER_SIZE;
  const hdr = decodeSectionHeader(blob.read(hdrOff, SECTION_HEADER_SIZE), hdrOff);
  if (hdr.name !== TOC_ENTRY_BLOB_TOC) throw new FormatError('ERR_BAD_TOC', `Cannot read blob ToC: last tar header names "${hdr.name}", not "${TOC_ENTRY_BLOB_TOC}"`, { offset: hdrOff });
  if (hdr.size % TOC_ENTRY_SIZE !== 0 || hdr.size === 0 || hdr.size > hdrOff || hdr.size > 0x10000) {
    throw new FormatError('ERR_BAD_TOC', `Cannot read blob ToC: size ${hdr.size} is not a positive multiple of 128 within the blob`, { offset: hdrOff });
  }
  const start = hdrOff - hdr.size;
  const data = blob.read(start, hdr.size);
  if (expectedDigest && !isZero(expectedDigest)) {
    const d = createHash('sha256').update(data).update(blob.read(hdrOff, SECTION_HEADER_SIZE)).digest();
    if (Buffer.compare(d, expectedDigest) !== 0) {
      throw new FormatError('ERR_BAD_TOC', `Cannot read blob ToC: digest ${d.toString('hex')} differs from blob_toc_digest ${toHex(expectedDigest)}`, { offset: start });
    }
  }
  const view = viewOf(data);
  const out: TocEntry[] = [];
  for (let off = 0; off < hdr.size; off += TOC_ENTRY_SIZE) {
    const e = decodeTocEntry(view, off);
    // image.blob's offset held the end of the data in older builders: only its size is checked.
    const end = e.name === 'image.blob' ? e.compressedSize : e.compressedOffset + e.compressedSize;
    if (end > start) {
      throw new FormatError('ERR_BAD_TOC', `Cannot read blob ToC: entry "${e.name}" (${e.compressedOffset}+${e.compressedSize}) overlaps the ToC at ${start}`, { offset: start + off });
    }
    out.push(e);
  }
  return out;
}

/** Read, decompress and verify one ToC section. */
export function readTocSection(blob: ByteSource, entry: TocEntry): Uint8Array {
  // An lz4 block is decoded into a buffer of the declared size, so bound it first: lz4 expands at
  // most ~255:1, and nothing is larger than 4 GiB.
  if (entry.uncompressedSize > 0xffff_ffff || (entry.flags === TOC_FLAG_LZ4_BLOCK && entry.uncompressedSize > entry.compressedSize * 255 + 64)) {
    throw new FormatError('ERR_BAD_TOC', `Cannot read ToC section "${entry.name}": uncompressed size ${entry.uncompressedSize} is implausible for ${entry.compressedSize} compressed bytes`, { offset: entry.compressedOffset });
  }
  const raw = blob.read(entry.compressedOffset, entry.compressedSize);
  let data: Uint8Array;
  if (entry.flags === TOC_FLAG_NONE) data = raw;
  else if (entry.flags === TOC_FLAG_ZSTD) data = zstdDecompress(raw);
  else if (entry.flags === TOC_FLAG_LZ4_BLOCK) data = decompressChunk('lz4_block', raw, entry.uncompressedSize);
  else throw new FormatError('ERR_BAD_TOC', `Cannot read ToC section "${entry.name}": unknown flags 0x${entry.flags.toString(16)}`);
  if (data.length !== entry.uncompressedSize) {
    throw new FormatError('ERR_BAD_TOC', `Cannot read ToC section "${entry.name}": ${data.length} bytes, expected ${entry.uncompressedSize}`, { offset: entry.compressedOffset });
  }
  if (!isZero(entry.digest)) {
    const d = createHash('sha256').update(data).digest();
    if (Buffer.compare(d, entry.digest) !== 0) {
      throw new FormatError('ERR_BAD_TOC', `Cannot read ToC section "${entry.name}": sha256 ${d.toString('hex')} differs from the ToC's ${toHex(entry.digest)}`, { offset: entry.compressedOffset });
    }
  }
  return data;
}

/** The bootstrap inlined in a blob (ToC entry `image.boot`). */
export function readInlineBootstrap(blob: ByteSource): Uint8Array {
  const toc = readBlobToc(blob);
  const e = toc.find((x) => x.name === 'image.boot');
  if (!e) throw new FormatError('ERR_NO_BOOTSTRAP', `Cannot extract bootstrap: the blob's ToC has no image.boot entry (it has ${toc.map((x) => x.name).join(', ')})`);
  return readTocSection(blob, e);
}
