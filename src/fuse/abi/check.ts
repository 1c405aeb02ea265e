/**
 * Bounds checks shared by the FUSE struct decoders.
 * @module
 */
import { FormatError } from '../../util/errors.js';

/** Throws `ERR_TRUNCATED` unless `size` bytes of `struct` are readable at `off` in `view`. */
export function need(view: DataView, off: number, size: number, struct: string): void {
  if (off < 0 || off + size > view.byteLength) {
    throw new FormatError('ERR_TRUNCATED', `Cannot decode ${struct}: needs ${size} bytes at ${off}, message has ${view.byteLength}`, { offset: off });
  }
}

/**
 * A u64 offset as a number. Values above 2^53 saturate to Number.MAX_SAFE_INTEGER: a file offset
 * that large lies past the end of every file, so the answer (no data) is the same.
 */
export function getOffset(view: DataView, off: number): number {
  const v = view.getBigUint64(off, true);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** Writes a signed seconds value (times before 1970 are negative) as a two's complement u64. */
export function setS64(view: DataView, off: number, v: number): void {
  view.setBigInt64(off, BigInt(Math.trunc(v)), true);
}
