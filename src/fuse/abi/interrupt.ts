/**
 * INTERRUPT argument: struct fuse_interrupt_in (8 bytes). No reply; the interrupted request may be
 * answered EINTR.
 * @module
 */
import { need } from './check.js';

/** Size of struct fuse_interrupt_in. */
export const INTERRUPT_IN_SIZE = 8;

/** Which request to interrupt. */
export interface InterruptIn {
  /** @0 unique u64: the interrupted request's id. */
  unique: bigint;
}

/** Decodes fuse_interrupt_in. */
export function decodeInterruptIn(view: DataView, off: number): InterruptIn {
  need(view, off, INTERRUPT_IN_SIZE, 'fuse_interrupt_in');
  return { unique: view.getBigUint64(off, true) };
}

/** Encodes fuse_interrupt_in (tests). */
export function encodeInterruptIn(x: InterruptIn, view: DataView, off: number): void {
  view.setBigUint64(off, x.unique, true);
}
