/**
 * EROFS directory entries (12 bytes each) and directory blocks: [dirents][names], names not
 * NUL-terminated, nameoff relative to the block start.
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { setU64 } from '../../util/bytes.js';
import { EROFS_DIRENT_SIZE } from './constants.js';

/** Size of one dirent. */
export const DIRENT_SIZE = EROFS_DIRENT_SIZE;

/** One decoded directory entry. */
export interface Dirent {
  /** @0 nid u64. */
  nid: number;
  /** @10 file_type u8 (EROFS_FT_*). */
  fileType: number;
  /** Raw name bytes. */
  name: Uint8Array;
}

function u16(block: Uint8Array, off: number): number {
  return (block[off] as number) | ((block[off + 1] as number) << 8);
}

/** Number of entries in a directory block (first nameoff / 12), validated. */
export function direntCount(block: Uint8Array, where: string): number {
  if (block.length < DIRENT_SIZE) throw new FormatError('ERR_BAD_DIR', `Cannot read directory ${where}: block of ${block.length} bytes has no dirent`);
  const firstNameOff = u16(block, 8);
  if (firstNameOff % DIRENT_SIZE !== 0 || firstNameOff === 0 || firstNameOff > block.length) {
    throw new FormatError('ERR_BAD_DIR', `Cannot read directory ${where}: first nameoff ${firstNameOff} is invalid`);
  }
  return firstNameOff / DIRENT_SIZE;
}

/** The name bytes of entry `i` of `count` in a block (a view, not a copy), validated. */
export function direntName(block: Uint8Array, i: number, count: number, where: string): Uint8Array {
  const off = i * DIRENT_SIZE;
  const nameOff = u16(block, off + 8);
  let nameEnd = i + 1 < count ? u16(block, off + DIRENT_SIZE + 8) : block.length;
  if (nameOff < count * DIRENT_SIZE || nameEnd > block.length || nameEnd <= nameOff) {
    throw new FormatError('ERR_BAD_DIR', `Cannot read directory ${where}: entry ${i} has name range ${nameOff}..${nameEnd} outside its block`);
  }
  if (i + 1 === count) {
    const nul = block.indexOf(0, nameOff);
    if (nul !== -1 && nul < nameEnd) nameEnd = nul;
    if (nameEnd === nameOff) throw new FormatError('ERR_BAD_DIR', `Cannot read directory ${where}: entry ${i} has an empty name`);
  }
  return block.subarray(nameOff, nameEnd);
}

/** Entry `i` of a block, given its name (from direntName). */
export function direntAt(block: Uint8Array, i: number, name: Uint8Array, where: string): Dirent {
  const off = i * DIRENT_SIZE;
  const lo = (u16(block, off) | (u16(block, off + 2) << 16)) >>> 0;
  const hi = (u16(block, off + 4) | (u16(block, off + 6) << 16)) >>> 0;
  if (hi >= 0x20_0000) throw new FormatError('ERR_VALUE_RANGE', `Cannot decode nid of entry ${i} in directory ${where}: value exceeds 2^53`);
  return { nid: hi * 2 ** 32 + lo, fileType: block[off + 10] as number, name };
}

/**
 * Decode every entry of one directory block. `block` holds the block's bytes up to its used length
 * (4096, or i_size mod 4096 for the last block). Throws FormatError on inconsistent offsets.
 */
export function decodeDirBlock(block: Uint8Array, where: string): Dirent[] {
  const count = direntCount(block, where);
  const out: Dirent[] = [];
  for (let i = 0; i < count; i++) out.push(direntAt(block, i, direntName(block, i, count, where), where));
  return out;
}

/** Bytes a set of entries takes in a block (dirents + names). */
export function direntBytes(nameLen: number): number {
  return DIRENT_SIZE + nameLen;
}

/** Encode `entries` as one block into `block` (which must be large enough); returns bytes used. */
export function encodeDirBlock(entries: readonly Dirent[], block: Uint8Array): number {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  let nameOff = entries.length * DIRENT_SIZE;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Dirent;
    const off = i * DIRENT_SIZE;
    setU64(view, off, e.nid);
    view.setUint16(off + 8, nameOff, true);
    view.setUint8(off + 10, e.fileType);
    view.setUint8(off + 11, 0);
    block.set(e.name, nameOff);
    nameOff += e.name.length;
  }
  return nameOff;
}
