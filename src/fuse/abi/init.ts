/**
 * Session negotiation: struct fuse_init_in and struct fuse_init_out (64 bytes each since 7.36).
 * @module
 */
import { need } from './check.js';

/** Bytes of fuse_init_in before 7.36 (major, minor, max_readahead, flags). */
export const INIT_IN_COMPAT_SIZE = 16;
/** Size of struct fuse_init_in since 7.36. */
export const INIT_IN_SIZE = 64;
/** Size of struct fuse_init_out since 7.23 (the tail was reserved, then reused). */
export const INIT_OUT_SIZE = 64;

/** What the kernel offers. */
export interface InitIn {
  /** @0 major u32. */
  major: number;
  /** @4 minor u32. */
  minor: number;
  /** @8 max_readahead u32: bytes. */
  maxReadahead: number;
  /** @12 flags u32: InitFlag bits the kernel supports. */
  flags: number;
  /** @16 flags2 u32: InitFlag2 bits (only with INIT_EXT, 64-byte form). @20 unused[11]. */
  flags2: number;
}

/** Decodes fuse_init_in; `len` is the argument size (16 bytes from kernels before 7.36). */
export function decodeInitIn(view: DataView, off: number, len: number): InitIn {
  need(view, off, INIT_IN_COMPAT_SIZE, 'fuse_init_in');
  const flags = view.getUint32(off + 12, true);
  const long = len >= INIT_IN_SIZE && off + INIT_IN_SIZE <= view.byteLength;
  return {
    major: view.getUint32(off, true),
    minor: view.getUint32(off + 4, true),
    maxReadahead: view.getUint32(off + 8, true),
    flags,
    flags2: long ? view.getUint32(off + 16, true) : 0,
  };
}

/** Encodes fuse_init_in (64-byte form; tests). */
export function encodeInitIn(x: InitIn, view: DataView, off: number): void {
  new Uint8Array(view.buffer, view.byteOffset + off, INIT_IN_SIZE).fill(0);
  view.setUint32(off, x.major, true);
  view.setUint32(off + 4, x.minor, true);
  view.setUint32(off + 8, x.maxReadahead, true);
  view.setUint32(off + 12, x.flags >>> 0, true);
  view.setUint32(off + 16, x.flags2 >>> 0, true);
}

/** What the file system answers. */
export interface InitOut {
  /** @0 major u32. */
  major: number;
  /** @4 minor u32. */
  minor: number;
  /** @8 max_readahead u32. */
  maxReadahead: number;
  /** @12 flags u32. */
  flags: number;
  /** @16 max_background u16: async requests (readahead) the kernel keeps in flight. */
  maxBackground: number;
  /** @18 congestion_threshold u16. */
  congestionThreshold: number;
  /** @20 max_write u32. */
  maxWrite: number;
  /** @24 time_gran u32: timestamp granularity in ns. */
  timeGran: number;
  /** @28 max_pages u16: pages per request (256 = 1 MiB). */
  maxPages: number;
  /** @30 map_alignment u16 (DAX). */
  mapAlignment: number;
  /** @32 flags2 u32. */
  flags2: number;
  /** @36 max_stack_depth u32 (passthrough). */
  maxStackDepth: number;
  /** @40 request_timeout u16 (seconds, with REQUEST_TIMEOUT). @42 unused. */
  requestTimeout: number;
}

/** Encodes fuse_init_out (64 bytes, reserved tail zeroed). */
export function encodeInitOut(x: InitOut, view: DataView, off: number): void {
  new Uint8Array(view.buffer, view.byteOffset + off, INIT_OUT_SIZE).fill(0);
  view.setUint32(off, x.major, true);
  view.setUint32(off + 4, x.minor, true);
  view.setUint32(off + 8, x.maxReadahead, true);
  view.setUint32(off + 12, x.flags >>> 0, true);
  view.setUint16(off + 16, x.maxBackground, true);
  view.setUint16(off + 18, x.congestionThreshold, true);
  view.setUint32(off + 20, x.maxWrite, true);
  view.setUint32(off + 24, x.timeGran, true);
  view.setUint16(off + 28, x.maxPages, true);
  view.setUint16(off + 30, x.mapAlignment, true);
  view.setUint32(off + 32, x.flags2 >>> 0, true);
  view.setUint32(off + 36, x.maxStackDepth, true);
  view.setUint16(off + 40, x.requestTimeout, true);
}

/** Decodes fuse_init_out (tests). */
export function decodeInitOut(view: DataView, off: number): InitOut {
  need(view, off, INIT_OUT_SIZE, 'fuse_init_out');
  return {
    major: view.getUint32(off, true),
    minor: view.getUint32(off + 4, true),
    maxReadahead: view.getUint32(off + 8, true),
    flags: view.getUint32(off + 12, true),
    maxBackground: view.getUint16(off + 16, true),
    congestionThreshold: view.getUint16(off + 18, true),
    maxWrite: view.getUint32(off + 20, true),
    timeGran: view.getUint32(off + 24, true),
    maxPages: view.getUint16(off + 28, true),
    mapAlignment: view.getUint16(off + 30, true),
    flags2: view.getUint32(off + 32, true),
    maxStackDepth: view.getUint32(off + 36, true),
    requestTimeout: view.getUint16(off + 40, true),
  };
}
