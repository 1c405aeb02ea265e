/**
 * FUSE request opcodes (enum fuse_opcode in include/uapi/linux/fuse.h, protocol 7.45).
 * @module
 */

/** Opcode of a request, `in_header.opcode`. */
export const FuseOpcode = {
  LOOKUP: 1,
  /** No reply. */
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  /** No reply (the interrupted request gets one). */
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  /** The kernel's answer to a retrieve notification; no reply. */
  NOTIFY_REPLY: 41,
  /** No reply. */
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
  /** 7.45. */
  COPY_FILE_RANGE_64: 53,
} as const;

/** A known opcode value. */
export type FuseOpcode = (typeof FuseOpcode)[keyof typeof FuseOpcode];

const NAMES: ReadonlyMap<number, string> = new Map(Object.entries(FuseOpcode).map(([k, v]) => [v, k]));

/** `LOOKUP`, `READ` … or `OP_<n>` for an opcode this module does not know. */
export function opcodeName(opcode: number): string {
  return NAMES.get(opcode) ?? `OP_${opcode}`;
}

/** Requests that would change the file system; a read-only session answers them EROFS. */
export const WRITE_OPCODES: ReadonlySet<number> = new Set<number>([
  FuseOpcode.SETATTR, FuseOpcode.SYMLINK, FuseOpcode.MKNOD, FuseOpcode.MKDIR, FuseOpcode.UNLINK, FuseOpcode.RMDIR,
  FuseOpcode.RENAME, FuseOpcode.RENAME2, FuseOpcode.LINK, FuseOpcode.WRITE, FuseOpcode.CREATE, FuseOpcode.SETXATTR,
  FuseOpcode.REMOVEXATTR, FuseOpcode.FALLOCATE, FuseOpcode.COPY_FILE_RANGE, FuseOpcode.COPY_FILE_RANGE_64,
  FuseOpcode.TMPFILE,
]);
