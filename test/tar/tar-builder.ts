/**
 * A minimal tar writer for hand-crafted test archives (odd headers GNU tar will not write).
 * @module
 */

/** Fields of a crafted header; numbers given as bytes are written verbatim. */
export interface HeaderSpec {
  name: string;
  type?: string;
  mode?: number;
  uid?: number | Uint8Array;
  gid?: number | Uint8Array;
  size?: number | Uint8Array;
  mtime?: number | Uint8Array;
  linkname?: string;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
  prefix?: string;
  magic?: 'ustar' | 'gnu' | 'v7';
  /** Use the signed byte sum for the checksum. */
  signedChecksum?: boolean;
  /** Add this to the checksum (to corrupt it). */
  checksumDelta?: number;
}

const enc = new TextEncoder();

function putString(block: Uint8Array, off: number, len: number, s: string): void {
  const b = enc.encode(s);
  if (b.length > len) throw new Error(`"${s}" does not fit ${len} bytes`);
  block.set(b, off);
}

function putOctal(block: Uint8Array, off: number, len: number, v: number): void {
  putString(block, off, len, v.toString(8).padStart(len - 1, '0'));
}

function putNumber(block: Uint8Array, off: number, len: number, v: number | Uint8Array): void {
  if (v instanceof Uint8Array) block.set(v, off);
  else putOctal(block, off, len, v);
}

/** A GNU base-256 encoding of `v` in `len` bytes. */
export function base256(v: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = v < 0n ? (1n << BigInt(len * 8)) + v : v;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  if (v >= 0n) out[0] = (out[0] ?? 0) | 0x80;
  return out;
}

/** One 512-byte header block with a valid (or deliberately wrong) checksum. */
export function header(spec: HeaderSpec): Uint8Array {
  const b = new Uint8Array(512);
  putString(b, 0, 100, spec.name);
  putOctal(b, 100, 8, spec.mode ?? 0o644);
  putNumber(b, 108, 8, spec.uid ?? 0);
  putNumber(b, 116, 8, spec.gid ?? 0);
  putNumber(b, 124, 12, spec.size ?? 0);
  putNumber(b, 136, 12, spec.mtime ?? 0);
  b[156] = (spec.type ?? '0').charCodeAt(0);
  putString(b, 157, 100, spec.linkname ?? '');
  const magic = spec.magic ?? 'ustar';
  if (magic === 'ustar') putString(b, 257, 8, 'ustar\u000000');
  if (magic === 'gnu') putString(b, 257, 8, 'ustar  \u0000');
  if (magic !== 'v7') {
    putString(b, 265, 32, spec.uname ?? '');
    putString(b, 297, 32, spec.gname ?? '');
    putOctal(b, 329, 8, spec.devmajor ?? 0);
    putOctal(b, 337, 8, spec.devminor ?? 0);
  }
  if (spec.prefix !== undefined) putString(b, 345, 155, spec.prefix);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += spec.signedChecksum === true ? (x << 24) >> 24 : x;
  sum += spec.checksumDelta ?? 0;
  const text = (sum < 0 ? sum + 0o1000000 : sum).toString(8).padStart(6, '0');
  putString(b, 148, 8, `${text}\u0000 `);
  return b;
}

/** `data` padded with zeros to a multiple of 512 bytes. */
export function padded(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / 512) * 512);
  out.set(data);
  return out;
}

/** A PAX extended header body from key/value pairs (values as strings or raw bytes). */
export function paxBody(records: Array<[string, string | Uint8Array]>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [k, v] of records) {
    const value = typeof v === 'string' ? enc.encode(v) : v;
    const rest = enc.encode(` ${k}=`).length + value.length + 1;
    let len = rest + 1;
    while (String(len).length + rest !== len) len++;
    parts.push(enc.encode(`${len} ${k}=`), value, enc.encode('\n'));
  }
  return concat(parts);
}

/** A header + padded body for a meta entry ('x', 'g', 'L', 'K'). */
export function metaEntry(type: string, body: Uint8Array, name = 'PaxHeader'): Uint8Array {
  return concat([header({ name, type, size: body.length }), padded(body)]);
}

/** A regular file entry. */
export function fileEntry(name: string, content: Uint8Array | string, spec: Partial<HeaderSpec> = {}): Uint8Array {
  const data = typeof content === 'string' ? enc.encode(content) : content;
  return concat([header({ name, size: data.length, ...spec }), padded(data)]);
}

/** Two zero blocks. */
export function endOfArchive(): Uint8Array {
  return new Uint8Array(1024);
}

/** Concatenate byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
