/**
 * Lays out a BuildNode tree as a RAFS v6 bootstrap and encodes it.
 *
 * Order: [0,1024) zeros, superblock, extended superblock, device table, blob table (4 KiB
 * aligned), prefetch table, meta area (first 4 KiB left empty so the root nid is never small),
 * chunk table (4 KiB aligned), padding to 4 KiB. In the meta area each directory is followed by
 * its non-directory children, then its subdirectories recursively; inline data never crosses a
 * block boundary.
 * @module
 */
import { alignUp, compareBytes } from '../util/bytes.js';
import type { Compressor } from '../util/compress.js';
import type { Digester } from '../util/digest.js';
import {
  EROFS_BLOCK_SIZE, EROFS_DEVTABLE_OFFSET, EROFS_INODE_CHUNK_BASED, EROFS_INODE_EXTENDED_SIZE, EROFS_INODE_FLAT_INLINE,
  EROFS_INODE_FLAT_PLAIN, EROFS_SUPER_OFFSET, RAFS_EXT_SUPER_OFFSET, RAFS_FLAG_EXPLICIT_UID_GID, RAFS_FLAG_HAS_XATTR,
  RAFS_FLAG_INLINED_CHUNK_DIGEST, RAFS_FLAG_ENCRYPTION_NONE, RAFS_MAPPED_BLKADDR_ALIGN, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
  fileTypeOfMode,
} from '../format/v6/constants.js';
import { encodeSuperblock, newSuperblock } from '../format/v6/superblock.js';
import { compressorFlag, digesterFlag, encodeExtSuperblock } from '../format/v6/ext-superblock.js';
import { DEVICE_SLOT_SIZE, encodeDeviceSlot } from '../format/v6/device-slot.js';
import { BLOB_ENTRY_SIZE, encodeBlobEntry, type BlobEntry } from '../format/v6/blob-entry.js';
import { encodeInode } from '../format/v6/inode.js';
import { DIRENT_SIZE, encodeDirBlock, type Dirent } from '../format/v6/dirent.js';
import { CHUNK_INDEX_SIZE, chunkFormat, encodeChunkIndex } from '../format/v6/chunk-index.js';
import { CHUNK_RECORD_SIZE, encodeChunkRecord, type ChunkRecord } from '../format/v6/chunk-record.js';
import { encodeXattrs, xattrBodySize, xattrIcount } from '../format/v6/xattr.js';
import { BLOB_FEATURE_INLINED_CHUNK_DIGEST } from '../format/blob/features.js';
import { isDir, keyBytes, type BuildNode } from './build-node.js';

/** What a bootstrap needs besides the tree. */
export interface BootstrapOptions {
  chunkSize: number;
  compressor: Compressor;
  digester: Digester;
  blobs: readonly BlobEntry[];
  /** Nodes to list in the prefetch table, in order. */
  prefetch?: readonly BuildNode[];
  /** Set EXPLICIT_UID_GID (default true). */
  explicitUidGid?: boolean;
}

/** Where a node went; numbers only, so a large tree costs little while it is laid out. */
interface Placement {
  nid: number;
  ino: number;
  nlink: number;
  layout: number;
  xattrSize: number;
  /** Bytes of flat data (directory blocks or symlink target); 0 for others. */
  dataLen: number;
  /** Block address of the full data blocks (relative to the meta area until encoded). */
  blkaddr: number;
}

/** A directory's entries ("." and ".." included) sorted by name bytes; names as latin1 keys. */
function dirEntries(node: BuildNode, parent: BuildNode): Array<{ name: string; node: BuildNode }> {
  const list: Array<{ name: string; node: BuildNode }> = [{ name: '.', node }, { name: '..', node: parent }];
  for (const [k, child] of node.children ?? []) list.push({ name: k, node: child });
  list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return list;
}

function packDirBlocks(entries: ReadonlyArray<{ name: string }>): { blocks: Array<[number, number]>; size: number } {
  const blocks: Array<[number, number]> = [];
  let start = 0;
  let used = 0;
  entries.forEach((e, k) => {
    const need = DIRENT_SIZE + e.name.length;
    if (used + need > EROFS_BLOCK_SIZE) {
      blocks.push([start, k]);
      start = k;
      used = 0;
    }
    used += need;
  });
  blocks.push([start, entries.length]);
  return { blocks, size: (blocks.length - 1) * EROFS_BLOCK_SIZE + used };
}

