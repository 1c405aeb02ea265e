/**
 * A lazily read RAFS v6 bootstrap: superblocks, device and blob tables are decoded at open;
 * inodes, directories, xattrs and chunk indexes are read on demand by nid from the ByteSource,
 * so a million-file image never becomes a million objects.
 * @module
 */
import { FormatError, hasCode } from '../util/errors.js';
import { viewOf } from '../util/bytes.js';
import { compressorFromCode, type Compressor } from '../util/compress.js';
import { digesterFromCode, type Digester } from '../util/digest.js';
import type { ByteSource } from './byte-source.js';
import {
  EROFS_BLOCK_SIZE, EROFS_CHUNK_FORMAT_BLKBITS_MASK, EROFS_CHUNK_FORMAT_INDEXES, EROFS_DEVTABLE_OFFSET,
  EROFS_INODE_CHUNK_BASED, EROFS_INODE_FLAT_INLINE, EROFS_INODE_FLAT_PLAIN, EROFS_SUPER_MAGIC, EROFS_SUPER_OFFSET, RAFS_EXT_SUPER_OFFSET,
  RAFS_FLAG_EXPLICIT_UID_GID, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, S_IFCHR, S_IFBLK,
} from '../format/v6/constants.js';
import { decodeSuperblock, validateSuperblock, type Superblock } from '../format/v6/superblock.js';
import { compressorOfFlags, decodeExtSuperblock, digesterOfFlags, validateExtSuperblock, type ExtSuperblock } from '../format/v6/ext-superblock.js';
import { decodeDeviceSlot, validateDeviceSlot, DEVICE_SLOT_SIZE, type DeviceSlot } from '../format/v6/device-slot.js';
import { BLOB_ENTRY_SIZE, decodeBlobEntry, validateBlobEntry, type BlobEntry } from '../format/v6/blob-entry.js';
import { decodeInode, inodeSize, validateInode, xattrAreaSize, type Inode } from '../format/v6/inode.js';
import { decodeDirBlock, direntAt, direntCount, direntName, type Dirent } from '../format/v6/dirent.js';
import { CHUNK_INDEX_SIZE, decodeChunkIndex, type ChunkIndex } from '../format/v6/chunk-index.js';
import { CHUNK_RECORD_SIZE, decodeChunkRecord, type ChunkRecord } from '../format/v6/chunk-record.js';
import { decodeXattrs, type Xattr } from '../format/v6/xattr.js';

/** An inode with its nid and location. */
export interface InodeInfo extends Inode {
  nid: number;
  /** Byte offset of the inode in the bootstrap. */
  offset: number;
  /** Size of the inline xattr area. */
  xattrSize: number;
}

/** A blob referenced by the image, with both table views. */
export interface ImageBlob {
  index: number;
  entry: BlobEntry;
  slot: DeviceSlot;
  compressor: Compressor;
  digester: Digester;
}

const MAX_SYMLINK = 4096;
/** Inodes kept decoded (a walk revisits parents and recent entries). */
const INODE_CACHE_SIZE = 8192;
/** Directory positions per block (more than the 315 entries a 4 KiB block can hold). */
const DIR_POS_PER_BLOCK = 512;

/** Run a decoder, prefixing a field-range error (a u64 above 2^53) with where the field is. */
function withContext<T>(fn: () => T, where: string, offset: number): T {
  try {
    return fn();
  } catch (e) {
    throw withWhere(e, where, offset);
  }
}

/** A decode error with the location prepended (value-range errors only). */
function withWhere(e: unknown, where: string, offset: number): unknown {
  if (hasCode(e, 'ERR_VALUE_RANGE')) return new FormatError('ERR_VALUE_RANGE', `${where}: ${(e as Error).message.replace(/^Cannot decode /, '')}`, { offset, cause: e });
  return e;
}

/** Open a bootstrap: decodes and validates the fixed headers. */
export class RafsImage {
  readonly source: ByteSource;
  readonly sb: Superblock;
  readonly ext: ExtSuperblock;
  readonly blobs: readonly ImageBlob[];
  readonly compressor: Compressor;
  readonly digester: Digester;
  readonly explicitUidGid: boolean;
  readonly blockSize: number;
  readonly metaOffset: number;
  /** Per blob: chunk index → chunk-table record number + 1 (0 = absent); 4 bytes a chunk. */
  #chunkMap: Int32Array[] | undefined;
  /** Recently decoded inodes (insertion-order eviction). */
  readonly #inodes = new Map<number, InodeInfo>();

