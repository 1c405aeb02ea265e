/**
 * EROFS on-disk inodes: compact (32 bytes, read only) and extended (64 bytes, what Nydus writes).
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { getU64, setU64 } from '../../util/bytes.js';
import { EROFS_INODE_COMPACT_SIZE, EROFS_INODE_EXTENDED_SIZE } from './constants.js';

/** Decoded inode (either form). */
export interface Inode {
  /** True for the 64-byte extended form. */
  extended: boolean;
  /** Data layout from i_format bits 1-3: 0 plain, 2 inline, 4 chunk-based. */
  layout: number;
  /** @2 i_xattr_icount u16. */
  xattrIcount: number;
  /** @4 i_mode u16. */
  mode: number;
  /** i_nlink (u16 @6 compact, u32 @44 extended). */
  nlink: number;
  /** i_size (u32 @8 compact, u64 @8 extended). */
  size: number;
  /** @16 i_u: data block address, chunk format, or rdev. */
  u: number;
  /** @20 i_ino u32. */
  ino: number;
  uid: number;
  gid: number;
  /** Extended only (compact: 0). */
  mtime: number;
  mtimeNsec: number;
}

/** On-disk size of the inode (before xattrs). */
export function inodeSize(inode: Pick<Inode, 'extended'>): number {
  return inode.extended ? EROFS_INODE_EXTENDED_SIZE : EROFS_INODE_COMPACT_SIZE;
}

/** Size of the inline xattr area for an icount (0 when none). */
export function xattrAreaSize(icount: number): number {
  return icount === 0 ? 0 : 12 + (icount - 1) * 4;
}

/** Decode the inode at `off`. */
export function decodeInode(view: DataView, off: number): Inode {
  if (view.byteLength < off + 2) throw new FormatError('ERR_TRUNCATED', `Cannot decode inode at ${off}: bootstrap too short`, { offset: off });
  const format = view.getUint16(off, true);
  const extended = (format & 1) === 1;
  if (view.byteLength < off + (extended ? EROFS_INODE_EXTENDED_SIZE : EROFS_INODE_COMPACT_SIZE)) {
    throw new FormatError('ERR_TRUNCATED', `Cannot decode inode at ${off}: bootstrap too short`, { offset: off });
  }
  const layout = (format >> 1) & 0x7;
  if (extended) {
    return {
      extended, layout,
      xattrIcount: view.getUint16(off + 2, true),
      mode: view.getUint16(off + 4, true),
      size: getU64(view, off + 8, 'i_size'),
      u: view.getUint32(off + 16, true),
      ino: view.getUint32(off + 20, true),
      uid: view.getUint32(off + 24, true),
      gid: view.getUint32(off + 28, true),
      mtime: Number(view.getBigInt64(off + 32, true)),
      mtimeNsec: view.getUint32(off + 40, true),
      nlink: view.getUint32(off + 44, true),
    };
  }
  return {
    extended, layout,
    xattrIcount: view.getUint16(off + 2, true),
    mode: view.getUint16(off + 4, true),
    nlink: view.getUint16(off + 6, true),
    size: view.getUint32(off + 8, true),
    u: view.getUint32(off + 16, true),
    ino: view.getUint32(off + 20, true),
    uid: view.getUint16(off + 24, true),
    gid: view.getUint16(off + 26, true),
    mtime: 0,
    mtimeNsec: 0,
  };
}

/** Encode an extended inode (the only form Nydus writes) at `off`. */
export function encodeInode(i: Inode, view: DataView, off: number): void {
  if (!i.extended) throw new RangeError('Cannot encode inode: only extended inodes are written');
  for (let k = 0; k < EROFS_INODE_EXTENDED_SIZE; k++) view.setUint8(off + k, 0);
  view.setUint16(off, 1 | (i.layout << 1), true);
  view.setUint16(off + 2, i.xattrIcount, true);
  view.setUint16(off + 4, i.mode, true);
  setU64(view, off + 8, i.size);
  view.setUint32(off + 16, i.u >>> 0, true);
  view.setUint32(off + 20, i.ino, true);
  view.setUint32(off + 24, i.uid, true);
  view.setUint32(off + 28, i.gid, true);
  view.setBigInt64(off + 32, BigInt(i.mtime), true);
  view.setUint32(off + 40, i.mtimeNsec, true);
  view.setUint32(off + 44, i.nlink, true);
}

/** Reject layouts and sizes a reader cannot serve. */
export function validateInode(i: Inode, nid: number): void {
  if (i.layout !== 0 && i.layout !== 2 && i.layout !== 4) {
    throw new FormatError('ERR_BAD_INODE', `Cannot use inode nid ${nid}: data layout ${i.layout} is not plain, inline or chunk-based`);
  }
  if (i.mtimeNsec >= 1_000_000_000) throw new FormatError('ERR_BAD_INODE', `Cannot use inode nid ${nid}: i_mtime_nsec ${i.mtimeNsec} is not below 10^9`);
}
