/**
 * PAX extended headers: record parsing and the fields they carry (POSIX keys, SCHILY and
 * LIBARCHIVE extended attributes, GNU sparse 0.x/1.0 keys).
 * @module
 */
import { FormatError } from '../util/errors.js';
import { decodeUtf8, parseDecimal, parsePaxTime } from './numeric.js';
import type { SparseRun } from './sparse.js';

/** One `key=value` record; the value is kept as raw bytes. */
export interface PaxRecord {
  key: string;
  value: Uint8Array;
}

/** GNU sparse information from PAX keys. */
export interface PaxSparse {
  major?: number;
  minor?: number;
  name?: string;
  /** GNU.sparse.size (0.x) or GNU.sparse.realsize (1.0). */
  realSize?: number;
  /** Runs from 0.0 (offset/numbytes pairs) or 0.1 (GNU.sparse.map). */
  runs?: SparseRun[];
  /** An offset waiting for its numbytes (0.0). */
  pendingOffset?: number;
}

/** Fields accumulated from PAX records. Unset means "use the header's value". */
export interface PaxFields {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  mtime?: { sec: number; nsec: number };
  devmajor?: number;
  devminor?: number;
  xattrs: Map<string, Uint8Array>;
  sparse?: PaxSparse;
}

/** Where the records came from, for error messages. */
export interface PaxContext {
  /** Offset of the PAX header in the tar stream. */
  offset: number;
  /** Name of the PAX header entry. */
  name: string;
}

const LF = 0x0a;
const SPACE = 0x20;
const EQUALS = 0x3d;

/** A new, empty set of fields. */
export function newPaxFields(): PaxFields {
  return { xattrs: new Map() };
}

function paxError(ctx: PaxContext, state: string): FormatError {
  return new FormatError('ERR_TAR_PAX', `Cannot parse PAX header "${ctx.name}" at offset ${ctx.offset}: ${state}`, {
    path: ctx.name,
    offset: ctx.offset,
  });
}

/**
 * Split a PAX extended header body into records (`"<len> <key>=<value>\n"`). Trailing NUL
 * padding is tolerated. Throws FormatError 'ERR_TAR_PAX' on a malformed record.
 */
export function parsePaxRecords(data: Uint8Array, ctx: PaxContext): PaxRecord[] {
  const records: PaxRecord[] = [];
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    let len = 0;
    let i = pos;
    while (i < data.length && (data[i] ?? 0) >= 0x30 && (data[i] ?? 0) <= 0x39 && i - pos < 16) {
      len = len * 10 + ((data[i] ?? 0) - 0x30);
      i++;
    }
    const end = pos + len;
    if (i === pos || data[i] !== SPACE || end > data.length || end <= i + 1 || data[end - 1] !== LF) {
      throw paxError(ctx, `the record at byte ${pos} of its body is malformed`);
    }
    const kv = data.subarray(i + 1, end - 1);
    const eq = kv.indexOf(EQUALS);
    if (eq <= 0) throw paxError(ctx, `the record at byte ${pos} of its body has no key`);
    records.push({ key: decodeUtf8(kv.subarray(0, eq)), value: kv.slice(eq + 1) });
    pos = end;
  }
  return records;
}

function hexValue(b: number | undefined): number {
  if (b === undefined) return -1;
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  return -1;
}

/** Decode `%XX` escapes (LIBARCHIVE.xattr names) into bytes. */
function percentDecode(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] ?? 0;
    const hi = hexValue(bytes[i + 1]);
    const lo = hexValue(bytes[i + 2]);
    if (b === 0x25 && hi >= 0 && lo >= 0) {
      out[n++] = hi * 16 + lo;
      i += 2;
    } else {
      out[n++] = b;
    }
  }
  return out.subarray(0, n);
}

function needDecimal(ctx: PaxContext, key: string, text: string): number {
  const v = parseDecimal(text);
  if (v === undefined) throw paxError(ctx, `the value of "${key}" is not a decimal number: "${text.slice(0, 40)}"`);
  return v;
}

function sparseOf(f: PaxFields): PaxSparse {
  f.sparse ??= {};
  return f.sparse;
}

function parseSparseMapText(ctx: PaxContext, text: string): SparseRun[] {
  const nums = text === '' ? [] : text.split(',').map((t) => needDecimal(ctx, 'GNU.sparse.map', t));
  if (nums.length % 2 !== 0) throw paxError(ctx, 'GNU.sparse.map has an odd number of values');
  const runs: SparseRun[] = [];
  for (let i = 0; i < nums.length; i += 2) runs.push({ offset: nums[i] ?? 0, length: nums[i + 1] ?? 0 });
  return runs;
}