/** Encode the tree rooted at `root` as a bootstrap. */
export function writeBootstrap(root: BuildNode, options: BootstrapOptions): Uint8Array {
  const { blobs } = options;
  const placements = new Map<BuildNode, Placement>();
  const parents = new Map<BuildNode, BuildNode>();
  const order: BuildNode[] = [];
  const nlinks = new Map<BuildNode, number>();
  let hasXattr = false;

  // Count names per node (hardlinks) and record directory parents.
  const countStack: BuildNode[] = [root];
  parents.set(root, root);
  while (countStack.length > 0) {
    const d = countStack.pop() as BuildNode;
    for (const child of d.children?.values() ?? []) {
      nlinks.set(child, (nlinks.get(child) ?? 0) + 1);
      if (isDir(child)) {
        parents.set(child, d);
        countStack.push(child);
      }
    }
  }

  // Pass 1: placement in the meta area (offsets relative to the meta start).
  let cursor = EROFS_BLOCK_SIZE;
  let ino = 1;
  const placeInode = (node: BuildNode): void => {
    if (placements.has(node)) return;
    const xattrSize = xattrBodySize(node.xattrs);
    if (xattrSize > 0) hasXattr = true;
    const base = EROFS_INODE_EXTENDED_SIZE + xattrSize;
    const type = node.mode & S_IFMT;
    const p: Placement = { nid: 0, ino: ino++, nlink: 1, layout: EROFS_INODE_FLAT_PLAIN, xattrSize, dataLen: 0, blkaddr: 0 };
    let itemSize = base;
    let fullBytes = 0;
    if (type === S_IFDIR) {
      p.dataLen = packDirBlocks(dirEntries(node, parents.get(node) as BuildNode)).size;
      let subdirs = 0;
      for (const c of node.children?.values() ?? []) if (isDir(c)) subdirs++;
      p.nlink = 2 + subdirs;
    } else if (type === S_IFLNK) {
      p.dataLen = node.target?.length ?? 0;
    } else if (type === S_IFREG) {
      p.layout = EROFS_INODE_CHUNK_BASED;
      p.nlink = nlinks.get(node) ?? 1;
      itemSize = alignUp(base, 8) + (node.chunks?.length ?? 0) * CHUNK_INDEX_SIZE;
    }
    if (p.dataLen > 0) {
      const tail = p.dataLen % EROFS_BLOCK_SIZE;
      if (tail !== 0 && base + tail <= EROFS_BLOCK_SIZE) {
        p.layout = EROFS_INODE_FLAT_INLINE;
        itemSize = base + tail;
        fullBytes = p.dataLen - tail;
      } else {
        fullBytes = alignUp(p.dataLen, EROFS_BLOCK_SIZE);
      }
    }
    // Inode (+ inline tail): keep items up to a block inside one block.
    if (itemSize <= EROFS_BLOCK_SIZE && (cursor % EROFS_BLOCK_SIZE) + itemSize > EROFS_BLOCK_SIZE) cursor = alignUp(cursor, EROFS_BLOCK_SIZE);
    if (itemSize > EROFS_BLOCK_SIZE) cursor = alignUp(cursor, EROFS_BLOCK_SIZE);
    p.nid = cursor / 32;
    cursor = alignUp(cursor + itemSize, 32);
    if (fullBytes > 0) {
      cursor = alignUp(cursor, EROFS_BLOCK_SIZE);
      p.blkaddr = cursor / EROFS_BLOCK_SIZE; // relative; rebased below
      cursor += fullBytes;
    }
    placements.set(node, p);
    order.push(node);
  };
  const visit = (dir: BuildNode): void => {
    placeInode(dir);
    const kids = [...(dir.children ?? [])].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [, c] of kids) if (!isDir(c)) placeInode(c);
    for (const [, c] of kids) if (isDir(c)) visit(c);
  };
  visit(root);
  const metaSize = alignUp(cursor, EROFS_BLOCK_SIZE);

  // Fixed areas before the meta area.
  const blobTableOffset = alignUp(EROFS_DEVTABLE_OFFSET + blobs.length * DEVICE_SLOT_SIZE, EROFS_BLOCK_SIZE);
  const blobTableSize = blobs.length * BLOB_ENTRY_SIZE;
  const prefetch = blobs.length > 0 ? (options.prefetch ?? []) : [];
  const prefetchOffset = prefetch.length > 0 ? blobTableOffset + blobTableSize : 0;
  const prefetchSize = prefetch.length * 4;
  const metaOffset = alignUp(blobTableOffset + blobTableSize + prefetchSize, EROFS_BLOCK_SIZE);
  const metaBlkaddr = metaOffset / EROFS_BLOCK_SIZE;

  // Chunk table: one record per distinct chunk, sorted by (digest, blob index, chunk index).
  const recordSet = new Set<ChunkRecord>();
  for (const n of order) for (const c of n.chunks ?? []) recordSet.add(c.record);
  const records = [...recordSet].sort((a, b) => compareBytes(a.digest, b.digest) || a.blobIndex - b.blobIndex || a.index - b.index);
  const chunkTableOffset = metaOffset + metaSize;
  const chunkTableSize = records.length * CHUNK_RECORD_SIZE;
  const total = alignUp(chunkTableOffset + chunkTableSize, EROFS_BLOCK_SIZE);

  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);

  // Pass 2: encode inodes and data.
  for (const node of order) {
    const p = placements.get(node) as Placement;
    const off = metaOffset + p.nid * 32;
    const type = node.mode & S_IFMT;
    let u = 0;
    let size = 0;
    if (type === S_IFDIR || type === S_IFLNK) {
      size = p.dataLen;
      let data: Uint8Array;
      if (type === S_IFDIR) {
        data = new Uint8Array(p.dataLen);
        const entries = dirEntries(node, parents.get(node) as BuildNode);
        const { blocks } = packDirBlocks(entries);
        const block = new Uint8Array(EROFS_BLOCK_SIZE);
        blocks.forEach(([s, e], b) => {
          const ents: Dirent[] = entries.slice(s, e).map((x) => ({ name: keyBytes(x.name), nid: (placements.get(x.node) as Placement).nid, fileType: fileTypeOfMode(x.node.mode) }));
          block.fill(0);
          encodeDirBlock(ents, block);
          data.set(block.subarray(0, Math.min(EROFS_BLOCK_SIZE, p.dataLen - b * EROFS_BLOCK_SIZE)), b * EROFS_BLOCK_SIZE);
        });
      } else {
        data = node.target ?? new Uint8Array(0);
      }
      const fullLen = p.layout === EROFS_INODE_FLAT_INLINE ? p.dataLen - (p.dataLen % EROFS_BLOCK_SIZE) : p.dataLen;
      if (fullLen > 0) {
        u = p.blkaddr + metaBlkaddr;
        out.set(data.subarray(0, fullLen), u * EROFS_BLOCK_SIZE);
      }
      if (p.layout === EROFS_INODE_FLAT_INLINE) out.set(data.subarray(fullLen), off + EROFS_INODE_EXTENDED_SIZE + p.xattrSize);
    } else if (type === S_IFREG) {
      size = node.size;
      u = chunkFormat(options.chunkSize);
      const idx = off + alignUp(EROFS_INODE_EXTENDED_SIZE + p.xattrSize, 8);
      (node.chunks ?? []).forEach((c, k) => encodeChunkIndex({ blobIndex: c.blobIndex, chunkIndex: c.record.index, blkaddr: c.record.uncompressedOffset / EROFS_BLOCK_SIZE }, view, idx + k * CHUNK_INDEX_SIZE));
    } else if (type === S_IFCHR || type === S_IFBLK) {
      u = node.rdev;
    }
    encodeInode({
      extended: true, layout: p.layout, xattrIcount: xattrIcount(p.xattrSize), mode: node.mode, nlink: p.nlink, size, u,
      ino: p.ino, uid: node.uid, gid: node.gid, mtime: node.mtime, mtimeNsec: node.mtimeNsec,
    }, view, off);
    if (p.xattrSize > 0) encodeXattrs(node.xattrs, out, off + EROFS_INODE_EXTENDED_SIZE);
  }

  records.forEach((r, k) => encodeChunkRecord(r, view, chunkTableOffset + k * CHUNK_RECORD_SIZE));
  prefetch.forEach((n, k) => view.setUint32(prefetchOffset + k * 4, (placements.get(n) as Placement).nid, true));

  // Device table: blobs mapped after the bootstrap for a flat block device.
  let pos = total;
  let blocks = 0;
  blobs.forEach((b, k) => {
    const cnt = Math.floor(b.uncompressedSize / EROFS_BLOCK_SIZE);
    const mapped = alignUp(pos, RAFS_MAPPED_BLKADDR_ALIGN) / EROFS_BLOCK_SIZE;
    pos = (mapped + cnt) * EROFS_BLOCK_SIZE;
    blocks += cnt;
    encodeDeviceSlot({ blobId: b.blobId, blocks: cnt, mappedBlkaddr: mapped }, view, EROFS_DEVTABLE_OFFSET + k * DEVICE_SLOT_SIZE);
    encodeBlobEntry({ ...b, blobIndex: k }, view, blobTableOffset + k * BLOB_ENTRY_SIZE);
  });

  const rootP = placements.get(root) as Placement;
  encodeSuperblock(newSuperblock({ rootNid: rootP.nid, inos: order.length, blocks, metaBlkaddr, extraDevices: blobs.length }), view, EROFS_SUPER_OFFSET);
  let flags = compressorFlag(options.compressor) | digesterFlag(options.digester) | RAFS_FLAG_ENCRYPTION_NONE;
  if (options.explicitUidGid !== false) flags |= RAFS_FLAG_EXPLICIT_UID_GID;
  if (hasXattr) flags |= RAFS_FLAG_HAS_XATTR;
  if (blobs.length > 0 && blobs.every((b) => (b.features & BLOB_FEATURE_INLINED_CHUNK_DIGEST) !== 0)) flags |= RAFS_FLAG_INLINED_CHUNK_DIGEST;
  encodeExtSuperblock({
    flags, blobTableOffset, blobTableSize, chunkSize: options.chunkSize, chunkTableOffset: records.length > 0 ? chunkTableOffset : 0, chunkTableSize,
    prefetchTableOffset: prefetchOffset, prefetchTableSize: prefetchSize,
  }, view, RAFS_EXT_SUPER_OFFSET);
  return out;
}
