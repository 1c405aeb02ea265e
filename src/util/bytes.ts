/**
 * Small helpers over Uint8Array: little-endian access through DataView, alignment, hex.
 * @module
 */
import { FormatError } from './errors.js';

/** A DataView over exactly the bytes of `buf`. */
export function viewOf(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Round `n` up to a multiple of `align` (a power of two). */
export function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/** Round a bigint up to a multiple of `align`. */
export function alignUpBig(n: bigint, align: bigint): bigint {
  return ((n + align - 1n) / align) * align;
}

/** Convert a u64 to a JS number, refusing values above 2^53. */
export function toSafeNumber(v: bigint, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new FormatError('ERR_VALUE_RANGE', `Cannot decode ${field}: value ${v} exceeds 2^53`);
  }
  return Number(v);
}

/** Read a u64 at `off` as a number (throws above 2^53). */
export function getU64(view: DataView, off: number, field: string): number {
  return toSafeNumber(view.getBigUint64(off, true), field);
}

/** Write a number as u64 at `off`. */
export function setU64(view: DataView, off: number, v: number): void {
  view.setBigUint64(off, BigInt(v), true);
}

/** Lower-case hex of bytes. */
export function toHex(buf: Uint8Array): string {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('hex');
}

/** Bytes of a hex string. */
export function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** True when every byte is zero. */
export function isZero(buf: Uint8Array): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/** A NUL-terminated (or full-width) ASCII string field. */
export function decodeCString(buf: Uint8Array, off: number, len: number): string {
  let end = off;
  const stop = off + len;
  while (end < stop && buf[end] !== 0) end++;
  return Buffer.from(buf.buffer, buf.byteOffset + off, end - off).toString('latin1');
}

/** Write `s` as a NUL-padded field of `len` bytes. */
export function encodeCString(s: string, buf: Uint8Array, off: number, len: number): void {
  const b = Buffer.from(s, 'latin1');
  if (b.length > len) throw new RangeError(`Cannot encode string field: "${s}" is longer than ${len} bytes`);
  buf.fill(0, off, off + len);
  buf.set(b, off);
}

/** Compare two byte arrays lexicographically (like memcmp, shorter first on a tie). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
