/**
 * STATFS reply: struct fuse_statfs_out = struct fuse_kstatfs (80 bytes).
 * @module
 */
import type { StatFs } from '../file-system.js';
import { getU64, setU64 } from '../../util/bytes.js';
import { need } from './check.js';

/** Size of struct fuse_statfs_out. */
export const STATFS_OUT_SIZE = 80;

/**
 * Encodes fuse_kstatfs at `off`: @0 blocks, @8 bfree, @16 bavail, @24 files, @32 ffree (u64 each),
 * @40 bsize u32, @44 namelen u32, @48 frsize u32, @52 padding u32, @56 spare[6] u32 (zero).
 */
export function encodeStatfsOut(s: StatFs, view: DataView, off: number): void {
  setU64(view, off, s.blocks);
  setU64(view, off + 8, s.bfree);
  setU64(view, off + 16, s.bavail);
  setU64(view, off + 24, s.files);
  setU64(view, off + 32, s.ffree);
  view.setUint32(off + 40, s.bsize, true);
  view.setUint32(off + 44, s.namelen, true);
  view.setUint32(off + 48, s.frsize, true);
  new Uint8Array(view.buffer, view.byteOffset + off + 52, STATFS_OUT_SIZE - 52).fill(0);
}

/** Decodes fuse_kstatfs (tests). */
export function decodeStatfsOut(view: DataView, off: number): StatFs {
  need(view, off, STATFS_OUT_SIZE, 'fuse_statfs_out');
  return {
    blocks: getU64(view, off, 'blocks'),
    bfree: getU64(view, off + 8, 'bfree'),
    bavail: getU64(view, off + 16, 'bavail'),
    files: getU64(view, off + 24, 'files'),
    ffree: getU64(view, off + 32, 'ffree'),
    bsize: view.getUint32(off + 40, true),
    namelen: view.getUint32(off + 44, true),
    frsize: view.getUint32(off + 48, true),
  };
}
