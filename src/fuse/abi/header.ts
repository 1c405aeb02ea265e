/**
 * Request and reply headers: struct fuse_in_header (40 bytes) and struct fuse_out_header (16 bytes).
 * @module
 */
import { getU64 } from '../../util/bytes.js';
import { need } from './check.js';

/** Size of struct fuse_in_header. */
export const IN_HEADER_SIZE = 40;

/** Header of every request the kernel sends. */
export interface InHeader {
  /** @0 len u32: bytes of the whole request, header included. */
  len: number;
  /** @4 opcode u32. */
  opcode: number;
  /** @8 unique u64: the id the reply echoes. */
  unique: bigint;
  /** @16 nodeid u64. */
  nodeid: number;
  /** @24 uid u32, @28 gid u32, @32 pid u32: the caller. */
  uid: number;
  gid: number;
  pid: number;
  /** @36 total_extlen u16: request extensions after the arguments, in 8-byte units. @38 padding u16. */
  totalExtlen: number;
}

/** Decodes a request header at `off`. */
export function decodeInHeader(view: DataView, off: number): InHeader {
  need(view, off, IN_HEADER_SIZE, 'fuse_in_header');
  return {
    len: view.getUint32(off, true),
    opcode: view.getUint32(off + 4, true),
    unique: view.getBigUint64(off + 8, true),
    nodeid: getU64(view, off + 16, 'fuse_in_header.nodeid'),
    uid: view.getUint32(off + 24, true),
    gid: view.getUint32(off + 28, true),
    pid: view.getUint32(off + 32, true),
    totalExtlen: view.getUint16(off + 36, true),
  };
}

/** Encodes a request header (what the kernel writes; used by tests and tools). */
export function encodeInHeader(h: InHeader, view: DataView, off: number): void {
  view.setUint32(off, h.len, true);
  view.setUint32(off + 4, h.opcode, true);
  view.setBigUint64(off + 8, h.unique, true);
  view.setBigUint64(off + 16, BigInt(h.nodeid), true);
  view.setUint32(off + 24, h.uid, true);
  view.setUint32(off + 28, h.gid, true);
  view.setUint32(off + 32, h.pid, true);
  view.setUint16(off + 36, h.totalExtlen, true);
  view.setUint16(off + 38, 0, true);
}

/** Size of struct fuse_out_header. */
export const OUT_HEADER_SIZE = 16;

/** Header of every reply. */
export interface OutHeader {
  /** @0 len u32: bytes of the whole reply, header included. */
  len: number;
  /** @4 error i32: 0 or a negative errno. */
  error: number;
  /** @8 unique u64: the request's. */
  unique: bigint;
}

/** Encodes a reply header at `off`. */
export function encodeOutHeader(h: OutHeader, view: DataView, off: number): void {
  view.setUint32(off, h.len, true);
  view.setInt32(off + 4, h.error, true);
  view.setBigUint64(off + 8, h.unique, true);
}

/** Decodes a reply header (tests). */
export function decodeOutHeader(view: DataView, off: number): OutHeader {
  need(view, off, OUT_HEADER_SIZE, 'fuse_out_header');
  return { len: view.getUint32(off, true), error: view.getInt32(off + 4, true), unique: view.getBigUint64(off + 8, true) };
}