  constructor(source: ByteSource) {
    this.source = source;
    if (source.size < 4096) throw new FormatError('ERR_TRUNCATED', `Cannot open bootstrap: ${source.size} bytes is smaller than one 4 KiB block`);
    const head = source.read(0, Math.min(source.size, 4096));
    const view = viewOf(head);
    // The magic first: any other field of a file that is not a bootstrap is noise.
    const magic = view.getUint32(EROFS_SUPER_OFFSET, true);
    if (magic !== EROFS_SUPER_MAGIC) {
      throw new FormatError('ERR_BAD_MAGIC', `Cannot open bootstrap: s_magic at offset ${EROFS_SUPER_OFFSET} is 0x${magic.toString(16)}, expected 0x${EROFS_SUPER_MAGIC.toString(16)} (not a RAFS v6 bootstrap)`, { offset: EROFS_SUPER_OFFSET });
    }
    this.sb = withContext(() => decodeSuperblock(view, EROFS_SUPER_OFFSET), 'Cannot open bootstrap: superblock', EROFS_SUPER_OFFSET);
    validateSuperblock(this.sb, source.size);
    this.ext = withContext(() => decodeExtSuperblock(view, RAFS_EXT_SUPER_OFFSET), 'Cannot open bootstrap: extended superblock', RAFS_EXT_SUPER_OFFSET);
    validateExtSuperblock(this.ext, source.size);
    this.blockSize = 1 << this.sb.blkszbits;
    if (source.size % this.blockSize !== 0) {
      throw new FormatError('ERR_TRUNCATED', `Cannot open bootstrap: size ${source.size} is not a multiple of the ${this.blockSize}-byte block`);
    }
    this.metaOffset = this.sb.metaBlkaddr * this.blockSize;
    this.compressor = compressorOfFlags(this.ext.flags);
    this.digester = digesterOfFlags(this.ext.flags);
    this.explicitUidGid = (this.ext.flags & RAFS_FLAG_EXPLICIT_UID_GID) !== 0;
    const count = this.ext.blobTableSize / BLOB_ENTRY_SIZE;
    if (count !== this.sb.extraDevices) {
      throw new FormatError('ERR_BAD_SUPERBLOCK', `Cannot open bootstrap: s_extra_devices ${this.sb.extraDevices} differs from ${count} blob table entries`, { offset: 1024 + 86 });
    }
    if (EROFS_DEVTABLE_OFFSET + count * DEVICE_SLOT_SIZE > this.ext.blobTableOffset && count > 0) {
      throw new FormatError('ERR_BAD_SUPERBLOCK', `Cannot open bootstrap: device table of ${count} slots overlaps the blob table at ${this.ext.blobTableOffset}`);
    }
    const devView = viewOf(source.read(EROFS_DEVTABLE_OFFSET, count * DEVICE_SLOT_SIZE));
    const tableView = viewOf(source.read(this.ext.blobTableOffset, this.ext.blobTableSize));
    const blobs: ImageBlob[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < count; i++) {
      const slot = decodeDeviceSlot(devView, i * DEVICE_SLOT_SIZE);
      validateDeviceSlot(slot, i);
      const entry = withContext(() => decodeBlobEntry(tableView, i * BLOB_ENTRY_SIZE), `Cannot open bootstrap: blob table entry ${i}`, this.ext.blobTableOffset + i * BLOB_ENTRY_SIZE);
      validateBlobEntry(entry, i, this.ext.chunkSize, this.ext.blobTableOffset);
      if (seen.has(slot.blobId)) throw new FormatError('ERR_BAD_DEVICE_SLOT', `Cannot open bootstrap: blob ${slot.blobId} appears twice in the device table`);
      seen.add(slot.blobId);
      const compressor = compressorFromCode(entry.compressionAlgo);
      const digester = digesterFromCode(entry.digestAlgo);
      if (!compressor || !digester) throw new FormatError('ERR_BAD_BLOB_ENTRY', `Cannot open bootstrap: blob ${i} has unknown algorithms`);
      blobs.push({ index: i, entry, slot, compressor, digester });
    }
    this.blobs = blobs;
  }

  /** nid of the root directory. */
  get rootNid(): number {
    return this.sb.rootNid;
  }

