/**
 * Full validation of an image (`nydus-image check`): headers, every directory, inode, xattr set,
 * symlink and chunk address, the chunk table, the prefetch table; with blobs at hand, also each
 * blob's ToC and every chunk's digest.
 * @module
 */
import { FormatError } from '../util/errors.js';
import { EROFS_BLOCK_SIZE, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../format/v6/constants.js';
import type { RafsImage } from './rafs-image.js';
import { walkImage, type WalkEntry } from './walk.js';
import { readChunk } from '../blob/chunk-reader.js';
import { readBlobToc } from '../blob/blob-toc.js';
import type { BlobResolver } from '../blob/blob-resolver.js';

/** Counts from a check. */
export interface CheckReport {
  inodes: number;
  entries: number;
  files: number;
  dirs: number;
  symlinks: number;
  others: number;
  chunkRefs: number;
  chunksVerified: number;
}

/** Validate `image`; `onEntry` sees every entry (for printing the tree). Throws on the first problem. */
export function checkImage(image: RafsImage, blobs?: BlobResolver, onEntry?: (e: WalkEntry) => void): CheckReport {
  const r: CheckReport = { inodes: 0, entries: 0, files: 0, dirs: 0, symlinks: 0, others: 0, chunkRefs: 0, chunksVerified: 0 };
  const nids = new Set<number>();
  const cs = image.ext.chunkSize;
  for (const e of walkImage(image, { strict: true })) {
    const i = e.inode;
    r.entries++;
    if (!nids.has(i.nid)) { nids.add(i.nid); r.inodes++; }
    image.xattrs(i);
    const type = i.mode & S_IFMT;
    if (type === S_IFDIR) r.dirs++;
    else if (type === S_IFLNK) { r.symlinks++; image.readlink(i); }
    else if (type === S_IFREG) {
      r.files++;
      const idx = image.chunkIndexes(i);
      idx.forEach((c, k) => {
        const rec = image.chunkRecord(c);
        const want = Math.min(cs, i.size - k * cs);
        if (rec.uncompressedSize !== want) {
          throw new FormatError('ERR_BAD_CHUNK', `Cannot use ${e.path}: chunk ${k} holds ${rec.uncompressedSize} bytes, expected ${want}`, { path: e.path });
        }
      });
      r.chunkRefs += idx.length;
    } else r.others++;
    onEntry?.(e);
  }
  for (let k = 0; k < image.chunkRecordCount; k++) {
    const rec = image.chunkRecordAt(k);
    const blob = image.blobs[rec.blobIndex];
    const where = `chunk table record ${k} (offset ${image.ext.chunkTableOffset + k * 80})`;
    if (!blob) throw new FormatError('ERR_BAD_CHUNK', `Cannot use ${where}: blob index ${rec.blobIndex} is not in the blob table`);
    if (rec.index >= blob.entry.chunkCount) throw new FormatError('ERR_BAD_CHUNK', `Cannot use ${where}: index ${rec.index} is beyond the blob's ${blob.entry.chunkCount} chunks`);
    if (rec.uncompressedSize === 0 || rec.uncompressedSize > cs) throw new FormatError('ERR_BAD_CHUNK', `Cannot use ${where}: uncompressed size ${rec.uncompressedSize} is not in 1..${cs}`);
    if (rec.uncompressedOffset % EROFS_BLOCK_SIZE !== 0 || rec.uncompressedOffset + rec.uncompressedSize > blob.entry.uncompressedSize) {
      throw new FormatError('ERR_BAD_CHUNK', `Cannot use ${where}: uncompressed range ${rec.uncompressedOffset}+${rec.uncompressedSize} is unaligned or outside the blob's ${blob.entry.uncompressedSize} bytes`);
    }
    if (blob.entry.compressedSize > 0 && rec.compressedOffset + rec.compressedSize > blob.entry.compressedSize) {
      throw new FormatError('ERR_BAD_CHUNK', `Cannot use ${where}: compressed range ${rec.compressedOffset}+${rec.compressedSize} is outside the blob's ${blob.entry.compressedSize} bytes`);
    }
    if (blobs) {
      readChunk(blobs.open(blob), rec, { compressor: blob.compressor, digester: blob.digester }, `blob ${blob.slot.blobId}`);
      r.chunksVerified++;
    }
  }
  if (blobs) {
    for (const b of image.blobs) {
      const src = blobs.open(b);
      if ((b.entry.features & 0x2000_0000) !== 0) readBlobToc(src, b.entry.blobTocDigest);
    }
  }
  for (const nid of image.prefetchNids()) {
    if (!nids.has(nid)) throw new FormatError('ERR_BAD_PREFETCH', `Cannot use prefetch table: nid ${nid} is not an inode of the tree`, { offset: image.ext.prefetchTableOffset });
  }
  return r;
}
