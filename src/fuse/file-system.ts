/**
 * The contract between the FUSE session (kernel protocol) and a file system implementation.
 * Node ids are FUSE node ids (1 is the root). Methods throw an error carrying a positive
 * `errno` (see FuseError) to answer with that errno; any other error answers EIO.
 * @module
 */

/** Attributes of an inode, as FUSE reports them (struct fuse_attr). */
export interface Attr {
  ino: number;
  size: number;
  /** 512-byte blocks. */
  blocks: number;
  atime: number;
  atimeNsec: number;
  mtime: number;
  mtimeNsec: number;
  ctime: number;
  ctimeNsec: number;
  /** st_mode, type bits included. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  /** Device number in the kernel's new_encode_dev form. */
  rdev: number;
  blksize: number;
}

/** Answer to LOOKUP (struct fuse_entry_out). */
export interface Entry {
  nodeid: number;
  generation: number;
  /** Seconds the kernel may cache the name → node mapping. */
  entryValid: number;
  /** Seconds the kernel may cache the attributes. */
  attrValid: number;
  attr: Attr;
}

/** One directory entry for READDIR / READDIRPLUS. */
export interface DirEntry {
  ino: number;
  /** Index of the *next* entry (what the kernel passes back as offset to continue). */
  off: number;
  /** DT_* type (mode >> 12). */
  type: number;
  name: Uint8Array;
  /** For READDIRPLUS: the entry ("." and ".." may omit it). */
  entry?: Entry;
}

/** struct fuse_kstatfs. */
export interface StatFs {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

/** How a file was opened. */
export interface OpenResult {
  fh: number;
  /** FOPEN_KEEP_CACHE: keep the page cache across opens (immutable data). */
  keepCache?: boolean;
  /** FOPEN_DIRECT_IO. */
  directIo?: boolean;
  /** FOPEN_CACHE_DIR (directories). */
  cacheDir?: boolean;
}

/** Who sent a request. */
export interface RequestContext {
  uid: number;
  gid: number;
  pid: number;
}

/** A read-only file system served over FUSE. */
export interface FileSystem {
  lookup(parent: number, name: Uint8Array, ctx: RequestContext): Promise<Entry>;
  /** The kernel dropped `nlookup` references to `nodeid`. No reply is sent. */
  forget(nodeid: number, nlookup: number): void;
  getattr(nodeid: number, ctx: RequestContext): Promise<{ attr: Attr; attrValid: number }>;
  readlink(nodeid: number, ctx: RequestContext): Promise<Uint8Array>;
  open(nodeid: number, flags: number, ctx: RequestContext): Promise<OpenResult>;
  /** Up to `size` bytes at `offset` (fewer only at end of file). May return several buffers. */
  read(nodeid: number, fh: number, offset: number, size: number, ctx: RequestContext): Promise<Uint8Array | Uint8Array[]>;
  release(nodeid: number, fh: number): Promise<void>;
  opendir(nodeid: number, flags: number, ctx: RequestContext): Promise<OpenResult>;
  /**
   * Entries from index `offset` on ("." is 0, ".." is 1, then the children). Return as many as
   * convenient; the session packs what fits in the reply and asks again from the next offset.
   */
  readdir(nodeid: number, fh: number, offset: number, plus: boolean, ctx: RequestContext): Promise<DirEntry[]>;
  releasedir(nodeid: number, fh: number): Promise<void>;
  statfs(nodeid: number): Promise<StatFs>;
  /** The value of xattr `name`; throw ENODATA when absent. */
  getxattr(nodeid: number, name: string, ctx: RequestContext): Promise<Uint8Array>;
  /** Names of the xattrs. */
  listxattr(nodeid: number, ctx: RequestContext): Promise<string[]>;
  access(nodeid: number, mask: number, ctx: RequestContext): Promise<void>;
  /** The session ended (DESTROY or unmount). */
  destroy?(): void;
}

/** An error answered to the kernel as -errno. */
export class FuseError extends Error {
  readonly errno: number;
  readonly code: string;

  constructor(errno: number, message: string) {
    super(message);
    this.name = 'FuseError';
    this.errno = errno;
    this.code = `ERR_FUSE_${errno}`;
  }
}

/** Linux errno values used by the file system. */
export const ERRNO = {
  EPERM: 1, ENOENT: 2, EIO: 5, EBADF: 9, EACCES: 13, EEXIST: 17, ENOTDIR: 20, EISDIR: 21, EINVAL: 22,
  ERANGE: 34, ENOSYS: 38, ENODATA: 61, ENOTSUP: 95, EROFS: 30, EINTR: 4, ENAMETOOLONG: 36,
} as const;
