/**
 * Directory listings: struct fuse_dirent (24-byte header + name, padded to 8) for READDIR and
 * struct fuse_direntplus (fuse_entry_out + fuse_dirent) for READDIRPLUS.
 * @module
 */
import type { Entry } from '../file-system.js';
import { getU64, setU64, alignUp } from '../../util/bytes.js';
import { ENTRY_OUT_SIZE, decodeEntryOut, encodeEntryOut } from './attr.js';
import { need } from './check.js';

/** Bytes of fuse_dirent before the name. */
export const DIRENT_HEADER_SIZE = 24;
/** Bytes of fuse_direntplus before the name. */
export const DIRENTPLUS_HEADER_SIZE = ENTRY_OUT_SIZE + DIRENT_HEADER_SIZE;

/** One fuse_dirent. */
export interface Dirent {
  /** @0 ino u64. */
  ino: number;
  /** @8 off u64: cookie of the next entry. */
  off: number;
  /** @20 type u32: DT_* (@16 namelen u32, @24 name). */
  type: number;
  name: Uint8Array;
}

/** Record size of a dirent with a `nameLen`-byte name. */
export function direntSize(nameLen: number): number {
  return alignUp(DIRENT_HEADER_SIZE + nameLen, 8);
}

/** Record size of a direntplus with a `nameLen`-byte name. */
export function direntplusSize(nameLen: number): number {
  return alignUp(DIRENTPLUS_HEADER_SIZE + nameLen, 8);
}

/** Encodes a dirent at `off` of `buf` (padding zeroed); returns the record size. */
export function encodeDirent(d: Dirent, buf: Uint8Array, off: number): number {
  const size = direntSize(d.name.length);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  setU64(view, off, d.ino);
  setU64(view, off + 8, d.off);
  view.setUint32(off + 16, d.name.length, true);
  view.setUint32(off + 20, d.type, true);
  buf.set(d.name, off + DIRENT_HEADER_SIZE);
  buf.fill(0, off + DIRENT_HEADER_SIZE + d.name.length, off + size);
  return size;
}

/** Zero attributes, for direntplus records that carry no entry (nodeid 0: the kernel skips them). */
const NO_ENTRY: Entry = {
  nodeid: 0, generation: 0, entryValid: 0, attrValid: 0,
  attr: {
    ino: 0, size: 0, blocks: 0, atime: 0, atimeNsec: 0, mtime: 0, mtimeNsec: 0, ctime: 0, ctimeNsec: 0,
    mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, blksize: 0,
  },
};

/** Encodes a direntplus at `off` of `buf`; `entry` undefined writes an empty entry. Returns the record size. */
export function encodeDirentplus(entry: Entry | undefined, d: Dirent, buf: Uint8Array, off: number): number {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  encodeEntryOut(entry ?? NO_ENTRY, view, off);
  return ENTRY_OUT_SIZE + encodeDirent(d, buf, off + ENTRY_OUT_SIZE);
}

/** Decodes the dirents of a READDIR reply body (tests). */
export function decodeDirents(buf: Uint8Array): Dirent[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Dirent[] = [];
  let off = 0;
  while (off < buf.length) {
    const { dirent, size } = decodeOneDirent(buf, view, off);
    out.push(dirent);
    off += size;
  }
  return out;
}

/** Decodes the direntplus records of a READDIRPLUS reply body (tests). */
export function decodeDirentpluses(buf: Uint8Array): Array<{ entry: Entry; dirent: Dirent }> {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Array<{ entry: Entry; dirent: Dirent }> = [];
  let off = 0;
  while (off < buf.length) {
    const entry = decodeEntryOut(view, off);
    const { dirent, size } = decodeOneDirent(buf, view, off + ENTRY_OUT_SIZE);
    out.push({ entry, dirent });
    off += ENTRY_OUT_SIZE + size;
  }
  return out;
}

function decodeOneDirent(buf: Uint8Array, view: DataView, off: number): { dirent: Dirent; size: number } {
  need(view, off, DIRENT_HEADER_SIZE, 'fuse_dirent');
  const nameLen = view.getUint32(off + 16, true);
  const size = direntSize(nameLen);
  need(view, off, size, 'fuse_dirent');
  return {
    dirent: {
      ino: getU64(view, off, 'fuse_dirent.ino'),
      off: getU64(view, off + 8, 'fuse_dirent.off'),
      type: view.getUint32(off + 20, true),
      name: buf.slice(off + DIRENT_HEADER_SIZE, off + DIRENT_HEADER_SIZE + nameLen),
    },
    size,
  };
}
