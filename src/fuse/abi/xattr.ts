/**
 * Extended attributes: struct fuse_getxattr_in (8 bytes, then the NUL-terminated name for GETXATTR)
 * and struct fuse_getxattr_out (8 bytes, the size answer to a size-0 query).
 * @module
 */
import { need } from './check.js';

/** Size of struct fuse_getxattr_in. */
export const GETXATTR_IN_SIZE = 8;
/** Size of struct fuse_getxattr_out. */
export const GETXATTR_OUT_SIZE = 8;

/** GETXATTR / LISTXATTR argument. */
export interface GetxattrIn {
  /** @0 size u32: caller's buffer size; 0 asks for the needed size. @4 padding u32. */
  size: number;
}

/** Decodes fuse_getxattr_in. */
export function decodeGetxattrIn(view: DataView, off: number): GetxattrIn {
  need(view, off, GETXATTR_IN_SIZE, 'fuse_getxattr_in');
  return { size: view.getUint32(off, true) };
}

/** Encodes fuse_getxattr_in (tests). */
export function encodeGetxattrIn(x: GetxattrIn, view: DataView, off: number): void {
  view.setUint32(off, x.size, true);
  view.setUint32(off + 4, 0, true);
}

/** Answer to a size query. */
export interface GetxattrOut {
  /** @0 size u32: bytes the value (or name list) needs. @4 padding u32. */
  size: number;
}

/** Encodes fuse_getxattr_out. */
export function encodeGetxattrOut(x: GetxattrOut, view: DataView, off: number): void {
  view.setUint32(off, x.size, true);
  view.setUint32(off + 4, 0, true);
}

/** Decodes fuse_getxattr_out (tests). */
export function decodeGetxattrOut(view: DataView, off: number): GetxattrOut {
  need(view, off, GETXATTR_OUT_SIZE, 'fuse_getxattr_out');
  return { size: view.getUint32(off, true) };
}
