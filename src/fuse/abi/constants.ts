/**
 * FUSE protocol constants: versions, INIT flags, open flags (include/uapi/linux/fuse.h).
 * @module
 */

/** Major protocol version this implementation speaks. */
export const FUSE_KERNEL_VERSION = 7;
/** Highest minor version whose structures this implementation knows (7.45, Linux 6.18). */
export const FUSE_KERNEL_MINOR_VERSION = 45;
/**
 * Lowest kernel minor version accepted: 7.28 (Linux 4.20) brought FUSE_MAX_PAGES, FUSE_CACHE_SYMLINKS
 * and FOPEN_CACHE_DIR; every structure decoded here has its current size since then.
 */
export const FUSE_MIN_KERNEL_MINOR = 28;
/** Node id of the root directory. */
export const FUSE_ROOT_ID = 1;
/** The kernel refuses /dev/fuse reads into smaller buffers. */
export const FUSE_MIN_READ_BUFFER = 8192;

/** INIT flags, `fuse_init_in.flags` / `fuse_init_out.flags` (bits 0–31). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  FILE_OPS: 1 << 2,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  BIG_WRITES: 1 << 5,
  DONT_MASK: 1 << 6,
  SPLICE_WRITE: 1 << 7,
  SPLICE_MOVE: 1 << 8,
  SPLICE_READ: 1 << 9,
  FLOCK_LOCKS: 1 << 10,
  HAS_IOCTL_DIR: 1 << 11,
  AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  HANDLE_KILLPRIV: 1 << 19,
  POSIX_ACL: 1 << 20,
  ABORT_ERROR: 1 << 21,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  NO_OPENDIR_SUPPORT: 1 << 24,
  EXPLICIT_INVAL_DATA: 1 << 25,
  MAP_ALIGNMENT: 1 << 26,
  SUBMOUNTS: 1 << 27,
  HANDLE_KILLPRIV_V2: 1 << 28,
  SETXATTR_EXT: 1 << 29,
  /** fuse_init_in/out carry flags2 (bits 32–63). */
  INIT_EXT: 1 << 30,
} as const;

/** INIT flags 32–63, stored shifted down by 32 in `flags2`. */
export const InitFlag2 = {
  SECURITY_CTX: 1 << 0,
  HAS_INODE_DAX: 1 << 1,
  CREATE_SUPP_GROUP: 1 << 2,
  HAS_EXPIRE_ONLY: 1 << 3,
  DIRECT_IO_ALLOW_MMAP: 1 << 4,
  PASSTHROUGH: 1 << 5,
  NO_EXPORT_SUPPORT: 1 << 6,
  HAS_RESEND: 1 << 7,
  ALLOW_IDMAP: 1 << 8,
  OVER_IO_URING: 1 << 9,
  REQUEST_TIMEOUT: 1 << 10,
} as const;

/** `fuse_open_out.open_flags`. */
export const OpenFlag = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  STREAM: 1 << 4,
  NOFLUSH: 1 << 5,
} as const;

/** `open(2)` flags the session looks at (Linux values). */
export const O_ACCMODE = 0o3;
export const O_RDONLY = 0;
export const O_TRUNC = 0o1000;

/** `access(2)` mask bit for write permission. */
export const W_OK = 2;

/** Names of the bits set in an INIT `flags` word, for logs. */
export function initFlagNames(flags: number, flags2 = 0): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(InitFlag)) if ((flags & v) !== 0) out.push(k);
  for (const [k, v] of Object.entries(InitFlag2)) if ((flags2 & v) !== 0) out.push(k);
  return out;
}
