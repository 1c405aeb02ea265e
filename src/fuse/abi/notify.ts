/**
 * Notifications from the file system to the kernel: a reply header with `unique` 0 and the
 * notification code in `error`, then its struct. Only STORE is used: struct
 * fuse_notify_store_out (24 bytes) followed by the data, which the kernel copies into the page
 * cache of the inode (and marks up to date where whole pages, or the file's end, are covered).
 * @module
 */
import { need } from './check.js';

/** Notification codes (enum fuse_notify_code). */
export const FuseNotify = { POLL: 1, INVAL_INODE: 2, INVAL_ENTRY: 3, STORE: 4, RETRIEVE: 5, DELETE: 6 } as const;

/** Size of struct fuse_notify_store_out. */
export const NOTIFY_STORE_OUT_SIZE = 24;

/** Where the data of a STORE notification goes. */
export interface NotifyStoreOut {
  /** @0 nodeid u64. */
  nodeid: bigint;
  /** @8 offset u64: byte offset in the file. */
  offset: bigint;
  /** @16 size u32: bytes of data that follow; @20 padding u32. */
  size: number;
}

/** Encodes fuse_notify_store_out. */
export function encodeNotifyStoreOut(x: NotifyStoreOut, view: DataView, off: number): void {
  view.setBigUint64(off, x.nodeid, true);
  view.setBigUint64(off + 8, x.offset, true);
  view.setUint32(off + 16, x.size, true);
  view.setUint32(off + 20, 0, true);
}

/** Decodes fuse_notify_store_out (tests). */
export function decodeNotifyStoreOut(view: DataView, off: number): NotifyStoreOut {
  need(view, off, NOTIFY_STORE_OUT_SIZE, 'fuse_notify_store_out');
  return { nodeid: view.getBigUint64(off, true), offset: view.getBigUint64(off + 8, true), size: view.getUint32(off + 16, true) };
}
