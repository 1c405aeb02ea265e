/**
 * `nydus-image inspect`: superblock, blob table, prefetch table, an inode by path, a file's chunks.
 * @module
 */
import { UsageError } from '../../util/errors.js';
import { toHex } from '../../util/bytes.js';
import { S_IFMT, S_IFREG, S_IFLNK } from '../../format/v6/constants.js';
import type { RafsImage } from '../../image/rafs-image.js';
import { str, type CommandSpec } from '../cli-args.js';
import { openBootstrap } from './open-bootstrap.js';

function superblockInfo(img: RafsImage): object {
  return {
    fs_version: 6, block_size: img.blockSize, root_nid: img.sb.rootNid, inodes: img.sb.inos, blocks: img.sb.blocks,
    meta_blkaddr: img.sb.metaBlkaddr, extra_devices: img.sb.extraDevices, flags: `0x${img.ext.flags.toString(16)}`,
    compressor: img.compressor, digester: img.digester, explicit_uid_gid: img.explicitUidGid, chunk_size: `0x${img.ext.chunkSize.toString(16)}`,
    blob_table: { offset: img.ext.blobTableOffset, size: img.ext.blobTableSize },
    chunk_table: { offset: img.ext.chunkTableOffset, size: img.ext.chunkTableSize, records: img.chunkRecordCount },
    prefetch_table: { offset: img.ext.prefetchTableOffset, size: img.ext.prefetchTableSize },
    bootstrap_size: img.source.size,
  };
}

function blobsInfo(img: RafsImage): object[] {
  return img.blobs.map((b) => ({
    index: b.index, blob_id: b.slot.blobId, mapped_blkaddr: b.slot.mappedBlkaddr, blocks: b.slot.blocks,
    chunk_count: b.entry.chunkCount, compressor: b.compressor, digester: b.digester, features: `0x${(b.entry.features >>> 0).toString(16)}`,
    compressed_size: b.entry.compressedSize, uncompressed_size: b.entry.uncompressedSize,
    ci: { compressor: b.entry.ciCompressor, offset: b.entry.ciOffset, compressed_size: b.entry.ciCompressedSize, uncompressed_size: b.entry.ciUncompressedSize },
    toc: { size: b.entry.blobTocSize, digest: toHex(b.entry.blobTocDigest) },
  }));
}

function inodeInfo(img: RafsImage, path: string): object {
  const i = img.resolve(path);
  if (!i) throw new UsageError('ERR_NOT_FOUND', `Cannot inspect ${path}: no such entry in the image`);
  const type = i.mode & S_IFMT;
  return {
    path, nid: i.nid, offset: i.offset, layout: i.layout, extended: i.extended, mode: `0${i.mode.toString(8)}`, nlink: i.nlink,
    uid: img.uidOf(i), gid: img.gidOf(i), size: i.size, mtime: i.mtime, mtime_nsec: i.mtimeNsec, ino: i.ino, rdev: img.rdev(i),
    xattrs: Object.fromEntries(img.xattrs(i).map((x) => [x.name, Buffer.from(x.value).toString('utf8')])),
    ...(type === S_IFLNK ? { target: Buffer.from(img.readlink(i)).toString('utf8') } : {}),
    ...(type === S_IFREG ? { chunks: img.chunkCount(i) } : {}),
  };
}

function chunksInfo(img: RafsImage, path: string): object[] {
  const i = img.resolve(path);
  if (!i || (i.mode & S_IFMT) !== S_IFREG) throw new UsageError('ERR_NOT_FOUND', `Cannot list chunks of ${path}: not a regular file in the image`);
  return img.chunkIndexes(i).map((c, k) => {
    const r = img.chunkRecord(c);
    return {
      file_offset: k * img.ext.chunkSize, blob_index: c.blobIndex, blob_id: img.blobs[c.blobIndex]?.slot.blobId, index: c.chunkIndex,
      digest: toHex(r.digest), compressed_offset: r.compressedOffset, compressed_size: r.compressedSize,
      uncompressed_offset: r.uncompressedOffset, uncompressed_size: r.uncompressedSize, compressed: (r.flags & 1) !== 0,
    };
  });
}

export const inspectCommand: CommandSpec = {
  name: 'inspect',
  summary: 'Show the superblock, blob table, prefetch table, an inode or the chunks of a file',
  usage: 'inspect [options] [BOOTSTRAP]',
  options: {
    bootstrap: { type: 'string', short: 'B', arg: 'path', help: 'Bootstrap to inspect' },
    blob: { type: 'string', short: 'b', arg: 'path', help: 'Blob with an inline bootstrap' },
    request: { type: 'string', short: 'R', arg: 'req', help: 'One of: superblock, blobs, prefetch, "inode PATH", "chunks PATH"' },
    path: { type: 'string', arg: 'path', help: 'Show the inode at this path' },
    chunks: { type: 'string', arg: 'path', help: 'Show the chunks of the file at this path' },
  },
  async run(v, pos) {
    const { image } = openBootstrap(v, pos);
    try {
      const req = str(v.request) ?? (str(v.path) ? `inode ${str(v.path)}` : str(v.chunks) ? `chunks ${str(v.chunks)}` : 'superblock');
      const [verb, ...rest] = req.split(' ');
      const arg = rest.join(' ');
      let out: unknown;
      if (verb === 'superblock' || verb === 'stats') out = { superblock: superblockInfo(image), blobs: blobsInfo(image) };
      else if (verb === 'blobs') out = blobsInfo(image);
      else if (verb === 'prefetch') out = image.prefetchNids();
      else if (verb === 'inode') out = inodeInfo(image, arg);
      else if (verb === 'chunks') out = chunksInfo(image, arg);
      else throw new UsageError('ERR_USAGE', `Cannot inspect: unknown request "${req}"`);
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return 0;
    } finally {
      image.close();
    }
  },
};