  /** Decode the inode `nid`, checking that it lies inside the bootstrap. */
  inode(nid: number): InodeInfo {
    const hit = this.#inodes.get(nid);
    if (hit) return hit;
    const info = this.#decodeInode(nid);
    if (this.#inodes.size >= INODE_CACHE_SIZE) this.#inodes.delete(this.#inodes.keys().next().value as number);
    this.#inodes.set(nid, info);
    return info;
  }

  #decodeInode(nid: number): InodeInfo {
    const offset = this.metaOffset + nid * 32;
    if (!Number.isSafeInteger(nid) || nid < 0 || offset + 32 > this.source.size) {
      throw new FormatError('ERR_BAD_NID', `Cannot read inode: nid ${nid} points past the end of the bootstrap`, { offset });
    }
    const avail = Math.min(64, this.source.size - offset);
    const head = this.source.read(offset, avail);
    let inode: Inode;
    try {
      inode = decodeInode(new DataView(head.buffer, head.byteOffset, head.byteLength), 0);
    } catch (e) {
      throw withWhere(e, `Cannot read inode nid ${nid} at offset ${offset}`, offset);
    }
    validateInode(inode, nid);
    const xattrSize = xattrAreaSize(inode.xattrIcount);
    if (offset + inodeSize(inode) + xattrSize > this.source.size) {
      throw new FormatError('ERR_BAD_INODE', `Cannot read inode nid ${nid}: its xattrs run past the end of the bootstrap`, { offset });
    }
    // Same property order for every inode: one hidden class for all of them.
    const info = inode as InodeInfo;
    info.nid = nid;
    info.offset = offset;
    info.xattrSize = xattrSize;
    return info;
  }

  /** uid as served: the stored one with EXPLICIT_UID_GID, else 0. */
  uidOf(i: Inode): number {
    return this.explicitUidGid ? i.uid : 0;
  }

  /** gid as served. */
  gidOf(i: Inode): number {
    return this.explicitUidGid ? i.gid : 0;
  }

  /** The inode's inline xattrs. */
  xattrs(i: InodeInfo): Xattr[] {
    if (i.xattrSize === 0) return [];
    const start = i.offset + inodeSize(i);
    const buf = this.source.read(start, i.xattrSize);
    return decodeXattrs(buf, 0, i.xattrSize, `nid ${i.nid}`);
  }