/** Keys a global ('g') header may not set: they only make sense for one entry. */
const ENTRY_ONLY_KEYS = new Set(['path', 'linkpath', 'size']);

/**
 * Apply `records` to `fields` in order. With `global`, entry-specific keys (path, linkpath,
 * size, GNU.sparse.*) are ignored. An empty value unsets a field (except for xattrs, whose
 * value may legitimately be empty). Unknown keys are ignored.
 * Throws FormatError 'ERR_TAR_PAX' on a malformed value.
 */
export function applyPaxRecords(fields: PaxFields, records: PaxRecord[], ctx: PaxContext, global: boolean): void {
  for (const { key, value } of records) {
    if (global && (ENTRY_ONLY_KEYS.has(key) || key.startsWith('GNU.sparse.'))) continue;
    if (key.startsWith('SCHILY.xattr.')) {
      fields.xattrs.set(key.slice('SCHILY.xattr.'.length), value);
      continue;
    }
    if (key.startsWith('LIBARCHIVE.xattr.')) {
      const name = decodeUtf8(percentDecode(key.slice('LIBARCHIVE.xattr.'.length)));
      const b64 = Buffer.from(decodeUtf8(value), 'base64');
      fields.xattrs.set(name, new Uint8Array(b64.buffer, b64.byteOffset, b64.byteLength));
      continue;
    }
    const text = decodeUtf8(value);
    if (text === '' && !key.startsWith('GNU.sparse.')) {
      unset(fields, key);
      continue;
    }
    switch (key) {
      case 'path':
        fields.path = text;
        break;
      case 'linkpath':
        fields.linkpath = text;
        break;
      case 'size':
        fields.size = needDecimal(ctx, key, text);
        break;
      case 'uid':
        fields.uid = needDecimal(ctx, key, text);
        break;
      case 'gid':
        fields.gid = needDecimal(ctx, key, text);
        break;
      case 'uname':
        fields.uname = text;
        break;
      case 'gname':
        fields.gname = text;
        break;
      case 'SCHILY.devmajor':
        fields.devmajor = needDecimal(ctx, key, text);
        break;
      case 'SCHILY.devminor':
        fields.devminor = needDecimal(ctx, key, text);
        break;
      case 'mtime': {
        const t = parsePaxTime(text);
        if (t === undefined) throw paxError(ctx, `the value of "mtime" is not a time: "${text.slice(0, 40)}"`);
        fields.mtime = t;
        break;
      }
      case 'GNU.sparse.major':
        sparseOf(fields).major = needDecimal(ctx, key, text);
        break;
      case 'GNU.sparse.minor':
        sparseOf(fields).minor = needDecimal(ctx, key, text);
        break;
      case 'GNU.sparse.name':
        sparseOf(fields).name = text;
        break;
      case 'GNU.sparse.size':
      case 'GNU.sparse.realsize':
        sparseOf(fields).realSize = needDecimal(ctx, key, text);
        break;
      case 'GNU.sparse.map':
        sparseOf(fields).runs = parseSparseMapText(ctx, text);
        break;
      case 'GNU.sparse.offset': {
        const s = sparseOf(fields);
        if (s.pendingOffset !== undefined) throw paxError(ctx, 'GNU.sparse.offset is not followed by GNU.sparse.numbytes');
        s.pendingOffset = needDecimal(ctx, key, text);
        break;
      }
      case 'GNU.sparse.numbytes': {
        const s = sparseOf(fields);
        if (s.pendingOffset === undefined) throw paxError(ctx, 'GNU.sparse.numbytes is not preceded by GNU.sparse.offset');
        (s.runs ??= []).push({ offset: s.pendingOffset, length: needDecimal(ctx, key, text) });
        delete s.pendingOffset;
        break;
      }
      default:
        break;
    }
  }
}

function unset(fields: PaxFields, key: string): void {
  switch (key) {
    case 'path':
    case 'linkpath':
    case 'size':
    case 'uid':
    case 'gid':
    case 'uname':
    case 'gname':
    case 'mtime':
      delete fields[key];
      break;
    case 'SCHILY.devmajor':
      delete fields.devmajor;
      break;
    case 'SCHILY.devminor':
      delete fields.devminor;
      break;
    default:
      break;
  }
}
