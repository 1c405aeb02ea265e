/**
 * ACCESS argument: struct fuse_access_in (8 bytes). Only sent without `default_permissions`.
 * @module
 */
import { need } from './check.js';

/** Size of struct fuse_access_in. */
export const ACCESS_IN_SIZE = 8;

/** An access(2) check. */
export interface AccessIn {
  /** @0 mask u32: R_OK 4 | W_OK 2 | X_OK 1 (F_OK 0). @4 padding u32. */
  mask: number;
}

/** Decodes fuse_access_in. */
export function decodeAccessIn(view: DataView, off: number): AccessIn {
  need(view, off, ACCESS_IN_SIZE, 'fuse_access_in');
  return { mask: view.getUint32(off, true) };
}

/** Encodes fuse_access_in (tests). */
export function encodeAccessIn(x: AccessIn, view: DataView, off: number): void {
  view.setUint32(off, x.mask, true);
  view.setUint32(off + 4, 0, true);
}
