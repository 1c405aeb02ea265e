/**
 * Resolution of an entry's metadata from its ustar header, its PAX records (per entry and
 * global) and GNU long name / long link headers.
 * @module
 */
import type { RawHeader } from './header.js';
import { normaliseTarPath } from './normalise-path.js';
import type { PaxFields } from './pax.js';
import { badFieldError } from './tar-errors.js';
import type { TarEntry, TarEntryType } from './types.js';

/** Metadata headers seen before an entry's own header. */
export interface PendingMeta {
  /** Offset of the first of them. */
  headerOffset: number;
  /** Total size of their bodies. */
  bytes: number;
  pax?: PaxFields;
  longName?: string;
  longLink?: string;
}

/** An entry's metadata, without its body and final size. */
export type EntryMeta = Omit<TarEntry, 'body' | 'size' | 'sparse'>;

/** Result of {@link resolveEntry}. */
export interface ResolvedEntry {
  /** undefined for a type the parser does not know. */
  meta: EntryMeta | undefined;
  /** Path before normalisation (also used for unknown types). */
  rawPath: string;
  /** Bytes of data stored after the header(s). */
  storedSize: number;
}

const TYPES = new Map<string, TarEntryType>([
  ['0', 'file'],
  ['\0', 'file'],
  ['7', 'file'],
  ['S', 'file'],
  ['1', 'hardlink'],
  ['2', 'symlink'],
  ['3', 'chardev'],
  ['4', 'blockdev'],
  ['5', 'dir'],
  ['D', 'dir'],
  ['6', 'fifo'],
]);

/**
 * Combine the header (read at `headerOffset`), pending metadata and global PAX fields into the
 * entry's metadata. Throws FormatError 'ERR_TAR_HEADER' when a needed numeric field is malformed.
 */
export function resolveEntry(h: RawHeader, pending: PendingMeta | undefined, globals: PaxFields, headerOffset: number): ResolvedEntry {
  const pax = pending?.pax;
  const entryOffset = pending?.headerOffset ?? headerOffset;
  const rawPath = pax?.sparse?.name ?? pax?.path ?? pending?.longName ?? h.name;
  const path = normaliseTarPath(rawPath);
  const need = (v: number | undefined, field: string): number => {
    if (v === undefined) throw badFieldError(path, entryOffset, field);
    return v;
  };
  const storedSize = pax?.size ?? need(h.size, 'size');
  let type = TYPES.get(h.typeflag);
  if (type === undefined) return { meta: undefined, rawPath, storedSize };
  if (type === 'file' && (h.typeflag === '0' || h.typeflag === '\0') && rawPath.endsWith('/')) type = 'dir';

  const rawLink = pax?.linkpath ?? pending?.longLink ?? h.linkname;
  const isDev = type === 'chardev' || type === 'blockdev';
  const mtime = pax?.mtime ?? globals.mtime ?? { sec: need(h.mtime, 'mtime'), nsec: 0 };
  const xattrs = new Map(globals.xattrs);
  if (pax) for (const [k, v] of pax.xattrs) xattrs.set(k, v);
  const meta: EntryMeta = {
    path,
    type,
    mode: need(h.mode, 'mode') & 0o7777,
    uid: pax?.uid ?? globals.uid ?? need(h.uid, 'uid'),
    gid: pax?.gid ?? globals.gid ?? need(h.gid, 'gid'),
    uname: pax?.uname ?? globals.uname ?? h.uname,
    gname: pax?.gname ?? globals.gname ?? h.gname,
    mtime: mtime.sec,
    mtimeNsec: mtime.nsec,
    linkname: type === 'symlink' ? rawLink : type === 'hardlink' ? normaliseTarPath(rawLink) : '',
    devmajor: isDev ? (pax?.devmajor ?? need(h.devmajor, 'devmajor')) : 0,
    devminor: isDev ? (pax?.devminor ?? need(h.devminor, 'devminor')) : 0,
    xattrs,
    headerOffset: entryOffset,
  };
  return { meta, rawPath, storedSize };
}
