/**
 * Inline xattrs of an EROFS inode: a 12-byte header (no shared xattrs), then entries
 * {name_len u8, name_index u8, value_size u16, name suffix, value} each padded to 4 bytes.
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { alignUp } from '../../util/bytes.js';

/** Name prefixes EROFS indexes, by index. */
export const XATTR_PREFIXES: ReadonlyArray<[number, string]> = [
  [2, 'system.posix_acl_access'],
  [3, 'system.posix_acl_default'],
  [1, 'user.'],
  [4, 'trusted.'],
  [6, 'security.'],
];

/** Size of the inline xattr header. */
export const XATTR_HEADER_SIZE = 12;

/** One xattr as a full name and raw value. */
export interface Xattr {
  name: string;
  value: Uint8Array;
}

/** Split a full name into (prefix index, suffix bytes); undefined when no prefix fits. */
export function splitXattrName(name: string): { index: number; suffix: Uint8Array } | undefined {
  for (const [index, prefix] of XATTR_PREFIXES) {
    if (prefix.endsWith('.') ? name.startsWith(prefix) && name.length > prefix.length : name === prefix) {
      return { index, suffix: new Uint8Array(Buffer.from(name.slice(prefix.length), 'utf8')) };
    }
  }
  return undefined;
}

/** Encoded size of a set of xattrs (0 when empty). */
export function xattrBodySize(xattrs: readonly Xattr[]): number {
  if (xattrs.length === 0) return 0;
  let size = XATTR_HEADER_SIZE;
  for (const x of xattrs) {
    const s = splitXattrName(x.name);
    if (!s) throw new FormatError('ERR_XATTR_PREFIX', `Cannot encode xattr "${x.name}": its namespace is not one of user., trusted., security., system.posix_acl_*`);
    size += alignUp(4 + s.suffix.length + x.value.length, 4);
  }
  return size;
}

/** i_xattr_icount for a body of `size` bytes. */
export function xattrIcount(size: number): number {
  return size === 0 ? 0 : (size - XATTR_HEADER_SIZE) / 4 + 1;
}

/** Encode xattrs (sorted by name for reproducible output) into `buf` at `off`; returns bytes written. */
export function encodeXattrs(xattrs: readonly Xattr[], buf: Uint8Array, off: number): number {
  if (xattrs.length === 0) return 0;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  buf.fill(0, off, off + XATTR_HEADER_SIZE);
  let p = off + XATTR_HEADER_SIZE;
  const sorted = [...xattrs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const x of sorted) {
    const s = splitXattrName(x.name);
    if (!s) throw new FormatError('ERR_XATTR_PREFIX', `Cannot encode xattr "${x.name}": unsupported namespace`);
    if (s.suffix.length > 255) throw new FormatError('ERR_XATTR_NAME', `Cannot encode xattr "${x.name}": name longer than 255 bytes`);
    if (x.value.length > 0xffff) throw new FormatError('ERR_XATTR_VALUE', `Cannot encode xattr "${x.name}": value longer than 65535 bytes`);
    const len = alignUp(4 + s.suffix.length + x.value.length, 4);
    buf.fill(0, p, p + len);
    view.setUint8(p, s.suffix.length);
    view.setUint8(p + 1, s.index);
    view.setUint16(p + 2, x.value.length, true);
    buf.set(s.suffix, p + 4);
    buf.set(x.value, p + 4 + s.suffix.length);
    p += len;
  }
  return p - off;
}

/** Decode an inline xattr body of `size` bytes at `off`. */
export function decodeXattrs(buf: Uint8Array, off: number, size: number, where: string): Xattr[] {
  if (size === 0) return [];
  if (off + size > buf.length) throw new FormatError('ERR_TRUNCATED', `Cannot read xattrs of ${where}: area ends past the bootstrap`, { offset: off });
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const shared = view.getUint8(off + 4);
  if (shared !== 0) throw new FormatError('ERR_BAD_XATTR', `Cannot read xattrs of ${where}: ${shared} shared xattrs are not supported`, { offset: off });
  const out: Xattr[] = [];
  let p = off + XATTR_HEADER_SIZE;
  const end = off + size;
  while (p + 4 <= end) {
    const nameLen = view.getUint8(p);
    const index = view.getUint8(p + 1);
    const valueSize = view.getUint16(p + 2, true);
    if (nameLen === 0 && index === 0 && valueSize === 0) break;
    const len = alignUp(4 + nameLen + valueSize, 4);
    if (p + 4 + nameLen + valueSize > end) throw new FormatError('ERR_BAD_XATTR', `Cannot read xattrs of ${where}: entry at ${p} overruns the xattr area`, { offset: p });
    const prefix = XATTR_PREFIXES.find(([i]) => i === index);
    if (!prefix) throw new FormatError('ERR_BAD_XATTR', `Cannot read xattrs of ${where}: unknown name index ${index}`, { offset: p });
    const suffix = Buffer.from(buf.buffer, buf.byteOffset + p + 4, nameLen).toString('utf8');
    out.push({ name: prefix[1] + suffix, value: buf.slice(p + 4 + nameLen, p + 4 + nameLen + valueSize) });
    p += len;
  }
  return out;
}
