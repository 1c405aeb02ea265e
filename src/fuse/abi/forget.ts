/**
 * Reference drops: struct fuse_forget_in (8 bytes; FORGET) and struct fuse_batch_forget_in (8 bytes)
 * followed by `count` struct fuse_forget_one (16 bytes each; BATCH_FORGET). Neither gets a reply.
 * @module
 */
import { getU64, setU64 } from '../../util/bytes.js';
import { need } from './check.js';

/** Size of struct fuse_forget_in. */
export const FORGET_IN_SIZE = 8;
/** Size of struct fuse_batch_forget_in. */
export const BATCH_FORGET_IN_SIZE = 8;
/** Size of struct fuse_forget_one. */
export const FORGET_ONE_SIZE = 16;

/** One dropped reference count. */
export interface ForgetOne {
  /** @0 nodeid u64. */
  nodeid: number;
  /** @8 nlookup u64: how many lookups to forget. */
  nlookup: number;
}

/** Decodes fuse_forget_in: @0 nlookup u64 (the node is the header's nodeid). */
export function decodeForgetIn(view: DataView, off: number): { nlookup: number } {
  need(view, off, FORGET_IN_SIZE, 'fuse_forget_in');
  return { nlookup: getU64(view, off, 'fuse_forget_in.nlookup') };
}

/**
 * Decodes fuse_batch_forget_in (@0 count u32, @4 dummy u32) and the `count` fuse_forget_one
 * records after it.
 */
export function decodeBatchForget(view: DataView, off: number): ForgetOne[] {
  need(view, off, BATCH_FORGET_IN_SIZE, 'fuse_batch_forget_in');
  const count = view.getUint32(off, true);
  need(view, off + BATCH_FORGET_IN_SIZE, count * FORGET_ONE_SIZE, 'fuse_forget_one[]');
  const out: ForgetOne[] = [];
  for (let i = 0, p = off + BATCH_FORGET_IN_SIZE; i < count; i++, p += FORGET_ONE_SIZE) {
    out.push({ nodeid: getU64(view, p, 'fuse_forget_one.nodeid'), nlookup: getU64(view, p + 8, 'fuse_forget_one.nlookup') });
  }
  return out;
}

/** Encodes fuse_batch_forget_in and its records (tests); returns bytes written. */
export function encodeBatchForget(items: readonly ForgetOne[], view: DataView, off: number): number {
  view.setUint32(off, items.length, true);
  view.setUint32(off + 4, 0, true);
  let p = off + BATCH_FORGET_IN_SIZE;
  for (const f of items) {
    setU64(view, p, f.nodeid);
    setU64(view, p + 8, f.nlookup);
    p += FORGET_ONE_SIZE;
  }
  return p - off;
}
