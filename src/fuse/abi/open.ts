/**
 * Opening and closing: struct fuse_open_in (8), fuse_open_out (16), fuse_release_in (24).
 * Used by OPEN/OPENDIR and RELEASE/RELEASEDIR.
 * @module
 */
import { getU64, setU64 } from '../../util/bytes.js';
import { need } from './check.js';

/** Size of struct fuse_open_in. */
export const OPEN_IN_SIZE = 8;
/** Size of struct fuse_open_out. */
export const OPEN_OUT_SIZE = 16;
/** Size of struct fuse_release_in. */
export const RELEASE_IN_SIZE = 24;

/** OPEN / OPENDIR argument. */
export interface OpenIn {
  /** @0 flags u32: open(2) flags. */
  flags: number;
  /** @4 open_flags u32: FUSE_OPEN_* (kill suid/sgid). */
  openFlags: number;
}

/** Decodes fuse_open_in. */
export function decodeOpenIn(view: DataView, off: number): OpenIn {
  need(view, off, OPEN_IN_SIZE, 'fuse_open_in');
  return { flags: view.getUint32(off, true), openFlags: view.getUint32(off + 4, true) };
}

/** Encodes fuse_open_in (tests). */
export function encodeOpenIn(x: OpenIn, view: DataView, off: number): void {
  view.setUint32(off, x.flags >>> 0, true);
  view.setUint32(off + 4, x.openFlags >>> 0, true);
}

/** OPEN / OPENDIR reply. */
export interface OpenOut {
  /** @0 fh u64: handle the kernel passes back. */
  fh: number;
  /** @8 open_flags u32: OpenFlag bits. @12 backing_id i32 (passthrough; 0). */
  openFlags: number;
}

/** Encodes fuse_open_out at `off`. */
export function encodeOpenOut(x: OpenOut, view: DataView, off: number): void {
  setU64(view, off, x.fh);
  view.setUint32(off + 8, x.openFlags >>> 0, true);
  view.setInt32(off + 12, 0, true);
}

/** Decodes fuse_open_out (tests). */
export function decodeOpenOut(view: DataView, off: number): OpenOut {
  need(view, off, OPEN_OUT_SIZE, 'fuse_open_out');
  return { fh: getU64(view, off, 'fuse_open_out.fh'), openFlags: view.getUint32(off + 8, true) };
}

/** RELEASE / RELEASEDIR argument. */
export interface ReleaseIn {
  /** @0 fh u64. */
  fh: number;
  /** @8 flags u32: the open flags. */
  flags: number;
  /** @12 release_flags u32. */
  releaseFlags: number;
  /** @16 lock_owner u64. */
  lockOwner: bigint;
}

/** Decodes fuse_release_in. */
export function decodeReleaseIn(view: DataView, off: number): ReleaseIn {
  need(view, off, RELEASE_IN_SIZE, 'fuse_release_in');
  return {
    fh: getU64(view, off, 'fuse_release_in.fh'),
    flags: view.getUint32(off + 8, true),
    releaseFlags: view.getUint32(off + 12, true),
    lockOwner: view.getBigUint64(off + 16, true),
  };
}

/** Encodes fuse_release_in (tests). */
export function encodeReleaseIn(x: ReleaseIn, view: DataView, off: number): void {
  setU64(view, off, x.fh);
  view.setUint32(off + 8, x.flags >>> 0, true);
  view.setUint32(off + 12, x.releaseFlags >>> 0, true);
  view.setBigUint64(off + 16, x.lockOwner, true);
}
