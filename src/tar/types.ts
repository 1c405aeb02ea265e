/**
 * Public types of the streaming tar reader.
 * @module
 */

/** Kinds of tar entries the parser reports. */
export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'chardev' | 'blockdev' | 'dir' | 'fifo';

/** A piece of a file's data at a logical offset of the file. */
export interface TarSegment {
  offset: number;
  data: Uint8Array;
}

/** One entry of a tar archive, with its metadata resolved from all of its headers. */
export interface TarEntry {
  /** Normalised path (see `normaliseTarPath`); the root directory is ''. */
  path: string;
  type: TarEntryType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Modification time, whole seconds (floored). */
  mtime: number;
  /** Nanoseconds part of the modification time (from PAX), else 0. */
  mtimeNsec: number;
  /** Logical size of a regular file (the real size for a sparse file); 0 for other entries. */
  size: number;
  /** Symlink target as stored (raw); the normalised target path for hardlinks; '' otherwise. */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from PAX SCHILY.xattr.* and LIBARCHIVE.xattr.* records (raw value bytes). */
  xattrs: Map<string, Uint8Array>;
  /** Offset of the entry's first header (including PAX / GNU long-name headers) in the tar stream. */
  headerOffset: number;
  /** True for a GNU sparse file (any of the old GNU, PAX 0.0, 0.1 or 1.0 forms). */
  sparse: boolean;
  /**
   * The file's data as segments in increasing logical offset order; holes are absent. For
   * non-sparse files the segments are contiguous from 0. Must be consumed (or not) before the
   * parser is advanced; what is left is skipped. Can be iterated at most once. Empty for
   * entries other than regular files. The segment bytes are views of the input chunks: copy
   * them to keep them past the next read.
   */
  body(): AsyncIterable<TarSegment>;
}

/** Extra data passed with a warning. */
export interface TarWarningData {
  /** Offset in the tar stream the warning is about. */
  offset: number;
  /** Entry path, when the warning is about an entry. */
  path?: string;
  /** Type flag of a skipped entry. */
  typeflag?: string;
}

/** Options of `parseTar`. */
export interface ParseTarOptions {
  /** Largest accepted PAX / GNU long-name header body and PAX 1.0 sparse map (default 1 MiB). */
  maxMetaEntrySize?: number;
  /** Called for recoverable oddities: unknown entry types (skipped), trailing data, and so on. */
  onWarn?: (code: string, message: string, data: TarWarningData) => void;
}
