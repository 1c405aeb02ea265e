/**
 * READ / READDIR / READDIRPLUS argument: struct fuse_read_in (40 bytes).
 * @module
 */
import { getU64, setU64 } from '../../util/bytes.js';
import { getOffset, need } from './check.js';

/** Size of struct fuse_read_in. */
export const READ_IN_SIZE = 40;

/** Where and how much to read. */
export interface ReadIn {
  /** @0 fh u64: from OPEN / OPENDIR. */
  fh: number;
  /** @8 offset u64: byte offset (READ) or directory cookie (READDIR); saturates at 2^53. */
  offset: number;
  /** @16 size u32: at most this many bytes in the reply. */
  size: number;
  /** @20 read_flags u32. */
  readFlags: number;
  /** @24 lock_owner u64. */
  lockOwner: bigint;
  /** @32 flags u32: the open flags. @36 padding u32. */
  flags: number;
}

/** Decodes fuse_read_in. */
export function decodeReadIn(view: DataView, off: number): ReadIn {
  need(view, off, READ_IN_SIZE, 'fuse_read_in');
  return {
    fh: getU64(view, off, 'fuse_read_in.fh'),
    offset: getOffset(view, off + 8),
    size: view.getUint32(off + 16, true),
    readFlags: view.getUint32(off + 20, true),
    lockOwner: view.getBigUint64(off + 24, true),
    flags: view.getUint32(off + 32, true),
  };
}

/** Encodes fuse_read_in (tests). */
export function encodeReadIn(x: ReadIn, view: DataView, off: number): void {
  setU64(view, off, x.fh);
  setU64(view, off + 8, x.offset);
  view.setUint32(off + 16, x.size, true);
  view.setUint32(off + 20, x.readFlags, true);
  view.setBigUint64(off + 24, x.lockOwner, true);
  view.setUint32(off + 32, x.flags >>> 0, true);
  view.setUint32(off + 36, 0, true);
}
