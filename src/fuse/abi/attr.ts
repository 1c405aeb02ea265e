/**
 * Attributes: struct fuse_attr (88 bytes), fuse_attr_out (104), fuse_entry_out (128) and the GETATTR
 * argument fuse_getattr_in (16).
 * @module
 */
import type { Attr, Entry } from '../file-system.js';
import { getU64, setU64, toSafeNumber } from '../../util/bytes.js';
import { need, setS64 } from './check.js';

/** Size of struct fuse_attr. */
export const ATTR_SIZE = 88;
/** Size of struct fuse_attr_out. */
export const ATTR_OUT_SIZE = 104;
/** Size of struct fuse_entry_out. */
export const ENTRY_OUT_SIZE = 128;
/** Size of struct fuse_getattr_in. */
export const GETATTR_IN_SIZE = 16;

/** A cache timeout in seconds as (u64 seconds, u32 nanoseconds); negative and NaN become 0. */
export function splitTimeout(seconds: number): [bigint, number] {
  if (!(seconds > 0)) return [0n, 0];
  if (seconds >= Number.MAX_SAFE_INTEGER) return [BigInt(Number.MAX_SAFE_INTEGER), 0];
  const s = Math.floor(seconds);
  const ns = Math.min(999_999_999, Math.round((seconds - s) * 1e9));
  return [BigInt(s), ns];
}

/**
 * Encodes fuse_attr at `off`:
 * @0 ino u64, @8 size u64, @16 blocks u64, @24/@32/@40 atime/mtime/ctime s64 seconds,
 * @48/@52/@56 atimensec/mtimensec/ctimensec u32, @60 mode u32, @64 nlink u32, @68 uid u32,
 * @72 gid u32, @76 rdev u32, @80 blksize u32, @84 flags u32 (0).
 */
export function encodeAttr(a: Attr, view: DataView, off: number): void {
  setU64(view, off, a.ino);
  setU64(view, off + 8, a.size);
  setU64(view, off + 16, a.blocks);
  setS64(view, off + 24, a.atime);
  setS64(view, off + 32, a.mtime);
  setS64(view, off + 40, a.ctime);
  view.setUint32(off + 48, a.atimeNsec, true);
  view.setUint32(off + 52, a.mtimeNsec, true);
  view.setUint32(off + 56, a.ctimeNsec, true);
  view.setUint32(off + 60, a.mode, true);
  view.setUint32(off + 64, a.nlink, true);
  view.setUint32(off + 68, a.uid, true);
  view.setUint32(off + 72, a.gid, true);
  view.setUint32(off + 76, a.rdev, true);
  view.setUint32(off + 80, a.blksize, true);
  view.setUint32(off + 84, 0, true);
}

/** Decodes fuse_attr (tests). */
export function decodeAttr(view: DataView, off: number): Attr {
  need(view, off, ATTR_SIZE, 'fuse_attr');
  return {
    ino: getU64(view, off, 'fuse_attr.ino'),
    size: getU64(view, off + 8, 'fuse_attr.size'),
    blocks: getU64(view, off + 16, 'fuse_attr.blocks'),
    atime: Number(view.getBigInt64(off + 24, true)),
    mtime: Number(view.getBigInt64(off + 32, true)),
    ctime: Number(view.getBigInt64(off + 40, true)),
    atimeNsec: view.getUint32(off + 48, true),
    mtimeNsec: view.getUint32(off + 52, true),
    ctimeNsec: view.getUint32(off + 56, true),
    mode: view.getUint32(off + 60, true),
    nlink: view.getUint32(off + 64, true),
    uid: view.getUint32(off + 68, true),
    gid: view.getUint32(off + 72, true),
    rdev: view.getUint32(off + 76, true),
    blksize: view.getUint32(off + 80, true),
  };
}

/** GETATTR reply. */
export interface AttrOut {
  /** @0 attr_valid u64 + @8 attr_valid_nsec u32 (@12 dummy u32): seconds the kernel may cache `attr`. */
  attrValid: number;
  /** @16 attr (fuse_attr). */
  attr: Attr;
}

/** Encodes fuse_attr_out at `off`. */
export function encodeAttrOut(x: AttrOut, view: DataView, off: number): void {
  const [s, ns] = splitTimeout(x.attrValid);
  view.setBigUint64(off, s, true);
  view.setUint32(off + 8, ns, true);
  view.setUint32(off + 12, 0, true);
  encodeAttr(x.attr, view, off + 16);
}

/** Decodes fuse_attr_out (tests). */
export function decodeAttrOut(view: DataView, off: number): AttrOut {
  need(view, off, ATTR_OUT_SIZE, 'fuse_attr_out');
  return {
    attrValid: toSafeNumber(view.getBigUint64(off, true), 'attr_valid') + view.getUint32(off + 8, true) / 1e9,
    attr: decodeAttr(view, off + 16),
  };
}

/**
 * Encodes fuse_entry_out at `off`: @0 nodeid u64, @8 generation u64, @16 entry_valid u64,
 * @24 attr_valid u64, @32 entry_valid_nsec u32, @36 attr_valid_nsec u32, @40 attr (fuse_attr).
 * A nodeid of 0 with a non-zero entry_valid is a cacheable negative entry.
 */
export function encodeEntryOut(e: Entry, view: DataView, off: number): void {
  const [es, ens] = splitTimeout(e.entryValid);
  const [as, ans] = splitTimeout(e.attrValid);
  setU64(view, off, e.nodeid);
  setU64(view, off + 8, e.generation);
  view.setBigUint64(off + 16, es, true);
  view.setBigUint64(off + 24, as, true);
  view.setUint32(off + 32, ens, true);
  view.setUint32(off + 36, ans, true);
  encodeAttr(e.attr, view, off + 40);
}

/** Decodes fuse_entry_out (tests). */
export function decodeEntryOut(view: DataView, off: number): Entry {
  need(view, off, ENTRY_OUT_SIZE, 'fuse_entry_out');
  return {
    nodeid: getU64(view, off, 'fuse_entry_out.nodeid'),
    generation: getU64(view, off + 8, 'fuse_entry_out.generation'),
    entryValid: toSafeNumber(view.getBigUint64(off + 16, true), 'entry_valid') + view.getUint32(off + 32, true) / 1e9,
    attrValid: toSafeNumber(view.getBigUint64(off + 24, true), 'attr_valid') + view.getUint32(off + 36, true) / 1e9,
    attr: decodeAttr(view, off + 40),
  };
}

/** GETATTR argument. */
export interface GetattrIn {
  /** @0 getattr_flags u32 (FUSE_GETATTR_FH = 1: `fh` is valid). @4 dummy u32. */
  getattrFlags: number;
  /** @8 fh u64. */
  fh: number;
}

/** Decodes fuse_getattr_in. */
export function decodeGetattrIn(view: DataView, off: number): GetattrIn {
  need(view, off, GETATTR_IN_SIZE, 'fuse_getattr_in');
  return { getattrFlags: view.getUint32(off, true), fh: getU64(view, off + 8, 'fuse_getattr_in.fh') };
}
