/**
 * Constants of the RAFS v6 (EROFS-compatible) bootstrap layout.
 * @module
 */

/** EROFS block size used by RAFS v6 (4 KiB; 512 only for tarfs). */
export const EROFS_BLOCK_SIZE = 4096;
/** log2 of EROFS_BLOCK_SIZE. */
export const EROFS_BLOCK_BITS = 12;
/** Byte offset of the EROFS superblock. */
export const EROFS_SUPER_OFFSET = 1024;
/** Size of the EROFS superblock. */
export const EROFS_SUPER_SIZE = 128;
/** Byte offset of the Nydus extended superblock (right after the EROFS one). */
export const RAFS_EXT_SUPER_OFFSET = EROFS_SUPER_OFFSET + EROFS_SUPER_SIZE;
/** Size of the Nydus extended superblock. */
export const RAFS_EXT_SUPER_SIZE = 256;
/** Byte offset of the device table (slot offset 11 × 128). */
export const EROFS_DEVTABLE_OFFSET = 1408;
/** s_devt_slotoff: device table offset in 128-byte units. */
export const EROFS_DEVT_SLOT_OFF = 11;
/** Size of one device slot. */
export const EROFS_DEVSLOT_SIZE = 128;
/** Size of one RafsV6Blob entry in the blob table. */
export const RAFS_BLOB_ENTRY_SIZE = 256;
/** Size of one chunk-table record (RafsV5ChunkInfo layout). */
export const RAFS_CHUNK_RECORD_SIZE = 80;
/** Size of a compact inode. */
export const EROFS_INODE_COMPACT_SIZE = 32;
/** Size of an extended inode. */
export const EROFS_INODE_EXTENDED_SIZE = 64;
/** Size of a directory entry. */
export const EROFS_DIRENT_SIZE = 12;
/** Size of one chunk index in a chunk-based inode. */
export const EROFS_CHUNK_INDEX_SIZE = 8;
/** Inode slot granularity: nid × 32 = offset from the meta area. */
export const EROFS_NID_SHIFT = 5;
/** Nydus rounds each blob's mapped_blkaddr up to 512 KiB for flat block devices. */
export const RAFS_MAPPED_BLKADDR_ALIGN = 512 * 1024;
/** Maximum file name length. */
export const EROFS_NAME_LEN = 255;

/** EROFS superblock magic. */
export const EROFS_SUPER_MAGIC = 0xe0f5e1e2;
/** s_feature_compat bit Nydus sets to mark RAFS v6. */
export const EROFS_FEATURE_COMPAT_RAFS_V6 = 0x4000_0000;
/** s_feature_incompat: chunked files. */
export const EROFS_FEATURE_INCOMPAT_CHUNKED_FILE = 0x4;
/** s_feature_incompat: device table. */
export const EROFS_FEATURE_INCOMPAT_DEVICE_TABLE = 0x8;
/** The exact s_feature_incompat value Nydus writes and requires. */
export const RAFS_V6_FEATURE_INCOMPAT = EROFS_FEATURE_INCOMPAT_CHUNKED_FILE | EROFS_FEATURE_INCOMPAT_DEVICE_TABLE;

/** i_format data layouts (bits 1-3). */
export const EROFS_INODE_FLAT_PLAIN = 0;
export const EROFS_INODE_FLAT_INLINE = 2;
export const EROFS_INODE_CHUNK_BASED = 4;

/** Chunk format bit: the inode holds an array of 8-byte chunk indexes. */
export const EROFS_CHUNK_FORMAT_INDEXES = 0x20;
/** Mask of the chunk-size bits in a chunk format. */
export const EROFS_CHUNK_FORMAT_BLKBITS_MASK = 0x1f;

/** Dirent file types. */
export const EROFS_FT_UNKNOWN = 0;
export const EROFS_FT_REG_FILE = 1;
export const EROFS_FT_DIR = 2;
export const EROFS_FT_CHRDEV = 3;
export const EROFS_FT_BLKDEV = 4;
export const EROFS_FT_FIFO = 5;
export const EROFS_FT_SOCK = 6;
export const EROFS_FT_SYMLINK = 7;

/** Extended superblock s_flags. */
export const RAFS_FLAG_COMPRESSION_NONE = 0x1;
export const RAFS_FLAG_COMPRESSION_LZ4 = 0x2;
export const RAFS_FLAG_HASH_BLAKE3 = 0x4;
export const RAFS_FLAG_HASH_SHA256 = 0x8;
export const RAFS_FLAG_EXPLICIT_UID_GID = 0x10;
export const RAFS_FLAG_HAS_XATTR = 0x20;
export const RAFS_FLAG_COMPRESSION_GZIP = 0x40;
export const RAFS_FLAG_COMPRESSION_ZSTD = 0x80;
export const RAFS_FLAG_INLINED_CHUNK_DIGEST = 0x100;
export const RAFS_FLAG_TARFS_MODE = 0x200;
export const RAFS_FLAG_ENCRYPTION_NONE = 0x0100_0000;
export const RAFS_FLAG_ENCRYPTION_AES128XTS = 0x0200_0000;

/** Smallest and largest chunk sizes. */
export const RAFS_MIN_CHUNK_SIZE = 0x1000;
export const RAFS_MAX_CHUNK_SIZE = 0x100_0000;
/** Default chunk size. */
export const RAFS_DEFAULT_CHUNK_SIZE = 0x10_0000;

/** File type bits of st_mode. */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** Dirent file type for an st_mode. */
export function fileTypeOfMode(mode: number): number {
  switch (mode & S_IFMT) {
    case S_IFREG: return EROFS_FT_REG_FILE;
    case S_IFDIR: return EROFS_FT_DIR;
    case S_IFCHR: return EROFS_FT_CHRDEV;
    case S_IFBLK: return EROFS_FT_BLKDEV;
    case S_IFIFO: return EROFS_FT_FIFO;
    case S_IFSOCK: return EROFS_FT_SOCK;
    case S_IFLNK: return EROFS_FT_SYMLINK;
    default: return EROFS_FT_UNKNOWN;
  }
}

/** True when `n` is a power of two within the RAFS chunk size range. */
export function isValidChunkSize(n: number): boolean {
  return Number.isInteger(n) && n >= RAFS_MIN_CHUNK_SIZE && n <= RAFS_MAX_CHUNK_SIZE && (n & (n - 1)) === 0;
}
