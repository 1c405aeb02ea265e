/**
 * Random-access byte sources for lazily read metadata: a file (pread per request) or a buffer.
 * @module
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { BackendError, FormatError } from '../util/errors.js';

/** Synchronous random access to an immutable byte range. */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** Exactly `len` bytes from `off`; throws FormatError('ERR_TRUNCATED') past the end. */
  read(off: number, len: number): Uint8Array;
  /** Release the underlying handle. */
  close(): void;
}

function checkRange(size: number, off: number, len: number, name: string): void {
  if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off + len > size) {
    throw new FormatError('ERR_TRUNCATED', `Cannot read ${len} bytes at offset ${off} of ${name}: it has ${size} bytes`, { offset: off, path: name });
  }
}

/** A ByteSource over an in-memory buffer. */
export function bufferSource(buf: Uint8Array, name = 'buffer'): ByteSource {
  return {
    size: buf.length,
    read(off, len) {
      checkRange(buf.length, off, len, name);
      return buf.subarray(off, off + len);
    },
    close() {},
  };
}

/** A ByteSource reading a file with pread; nothing is held in memory. */
export function fileSource(path: string): ByteSource {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new BackendError(err.code === 'ENOENT' ? 'ERR_NOT_FOUND' : 'ERR_OPEN', `Cannot open ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, { path, cause: e, ...(typeof err.errno === 'number' ? { errno: Math.abs(err.errno) } : {}) });
  }
  const st = fstatSync(fd);
  if (st.isDirectory()) {
    closeSync(fd);
    throw new BackendError('ERR_OPEN', `Cannot open ${path}: it is a directory`, { path, errno: 21 });
  }
  const size = st.size;
  return {
    size,
    read(off, len) {
      checkRange(size, off, len, path);
      const out = Buffer.allocUnsafe(len);
      let done = 0;
      while (done < len) {
        const n = readSync(fd, out, done, len - done, off + done);
        if (n === 0) throw new FormatError('ERR_TRUNCATED', `Cannot read ${path}: file shrank at offset ${off + done}`, { path, offset: off + done });
        done += n;
      }
      return new Uint8Array(out.buffer, out.byteOffset, len);
    },
    close() {
      closeSync(fd);
    },
  };
}
