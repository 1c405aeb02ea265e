/**
 * EROFS directory entries (12 bytes each) and directory blocks: [dirents][names], names not
 * NUL-terminated, nameoff relative to the block start.
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { getU64, setU64 } from '../../util/bytes.js';
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

/**
 * Decode every entry of one directory block. `block` holds the block's bytes up to its used length
 * (4096, or i_size mod 4096 for the last block). Throws FormatError on inconsistent offsets.
 */
export function decodeDirBlock(block: Uint8Array, where: string): Dirent[] {
  if (block.length < DIRENT_SIZE) throw new FormatError('ERR_BAD_DIR', `Cannot read directory ${where}: block of ${block.length} bytes has no dirent`);
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const firstNameOff = view.getUint16(8, true);
  if (firstNameOff % DIRENT_SIZE !== 0 || firstNameOff === 0 || firstNameOff > block.length) {
    throw new FormatError('ERR_BAD_DIR', `Cannot read directory ${where}: first nameoff ${firstNameOff} is invalid`);
  }
  const count = firstNameOff / DIRENT_SIZE;
  const out: Dirent[] = [];
  for (let i = 0; i < count; i++) {
    const off = i * DIRENT_SIZE;
    const nameOff = view.getUint16(off + 8, true);
    let nameEnd = i + 1 < count ? view.getUint16(off + DIRENT_SIZE + 8, true) : block.length;
    if (nameOff < firstNameOff || nameEnd > block.length || nameEnd <= nameOff) {
      throw new FormatError('ERR_BAD_DIR', `Cannot read directory ${where}: entry ${i} has name range ${nameOff}..${nameEnd} outside its block`);
    }
    if (i + 1 === count) {
      const nul = block.indexOf(0, nameOff);
      if (nul !== -1 && nul < nameEnd) nameEnd = nul;
      if (nameEnd === nameOff) throw new FormatError('ERR_BAD_DIR', `Cannot read directory ${where}: entry ${i} has an empty name`);
    }
    out.push({ nid: getU64(view, off, `nid of entry ${i} in directory ${where}`), fileType: view.getUint8(off + 10), name: block.subarray(nameOff, nameEnd) });
  }
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
