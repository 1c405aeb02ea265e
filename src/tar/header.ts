/**
 * Decoding of one 512-byte tar header block (v7, POSIX ustar and GNU layouts), with checksum
 * validation.
 * @module
 */
import { FormatError } from '../util/errors.js';
import { readCString, readNumeric } from './numeric.js';

/** Size of a tar block. */
export const BLOCK_SIZE = 512;

/** Header layout the magic field announces. */
export type HeaderFormat = 'ustar' | 'gnu' | 'v7';

/**
 * A decoded header. Numeric fields are `undefined` when malformed; the caller only fails on
 * those it needs (a PAX record may override a field the header could not hold).
 */
export interface RawHeader {
  /** Name, with the ustar prefix joined in; raw (not normalised). */
  name: string;
  mode: number | undefined;
  uid: number | undefined;
  gid: number | undefined;
  size: number | undefined;
  mtime: number | undefined;
  /** The type flag as a one-character string ('\0' for an old-style regular file). */
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number | undefined;
  devminor: number | undefined;
  format: HeaderFormat;
}

/** True when all 512 bytes of `block` are zero (an end-of-archive marker). */
export function isZeroBlock(block: Uint8Array): boolean {
  const view = new DataView(block.buffer, block.byteOffset, BLOCK_SIZE);
  for (let i = 0; i < BLOCK_SIZE; i += 4) if (view.getUint32(i) !== 0) return false;
  return true;
}

function isMagic(block: Uint8Array, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (block[257 + i] !== text.charCodeAt(i)) return false;
  return true;
}

/**
 * Validate the checksum of `block` (read at `offset` of the tar stream) and decode it.
 * Accepts both the unsigned and the historic signed byte sum.
 * Throws FormatError 'ERR_TAR_CHECKSUM' or 'ERR_TAR_HEADER'.
 */
export function parseHeader(block: Uint8Array, offset: number): RawHeader {
  const stored = readNumeric(block, 148, 8);
  if (stored === undefined) {
    throw new FormatError(
      'ERR_TAR_HEADER',
      `Cannot read tar header at offset ${offset}: the checksum field is not an octal number (not a tar archive?)`,
      { offset },
    );
  }
  // Sum with the checksum field counted as eight spaces; the signed sum counts bytes >= 0x80
  // as negative, i.e. 256 less each.
  let unsigned = 8 * 0x20;
  let high = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    if (i === 148) i = 156;
    const b = block[i] ?? 0;
    unsigned += b;
    high += b >> 7;
  }
  const signed = unsigned - 256 * high;
  if (stored !== unsigned && stored !== signed) {
    throw new FormatError(
      'ERR_TAR_CHECKSUM',
      `Cannot read tar header at offset ${offset}: the stored checksum is ${stored} but the header sums to ${unsigned} (not a tar archive, or corrupt)`,
      { offset },
    );
  }
  const format: HeaderFormat = isMagic(block, 'ustar\0') ? 'ustar' : isMagic(block, 'ustar  \0') ? 'gnu' : 'v7';
  let name = readCString(block, 0, 100);
  if (format === 'ustar') {
    const prefix = readCString(block, 345, 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  const isUstarLike = format !== 'v7';
  return {
    name,
    mode: readNumeric(block, 100, 8),
    uid: readNumeric(block, 108, 8),
    gid: readNumeric(block, 116, 8),
    size: readNumeric(block, 124, 12),
    mtime: readNumeric(block, 136, 12),
    typeflag: String.fromCharCode(block[156] ?? 0),
    linkname: readCString(block, 157, 100),
    uname: isUstarLike ? readCString(block, 265, 32) : '',
    gname: isUstarLike ? readCString(block, 297, 32) : '',
    devmajor: isUstarLike ? readNumeric(block, 329, 8) : 0,
    devminor: isUstarLike ? readNumeric(block, 337, 8) : 0,
    format,
  };
}