  /** Bytes of a FLAT_PLAIN / FLAT_INLINE inode's data (directory blocks, symlink target). */
  flatData(i: InodeInfo, start: number, len: number): Uint8Array {
    if (i.layout !== EROFS_INODE_FLAT_PLAIN && i.layout !== EROFS_INODE_FLAT_INLINE) {
      throw new FormatError('ERR_BAD_INODE', `Cannot read data of nid ${i.nid}: layout ${i.layout} is not flat`);
    }
    if (start < 0 || start + len > i.size) throw new FormatError('ERR_BAD_INODE', `Cannot read data of nid ${i.nid}: ${start}+${len} is past its size ${i.size}`, { offset: i.offset });
    const bs = this.blockSize;
    const fullBlocks = i.layout === EROFS_INODE_FLAT_INLINE ? Math.floor(i.size / bs) : Math.ceil(i.size / bs);
    if (fullBlocks > 0 && (i.u + fullBlocks) * bs > this.source.size) {
      throw new FormatError('ERR_BAD_INODE', `Cannot read data of nid ${i.nid}: ${fullBlocks} blocks from block ${i.u} (i_u) for i_size ${i.size} run past the end of the ${this.source.size}-byte bootstrap`, { offset: i.offset });
    }
    // A range inside one block (every directory block) is returned without copying.
    const inBlock = Math.floor(start / bs) === Math.floor((start + Math.max(len, 1) - 1) / bs);
    const out = inBlock ? undefined : new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const pos = start + done;
      const blk = Math.floor(pos / bs);
      const inBlk = pos % bs;
      const n = Math.min(len - done, bs - inBlk);
      let addr: number;
      if (blk < fullBlocks) {
        addr = (i.u + blk) * bs + inBlk;
      } else {
        const tailStart = i.offset + inodeSize(i) + i.xattrSize;
        const tailLen = i.size - fullBlocks * bs;
        if ((tailStart % bs) + tailLen > bs) {
          throw new FormatError('ERR_BAD_INODE', `Cannot read inline data of nid ${i.nid}: ${tailLen} bytes at ${tailStart} cross a block boundary`, { offset: tailStart });
        }
        addr = tailStart + inBlk;
      }
      if (!out) return this.source.read(addr, n);
      out.set(this.source.read(addr, n), done);
      done += n;
    }
    return out ?? new Uint8Array(0);
  }

  /** All entries of directory `i` (including "." and ".."), block by block, in on-disk order. */
  *dirents(i: InodeInfo): Generator<Dirent> {
    if ((i.mode & S_IFMT) !== S_IFDIR) throw new FormatError('ERR_NOT_DIR', `Cannot list nid ${i.nid}: not a directory`, { errno: 20 });
    const bs = this.blockSize;
    for (let pos = 0; pos < i.size; pos += bs) {
      const len = Math.min(bs, i.size - pos);
      yield* decodeDirBlock(this.flatData(i, pos, len), `nid ${i.nid} block ${pos / bs}`);
    }
  }

  /**
   * Up to `max` entries of directory `i` from position `pos`, each with the position of the
   * next one. A position is block × 512 + index in the block (a block holds at most 315
   * entries), so a listing resumes at its block without re-reading the ones before.
   */
  direntsFrom(i: InodeInfo, pos: number, max: number): Array<Dirent & { next: number }> {
    if ((i.mode & S_IFMT) !== S_IFDIR) throw new FormatError('ERR_NOT_DIR', `Cannot list nid ${i.nid}: not a directory`, { errno: 20 });
    const bs = this.blockSize;
    const nblocks = Math.ceil(i.size / bs);
    let b = Math.floor(pos / DIR_POS_PER_BLOCK);
    let k = pos % DIR_POS_PER_BLOCK;
    const out: Array<Dirent & { next: number }> = [];
    while (out.length < max && b < nblocks) {
      const block = this.flatData(i, b * bs, Math.min(bs, i.size - b * bs));
      const where = `nid ${i.nid} block ${b}`;
      const count = direntCount(block, where);
      for (; k < count && out.length < max; k++) {
        const d = direntAt(block, k, direntName(block, k, count, where), where) as Dirent & { next: number };
        d.next = k + 1 < count ? b * DIR_POS_PER_BLOCK + k + 1 : (b + 1) * DIR_POS_PER_BLOCK;
        out.push(d);
      }
      if (k >= count) {
        b++;
        k = 0;
      }
    }
    return out;
  }

  /** Look `name` up in directory `i` with a binary search over its sorted blocks; undefined when absent. */
  lookup(i: InodeInfo, name: Uint8Array): Dirent | undefined {
    if ((i.mode & S_IFMT) !== S_IFDIR) throw new FormatError('ERR_NOT_DIR', `Cannot look up in nid ${i.nid}: not a directory`, { errno: 20 });
    const bs = this.blockSize;
    const nblocks = Math.ceil(i.size / bs);
    let lo = 0;
    let hi = nblocks - 1;
    // Binary search over blocks, then within the block, comparing names in place.
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const len = Math.min(bs, i.size - mid * bs);
      const block = this.flatData(i, mid * bs, len);
      const where = `nid ${i.nid} block ${mid}`;
      const count = direntCount(block, where);
      if (Buffer.compare(name, direntName(block, 0, count, where)) < 0) { hi = mid - 1; continue; }
      if (Buffer.compare(name, direntName(block, count - 1, count, where)) > 0) { lo = mid + 1; continue; }
      let a = 0;
      let b = count - 1;
      while (a <= b) {
        const m = (a + b) >> 1;
        const n = direntName(block, m, count, where);
        const c = Buffer.compare(name, n);
        if (c === 0) return direntAt(block, m, n, where);
        if (c < 0) b = m - 1; else a = m + 1;
      }
      return undefined;
    }
    return undefined;
  }

  /** Resolve an absolute path (no symlinks followed) to an inode; undefined when absent. */
  resolve(path: string): InodeInfo | undefined {
    let cur = this.inode(this.rootNid);
    for (const part of path.split('/').filter((p) => p.length > 0)) {
      if ((cur.mode & S_IFMT) !== S_IFDIR) return undefined;
      const e = this.lookup(cur, Buffer.from(part, 'utf8'));
      if (!e) return undefined;
      cur = this.inode(e.nid);
    }
    return cur;
  }

  /** Symlink target bytes. */
  readlink(i: InodeInfo): Uint8Array {
    if ((i.mode & S_IFMT) !== S_IFLNK) throw new FormatError('ERR_NOT_SYMLINK', `Cannot readlink nid ${i.nid}: not a symlink`, { errno: 22 });
    if (i.size > MAX_SYMLINK) throw new FormatError('ERR_BAD_INODE', `Cannot readlink nid ${i.nid}: target of ${i.size} bytes exceeds 4096`);
    return this.flatData(i, 0, i.size);
  }

  /** rdev of a device inode (EROFS new_encode_dev form, as glibc makedev for common values). */
  rdev(i: Inode): number {
    const t = i.mode & S_IFMT;
    return t === S_IFCHR || t === S_IFBLK ? i.u : 0;
  }

  /** Number of chunk indexes a regular file holds. */
  chunkCount(i: Inode): number {
    return Math.ceil(i.size / this.ext.chunkSize);
  }

  /** The chunk addresses of a regular file, in file order. */
  chunkIndexes(i: InodeInfo): ChunkIndex[] {
    if ((i.mode & S_IFMT) !== S_IFREG) throw new FormatError('ERR_NOT_FILE', `Cannot map chunks of nid ${i.nid}: not a regular file`);
    if (i.size === 0) return [];
    if (i.layout !== EROFS_INODE_CHUNK_BASED) throw new FormatError('ERR_BAD_INODE', `Cannot map chunks of nid ${i.nid}: layout ${i.layout} is not chunk-based`);
    if ((i.u & EROFS_CHUNK_FORMAT_INDEXES) === 0) throw new FormatError('ERR_BAD_INODE', `Cannot map chunks of nid ${i.nid}: chunk format 0x${i.u.toString(16)} lacks INDEXES`);
    const bits = (i.u & EROFS_CHUNK_FORMAT_BLKBITS_MASK) + this.sb.blkszbits;
    if (bits > 44) throw new FormatError('ERR_BAD_INODE', `Cannot map chunks of nid ${i.nid}: chunk format 0x${i.u.toString(16)} is invalid`);
    const n = this.chunkCount(i);
    const start = i.offset + Math.ceil((inodeSize(i) + i.xattrSize) / 8) * 8;
    if (start + n * CHUNK_INDEX_SIZE > this.source.size) {
      throw new FormatError('ERR_BAD_INODE', `Cannot map chunks of nid ${i.nid}: ${n} chunk indexes run past the end of the bootstrap`, { offset: start });
    }
    const view = viewOf(this.source.read(start, n * CHUNK_INDEX_SIZE));
    const out: ChunkIndex[] = [];
    for (let k = 0; k < n; k++) {
      const c = decodeChunkIndex(view, k * CHUNK_INDEX_SIZE);
      const blob = this.blobs[c.blobIndex];
      if (!blob) throw new FormatError('ERR_BAD_CHUNK_INDEX', `Cannot map chunk ${k} of nid ${i.nid}: blob index ${c.blobIndex} is not in the blob table`, { offset: start + k * 8 });
      if (c.chunkIndex >= blob.entry.chunkCount) throw new FormatError('ERR_BAD_CHUNK_INDEX', `Cannot map chunk ${k} of nid ${i.nid}: chunk index ${c.chunkIndex} is beyond the blob's ${blob.entry.chunkCount} chunks`, { offset: start + k * 8 });
      out.push(c);
    }
    return out;
  }

  /** Number of records in the chunk table. */
  get chunkRecordCount(): number {
    return this.ext.chunkTableSize / CHUNK_RECORD_SIZE;
  }

  /** Record `k` of the chunk table. */
  chunkRecordAt(k: number): ChunkRecord {
    if (!Number.isSafeInteger(k) || k < 0 || k >= this.chunkRecordCount) {
      throw new FormatError('ERR_BAD_CHUNK', `Cannot read chunk table record ${k}: the table has ${this.chunkRecordCount} records`);
    }
    const off = this.ext.chunkTableOffset + k * CHUNK_RECORD_SIZE;
    return withContext(() => decodeChunkRecord(viewOf(this.source.read(off, CHUNK_RECORD_SIZE)), 0), `Cannot read chunk table record ${k} at offset ${off}`, off);
  }

  /** Per blob, chunk index → chunk-table record number + 1 (0: no record), built on first use. */
  #chunkMaps(): Int32Array[] {
    if (!this.#chunkMap) {
      const maps = this.blobs.map((b) => new Int32Array(b.entry.chunkCount));
      const n = this.chunkRecordCount;
      const table = viewOf(this.source.read(this.ext.chunkTableOffset, this.ext.chunkTableSize));
      for (let k = 0; k < n; k++) {
        const blobIndex = table.getUint32(k * CHUNK_RECORD_SIZE + 32, true);
        const index = table.getUint32(k * CHUNK_RECORD_SIZE + 72, true);
        const m = maps[blobIndex];
        if (m && index < m.length) m[index] = k + 1;
      }
      this.#chunkMap = maps;
    }
    return this.#chunkMap;
  }

  /**
   * The uncompressed offsets of blob `blobIndex`'s chunks that have a record, with their chunk
   * indexes, in chunk-index order: read straight from the chunk table, without decoding records
   * (a large blob has hundreds of thousands).
   */
  chunkStarts(blobIndex: number): { starts: Float64Array; indexes: Uint32Array } {
    const map = this.#chunkMaps()[blobIndex];
    if (!map) return { starts: new Float64Array(0), indexes: new Uint32Array(0) };
    const table = viewOf(this.source.read(this.ext.chunkTableOffset, this.ext.chunkTableSize));
    const starts = new Float64Array(map.length);
    const indexes = new Uint32Array(map.length);
    let m = 0;
    for (let i = 0; i < map.length; i++) {
      const k = (map[i] as number) - 1;
      if (k < 0) continue;
      const off = k * CHUNK_RECORD_SIZE + 56;
      starts[m] = table.getUint32(off + 4, true) * 2 ** 32 + table.getUint32(off, true);
      indexes[m] = i;
      m++;
    }
    return { starts: starts.subarray(0, m), indexes: indexes.subarray(0, m) };
  }

  /** The chunk-table record for a chunk address. */
  chunkRecord(c: ChunkIndex, checkBlock = true): ChunkRecord {
    const k = (this.#chunkMaps()[c.blobIndex]?.[c.chunkIndex] ?? 0) - 1;
    if (k < 0) throw new FormatError('ERR_BAD_CHUNK_INDEX', `Cannot find chunk ${c.chunkIndex} of blob ${c.blobIndex} in the chunk table`);
    const rec = this.chunkRecordAt(k);
    // Bounded before any reader sizes a buffer by it (an lz4 block is decoded into exactly this many bytes).
    if (rec.uncompressedSize === 0 || rec.uncompressedSize > this.ext.chunkSize) {
      throw new FormatError('ERR_BAD_CHUNK', `Cannot use chunk table record ${k} (chunk ${c.chunkIndex} of blob ${c.blobIndex}): uncompressed size ${rec.uncompressedSize} is not in 1..${this.ext.chunkSize}`, { offset: this.ext.chunkTableOffset + k * CHUNK_RECORD_SIZE });
    }
    if (checkBlock && Math.floor(rec.uncompressedOffset / EROFS_BLOCK_SIZE) !== c.blkaddr) {
      throw new FormatError('ERR_BAD_CHUNK_INDEX', `Cannot map chunk ${c.chunkIndex} of blob ${c.blobIndex}: index block ${c.blkaddr} disagrees with the chunk table's offset ${rec.uncompressedOffset}`);
    }
    return rec;
  }

  /** The chunk-table record of chunk `index` of blob `blobIndex`, or undefined when absent. */
  chunkRecordByIndex(blobIndex: number, index: number): ChunkRecord | undefined {
    const blob = this.blobs[blobIndex];
    if (!blob || index < 0 || index >= blob.entry.chunkCount) return undefined;
    try {
      return this.chunkRecord({ blobIndex, chunkIndex: index, blkaddr: -1 }, false);
    } catch {
      return undefined;
    }
  }

  /** nids listed in the prefetch table. */
  prefetchNids(): number[] {
    if (this.ext.prefetchTableSize === 0) return [];
    const view = viewOf(this.source.read(this.ext.prefetchTableOffset, this.ext.prefetchTableSize));
    const out: number[] = [];
    for (let k = 0; k < this.ext.prefetchTableSize; k += 4) out.push(view.getUint32(k, true));
    return out;
  }

  /** Release the source. */
  close(): void {
    this.source.close();
  }
}
