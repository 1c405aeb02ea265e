/**
 * A small POSIX (PAX) tar writer for `unpack`: ustar headers, with a PAX record for long or
 * non-ASCII names, link targets, xattrs (SCHILY.xattr.*), nanosecond mtimes and large numbers.
 * @module
 */
import { writeSync } from 'node:fs';

/** An entry to write. */
export interface TarWriteEntry {
  path: string;
  /** ustar type flag: '0' file, '1' hardlink, '2' symlink, '3' chr, '4' blk, '5' dir, '6' fifo. */
  type: '0' | '1' | '2' | '3' | '4' | '5' | '6';
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  size: number;
  linkname?: Uint8Array;
  devmajor?: number;
  devminor?: number;
  xattrs?: ReadonlyArray<{ name: string; value: Uint8Array }>;
}

const BLOCK = 512;

function octal(h: Buffer, off: number, width: number, v: number): boolean {
  const s = Math.max(0, v).toString(8);
  if (s.length > width - 1 || v < 0) return false;
  h.write(s.padStart(width - 1, '0'), off, 'ascii');
  h[off + width - 1] = 0;
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

/** Writes a tar stream to a file descriptor. */
export class TarWriter {
  #fd: number;
  #pos = 0;

  constructor(fd: number) {
    this.#fd = fd;
  }

  #out(b: Uint8Array): void {
    let off = 0;
    while (off < b.length) off += writeSync(this.#fd, b, off, b.length - off);
    this.#pos += b.length;
  }

  #header(name: Buffer, type: string, e: Omit<TarWriteEntry, 'path' | 'type'>, size: number, linkname: Buffer): Buffer {
    const h = Buffer.alloc(BLOCK);
    name.copy(h, 0, 0, Math.min(100, name.length));
    octal(h, 100, 8, e.mode & 0o7777);
    octal(h, 108, 8, e.uid);
    octal(h, 116, 8, e.gid);
    octal(h, 124, 12, size);
    octal(h, 136, 12, Math.max(0, e.mtime));
    h.write(type, 156, 'ascii');
    linkname.copy(h, 157, 0, Math.min(100, linkname.length));
    h.write('ustar\0', 257, 'ascii');
    h.write('00', 263, 'ascii');
    octal(h, 329, 8, e.devmajor ?? 0);
    octal(h, 337, 8, e.devminor ?? 0);
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    octal(h, 148, 7, sum);
    h[155] = 0x20;
    return h;
  }

  /** Write an entry header (and PAX record when needed); file data follows via `data()`. */
  entry(e: TarWriteEntry): void {
    const name = Buffer.from(e.path + (e.type === '5' && !e.path.endsWith('/') ? '/' : ''), 'utf8');
    const link = Buffer.from(e.linkname ?? new Uint8Array(0));
    const pax: Buffer[] = [];
    const ascii = (b: Buffer): boolean => b.every((c) => c < 0x80);
    if (name.length > 100 || !ascii(name)) pax.push(paxRecord('path', name));
    if (link.length > 100 || !ascii(link)) pax.push(paxRecord('linkpath', link));
    if (e.size >= 8 ** 11) pax.push(paxRecord('size', Buffer.from(String(e.size))));
    if (e.uid >= 8 ** 7) pax.push(paxRecord('uid', Buffer.from(String(e.uid))));
    if (e.gid >= 8 ** 7) pax.push(paxRecord('gid', Buffer.from(String(e.gid))));
    if (e.mtimeNsec !== 0 || e.mtime < 0 || e.mtime >= 8 ** 11) {
      pax.push(paxRecord('mtime', Buffer.from(`${e.mtime}.${String(e.mtimeNsec).padStart(9, '0')}`)));
    }
    for (const x of e.xattrs ?? []) pax.push(paxRecord(`SCHILY.xattr.${x.name}`, Buffer.from(x.value)));
    if (pax.length > 0) {
      const body = Buffer.concat(pax);
      this.#out(this.#header(Buffer.from('PaxHeader'), 'x', { ...e, mode: 0o644 }, body.length, Buffer.alloc(0)));
      this.#out(body);
      this.#pad(body.length);
    }
    this.#out(this.#header(name, e.type, e, e.type === '0' ? e.size : 0, link));
  }

  /** Write file data. */
  data(b: Uint8Array): void {
    this.#out(b);
  }

  /** Pad the data of the last entry of `size` bytes to a block. */
  #pad(size: number): void {
    const rem = size % BLOCK;
    if (rem !== 0) this.#out(new Uint8Array(BLOCK - rem));
  }

  /** End an entry's data of `size` bytes. */
  endData(size: number): void {
    this.#pad(size);
  }

  /** Write the end-of-archive marker. */
  finish(): void {
    this.#out(new Uint8Array(BLOCK * 2));
  }
}
