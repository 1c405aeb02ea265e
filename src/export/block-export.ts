/**
 * `nydus-image export --block`: a raw EROFS disk image that Linux mounts directly. The bootstrap
 * comes first; each blob's chunks are decompressed, verified and written at the blob's
 * mapped_blkaddr plus their uncompressed offset; optionally a dm-verity tree follows.
 * @module
 */
import { closeSync, ftruncateSync, openSync, writeSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { FormatError } from '../util/errors.js';
import { TempFiles } from '../util/atomic-file.js';
import { EROFS_BLOCK_SIZE } from '../format/v6/constants.js';
import type { RafsImage } from '../image/rafs-image.js';
import { readChunk } from '../blob/chunk-reader.js';
import type { BlobResolver } from '../blob/blob-resolver.js';
import { buildVerityTree } from './verity.js';

/** Options of an export. */
export interface BlockExportOptions {
  output: string;
  verity: boolean;
}

/** What an export produced. */
export interface BlockExportResult {
  blocks: number;
  verity?: { hashOffset: number; rootDigest: string; dataBlocks: number };
}

/** Write the disk image of `image` to `options.output`. */
export function exportBlock(image: RafsImage, blobs: BlobResolver, options: BlockExportOptions): BlockExportResult {
  const bootBlocks = image.source.size / EROFS_BLOCK_SIZE;
  let blocks = bootBlocks;
  for (const b of image.blobs) {
    if (b.slot.mappedBlkaddr < bootBlocks) {
      throw new FormatError('ERR_BAD_DEVICE_SLOT', `Cannot export: blob ${b.index} is mapped at block ${b.slot.mappedBlkaddr}, inside the ${bootBlocks}-block bootstrap`);
    }
    blocks = Math.max(blocks, b.slot.mappedBlkaddr + b.slot.blocks);
  }
  const temps = new TempFiles();
  const tmp = temps.for(options.output);
  const fd = openSync(tmp, 'w+', 0o644);
  try {
    for (let off = 0; off < image.source.size; off += 1 << 20) {
      const len = Math.min(1 << 20, image.source.size - off);
      writeSync(fd, image.source.read(off, len), 0, len, off);
    }
    for (let k = 0; k < image.chunkRecordCount; k++) {
      const rec = image.chunkRecordAt(k);
      const blob = image.blobs[rec.blobIndex];
      if (!blob) throw new FormatError('ERR_BAD_CHUNK', `Cannot export: chunk record ${k} names blob ${rec.blobIndex}, which is not in the blob table`);
      if (rec.uncompressedOffset + rec.uncompressedSize > blob.slot.blocks * EROFS_BLOCK_SIZE) {
        throw new FormatError('ERR_BAD_CHUNK', `Cannot export: chunk record ${k} (${rec.uncompressedOffset}+${rec.uncompressedSize}) lies outside blob ${blob.slot.blobId}'s ${blob.slot.blocks} blocks`);
      }
      const data = readChunk(blobs.open(blob), rec, { compressor: blob.compressor, digester: blob.digester }, `blob ${blob.slot.blobId}`);
      writeSync(fd, data, 0, data.length, blob.slot.mappedBlkaddr * EROFS_BLOCK_SIZE + rec.uncompressedOffset);
    }
    const dataSize = blocks * EROFS_BLOCK_SIZE;
    ftruncateSync(fd, dataSize);
    const result: BlockExportResult = { blocks };
    if (options.verity) {
      const digests: Uint8Array[] = [];
      const buf = Buffer.alloc(EROFS_BLOCK_SIZE * 256);
      for (let off = 0; off < dataSize; off += buf.length) {
        const len = Math.min(buf.length, dataSize - off);
        let done = 0;
        while (done < len) done += readSync(fd, buf, done, len - done, off + done);
        for (let p = 0; p < len; p += EROFS_BLOCK_SIZE) digests.push(new Uint8Array(createHash('sha256').update(buf.subarray(p, p + EROFS_BLOCK_SIZE)).digest()));
      }
      const { tree, root } = buildVerityTree(digests);
      writeSync(fd, tree, 0, tree.length, dataSize);
      result.verity = { hashOffset: dataSize, rootDigest: Buffer.from(root).toString('hex'), dataBlocks: blocks };
    }
    closeSync(fd);
    temps.commit(tmp, options.output);
    return result;
  } catch (e) {
    try { closeSync(fd); } catch { /* closed */ }
    throw e;
  } finally {
    temps.cleanup();
    blobs.close();
  }
}
