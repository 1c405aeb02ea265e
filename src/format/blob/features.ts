/**
 * Blob feature bits (RafsV6Blob.features and the blob meta header).
 * @module
 */
export const BLOB_FEATURE_ALIGNED = 0x1;
export const BLOB_FEATURE_INLINED_FS_META = 0x2;
export const BLOB_FEATURE_CHUNK_INFO_V2 = 0x4;
export const BLOB_FEATURE_ZRAN = 0x8;
export const BLOB_FEATURE_SEPARATE = 0x10;
export const BLOB_FEATURE_INLINED_CHUNK_DIGEST = 0x20;
export const BLOB_FEATURE_TARFS = 0x40;
export const BLOB_FEATURE_BATCH = 0x80;
export const BLOB_FEATURE_ENCRYPTED = 0x100;
export const BLOB_FEATURE_HAS_TAR_HEADER = 0x1000_0000;
export const BLOB_FEATURE_HAS_TOC = 0x2000_0000;
export const BLOB_FEATURE_CAP_TAR_TOC = 0x4000_0000;
/** Internal bit; never valid on disk. */
export const BLOB_FEATURE_INTERNAL = 0x8000_0000;
