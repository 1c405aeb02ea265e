/**
 * Writes a Nydus data blob: compressed, deduplicated chunks, then the blob meta (chunk-info array
 * and header), the chunk digest array, an optional inline bootstrap and the ToC, each section
 * followed by its tar header when tar headers are enabled. The blob id is the sha256 of the file.
 *
 * Prefetch ordering: chunks added with a prefetch rank (the data of files in the prefetch table,
 * when the source is a stream that cannot be reordered) are compressed at once but parked in a
 * spool file beside the blob, and written as one contiguous run after all other chunks when the
 * data section ends, ordered by rank (the order the workload opens its files) and then arrival.
 * They take their chunk index and offsets only then, so both stay increasing in chunk order as
 * the blob meta requires, and the start-up set of an image is fetched in a few large reads that
 * arrive in the order it is needed. A prefetch file whose chunk was already written among the
 * others gets a copy of it in the prefetch run rather than sharing it, so that the run has no
 * holes to fetch separately.
 * @module
 */
import { closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { alignUp } from '../util/bytes.js';
import { COMPRESSOR_CODE, compressChunk, zstdCompress, type Compressor } from '../util/compress.js';
import { DIGESTER_CODE, digest, type Digester } from '../util/digest.js';
import { CHUNK_FLAG_COMPRESSED, type ChunkRecord } from '../format/v6/chunk-record.js';
import { CHUNK_INFO_V1_SIZE, encodeChunkInfoV1 } from '../format/blob/chunk-info.js';
import { encodeCiHeader } from '../format/blob/ci-header.js';
import { encodeSectionHeader } from '../format/blob/section-header.js';
import {
  TOC_ENTRY_BLOB_DIGEST, TOC_ENTRY_BLOB_META, TOC_ENTRY_BLOB_META_HEADER, TOC_ENTRY_BLOB_RAW, TOC_ENTRY_BLOB_TOC,
  TOC_ENTRY_BOOTSTRAP, TOC_ENTRY_SIZE, TOC_FLAG_NONE, TOC_FLAG_ZSTD, TOC_FLAG_LZ4_BLOCK, encodeTocEntry, type TocEntry,
} from '../format/blob/toc-entry.js';
import {
  BLOB_FEATURE_ALIGNED, BLOB_FEATURE_CAP_TAR_TOC, BLOB_FEATURE_HAS_TAR_HEADER, BLOB_FEATURE_HAS_TOC,
  BLOB_FEATURE_INLINED_CHUNK_DIGEST, BLOB_FEATURE_INLINED_FS_META,
} from '../format/blob/features.js';
import type { BlobEntry } from '../format/v6/blob-entry.js';

/** Options of a blob. */
export interface BlobWriterOptions {
  /** Where to write (a temporary name; the caller renames). */
  path: string;
  blobIndex: number;
  chunkSize: number;
  compressor: Compressor;
  digester: Digester;
  /** Append the ToC and digest array (`--features blob-toc`). */
  toc: boolean;
  /** The bootstrap will be appended (`--blob-inline-meta`). */
  inlineMeta: boolean;
}

const WRITE_BUFFER = 4 << 20;

/** Statistics of what was written. */
export interface BlobStats {
  /** Chunks referenced by files (including duplicates). */
  chunkRefs: number;
  /** Distinct chunks stored. */
  chunks: number;
  /** Bytes of file data before dedup. */
  logicalBytes: number;
  /** Bytes of distinct chunk data, uncompressed. */
  uniqueBytes: number;
  /** Bytes of compressed chunk data. */
  compressedBytes: number;
}

/** Streams chunks into a blob file. */
export class BlobWriter {
  readonly options: BlobWriterOptions;
  readonly stats: BlobStats = { chunkRefs: 0, chunks: 0, logicalBytes: 0, uniqueBytes: 0, compressedBytes: 0 };
  readonly records: ChunkRecord[] = [];
  #fd: number;
  #hash: Hash = createHash('sha256');
  #pos = 0;
  #buf = Buffer.allocUnsafe(WRITE_BUFFER);
  #bufLen = 0;
  #uncompressedPos = 0;
  #dedup = new Map<string, ChunkRecord>();
  /** Chunk digests, 32 bytes each in chunk order: one allocation instead of one per chunk. */
  #digestArena = new Uint8Array(32 * 1024);
  #toc: TocEntry[] = [];
  #ci = { offset: 0, compressedSize: 0, uncompressedSize: 0, compressor: 0 };
  #dataSize = 0;
  #features = 0;
  #closed = false;
  /** Deferred chunks, in the order they were added, and where their data waits. */
  #deferred: Array<{ rec: ChunkRecord; spoolOffset: number; digest: Uint8Array; rank: number }> = [];
  #parked = new Map<ChunkRecord, { rank: number }>();
  #spool: { fd: number; path: string; pos: number } | undefined;

  constructor(options: BlobWriterOptions) {
    this.options = options;
    this.#fd = openSync(options.path, 'w', 0o644);
  }

  /** True when at least one chunk has been stored. */
  get hasData(): boolean {
    return this.records.length > 0 || this.#deferred.length > 0;
  }

  /**
   * Add one chunk of file data (at most chunkSize bytes); returns its (possibly shared) record.
   * With a `prefetchRank` a new chunk is placed after all others (see the module comment): its
   * index and offsets are final only after {@link finishData}.
   */
  addChunk(data: Uint8Array, fileOffset: number, prefetchRank?: number): ChunkRecord {
    const d = digest(this.options.digester, data);
    const key = Buffer.from(d.buffer, d.byteOffset, 32).toString('latin1');
    this.stats.chunkRefs++;
    this.stats.logicalBytes += data.length;
    const hit = this.#dedup.get(key);
    // A prefetch file does not share a chunk already written among the others: it gets its own
    // copy in the prefetch run, which stays one contiguous range (a few large fetches).
    if (hit && hit.uncompressedSize === data.length && (prefetchRank === undefined || hit.index < 0)) {
      // A parked chunk wanted earlier by another prefetch file moves up to that file's place.
      const parked = hit.index < 0 && prefetchRank !== undefined ? this.#parked.get(hit) : undefined;
      if (parked && prefetchRank !== undefined && prefetchRank < parked.rank) parked.rank = prefetchRank;
      return hit;
    }
    const c = compressChunk(this.options.compressor, data);
    if (prefetchRank !== undefined) return this.#park(key, Uint8Array.from(d), c.data, c.compressed, data.length, fileOffset, prefetchRank);
    const rec = this.#newRecord(d, c.data.length, c.compressed, data.length, fileOffset);
    this.#write(c.data);
    this.#uncompressedPos += alignUp(data.length, 4096);
    this.records.push(rec);
    this.#dedup.set(key, rec);
    this.stats.chunks++;
    this.stats.uniqueBytes += data.length;
    this.stats.compressedBytes += c.data.length;
    return rec;
  }

  /**
   * Add one chunk as it is already stored elsewhere (`stored` is the chunk compressed with this
   * blob's compressor when `compressed`, else the raw data) whose uncompressed data of `size`
   * bytes has digest `d`; the caller has verified `d`. A chunk with the same digest already in
   * this blob is shared. Used to copy chunks between blobs without compressing them again.
   */
  addStoredChunk(stored: Uint8Array, compressed: boolean, size: number, d: Uint8Array, fileOffset: number): ChunkRecord {
    const key = Buffer.from(d.buffer, d.byteOffset, 32).toString('latin1');
    this.stats.chunkRefs++;
    this.stats.logicalBytes += size;
    const hit = this.#dedup.get(key);
    if (hit && hit.uncompressedSize === size) return hit;
    const rec = this.#newRecord(d, stored.length, compressed, size, fileOffset);
    this.#write(stored);
    this.#uncompressedPos += alignUp(size, 4096);
    this.records.push(rec);
    this.#dedup.set(key, rec);
    this.stats.chunks++;
    this.stats.uniqueBytes += size;
    this.stats.compressedBytes += stored.length;
    return rec;
  }

  /** Keep a deferred chunk's compressed data in the spool; its record is placed by #placeDeferred. */
  #park(key: string, d: Uint8Array, stored: Uint8Array, compressed: boolean, size: number, fileOffset: number, rank: number): ChunkRecord {
    if (!this.#spool) {
      const path = `${this.options.path}.prefetch-spool`;
      this.#spool = { fd: openSync(path, 'w+', 0o600), path, pos: 0 };
    }
    const sp = this.#spool;
    const spoolOffset = sp.pos;
    for (let off = 0; off < stored.length;) off += writeSync(sp.fd, stored, off, stored.length - off, spoolOffset + off);
    sp.pos += stored.length;
    const rec: ChunkRecord = {
      digest: d, blobIndex: this.options.blobIndex, flags: compressed ? CHUNK_FLAG_COMPRESSED : 0,
      compressedSize: stored.length, uncompressedSize: size, compressedOffset: -1, uncompressedOffset: -1, fileOffset, index: -1, crc32: 0,
    };
    const entry = { rec, spoolOffset, digest: d, rank };
    this.#deferred.push(entry);
    this.#parked.set(rec, entry);
    this.#dedup.set(key, rec);
    this.stats.chunks++;
    this.stats.uniqueBytes += size;
    this.stats.compressedBytes += stored.length;
    return rec;
  }

  /** Write the deferred chunks after the others, giving each its index and offsets. */
  #placeDeferred(): void {
    const sp = this.#spool;
    if (!sp) return;
    let buf = Buffer.allocUnsafe(this.options.chunkSize + 4096);
    // Array.prototype.sort is stable: equal ranks keep their arrival (file offset) order.
    const order = [...this.#deferred].sort((a, b) => a.rank - b.rank);
    for (const { rec, spoolOffset, digest: d } of order) {
      if (buf.length < rec.compressedSize) buf = Buffer.allocUnsafe(rec.compressedSize);
      for (let got = 0; got < rec.compressedSize;) {
        const n = readSync(sp.fd, buf, got, rec.compressedSize - got, spoolOffset + got);
        if (n === 0) throw new Error(`prefetch spool ${sp.path} is short at offset ${spoolOffset + got}`);
        got += n;
      }
      const placed = this.#newRecord(d, rec.compressedSize, (rec.flags & CHUNK_FLAG_COMPRESSED) !== 0, rec.uncompressedSize, rec.fileOffset);
      // Files already hold `rec`: give it the placement rather than replacing it.
      Object.assign(rec, { digest: placed.digest, compressedOffset: placed.compressedOffset, uncompressedOffset: placed.uncompressedOffset, index: placed.index });
      this.#write(buf.subarray(0, rec.compressedSize));
      this.#uncompressedPos += alignUp(rec.uncompressedSize, 4096);
      this.records.push(rec);
    }
    this.#deferred = [];
    this.#parked.clear();
    this.#dropSpool();
  }

  #dropSpool(): void {
    const sp = this.#spool;
    if (!sp) return;
    this.#spool = undefined;
    try { closeSync(sp.fd); } catch { /* already closed */ }
    try { unlinkSync(sp.path); } catch { /* already gone */ }
  }

  /** A record for the next chunk index at the current positions, its digest kept in the arena. */
  #newRecord(d: Uint8Array, compressedSize: number, compressed: boolean, size: number, fileOffset: number): ChunkRecord {
    const n = this.records.length;
    if ((n + 1) * 32 > this.#digestArena.length) {
      const grown = new Uint8Array(this.#digestArena.length * 2);
      grown.set(this.#digestArena);
      this.#digestArena = grown;
      // Re-point existing records at the new arena.
      this.records.forEach((r, k) => { r.digest = grown.subarray(k * 32, k * 32 + 32); });
    }
    this.#digestArena.set(d, n * 32);
    return {
      digest: this.#digestArena.subarray(n * 32, n * 32 + 32),
      blobIndex: this.options.blobIndex,
      flags: compressed ? CHUNK_FLAG_COMPRESSED : 0,
      compressedSize,
      uncompressedSize: size,
      compressedOffset: this.#pos,
      uncompressedOffset: this.#uncompressedPos,
      fileOffset,
      index: n,
      crc32: 0,
    };
  }

  #write(data: Uint8Array): void {
    this.#hash.update(data);
    this.#pos += data.length;
    if (data.length >= WRITE_BUFFER) {
      this.#flush();
      writeSync(this.#fd, data);
      return;
    }
    if (this.#bufLen + data.length > WRITE_BUFFER) this.#flush();
    this.#buf.set(data, this.#bufLen);
    this.#bufLen += data.length;
  }

  #flush(): void {
    let off = 0;
    while (off < this.#bufLen) off += writeSync(this.#fd, this.#buf, off, this.#bufLen - off);
    this.#bufLen = 0;
  }

  get #tarHeaders(): boolean {
    return this.options.toc || this.options.inlineMeta;
  }

  #section(name: string, size: number): Uint8Array {
    const h = encodeSectionHeader(name, size);
    this.#write(h);
    return h;
  }

  #tocEntry(name: string, flags: number, content: Uint8Array | Uint8Array[] , offset: number, compressedSize: number, uncompressedSize: number): void {
    const h = createHash('sha256');
    for (const part of Array.isArray(content) ? content : [content]) h.update(part);
    this.#toc.push({ flags, name, digest: new Uint8Array(h.digest()), compressedOffset: offset, compressedSize, uncompressedSize });
  }

  /**
   * Write the sections that follow the chunk data (image.blob header, blob meta, digest array).
   * Returns the blob table entry as it stands before any inline bootstrap.
   */
  finishData(): BlobEntry {
    const o = this.options;
    this.#placeDeferred();
    this.#dataSize = this.#pos;
    this.#features = BLOB_FEATURE_ALIGNED | BLOB_FEATURE_CAP_TAR_TOC;
    if (this.#tarHeaders) {
      this.#features |= BLOB_FEATURE_HAS_TAR_HEADER;
      // Digest of the data section covers the data and its header, as Nydus computes it.
      const dataHash = this.#hash.copy();
      const hdr = encodeSectionHeader(TOC_ENTRY_BLOB_RAW, this.#dataSize);
      dataHash.update(hdr);
      this.#write(hdr);
      if (o.toc) {
        this.#toc.push({ flags: TOC_FLAG_NONE, name: TOC_ENTRY_BLOB_RAW, digest: new Uint8Array(dataHash.digest()), compressedOffset: 0, compressedSize: this.#dataSize, uncompressedSize: this.#uncompressedPos });
      }
    }
    if (o.toc) this.#features |= BLOB_FEATURE_HAS_TOC;
    if (o.inlineMeta) this.#features |= BLOB_FEATURE_INLINED_FS_META;
    if (o.toc && this.records.length > 0) this.#features |= BLOB_FEATURE_INLINED_CHUNK_DIGEST;
    if (this.records.length > 0) {
      const ci = new Uint8Array(this.records.length * CHUNK_INFO_V1_SIZE);
      const view = new DataView(ci.buffer);
      this.records.forEach((r, k) => encodeChunkInfoV1({
        compressedOffset: r.compressedOffset, compressedSize: r.compressedSize, uncompressedOffset: r.uncompressedOffset,
        uncompressedSize: r.uncompressedSize, compressed: (r.flags & CHUNK_FLAG_COMPRESSED) !== 0,
      }, view, k * CHUNK_INFO_V1_SIZE));
      let stored: Uint8Array = ci;
      let ciCompressor: Compressor = 'none';
      if (o.compressor !== 'none') {
        const c = compressChunk(o.compressor, ci);
        if (c.compressed) { stored = c.data; ciCompressor = o.compressor; }
      }
      const ciOffset = this.#pos;
      const header = encodeCiHeader({
        features: this.#features, ciCompressor: COMPRESSOR_CODE[ciCompressor], ciEntries: this.records.length, ciOffset,
        ciCompressedSize: stored.length, ciUncompressedSize: ci.length, zranOffset: 0, zranSize: 0, zranCount: 0,
      });
      this.#write(stored);
      this.#write(header);
      this.#ci = { offset: ciOffset, compressedSize: stored.length, uncompressedSize: ci.length, compressor: COMPRESSOR_CODE[ciCompressor] };
      if (this.#tarHeaders) this.#section(TOC_ENTRY_BLOB_META, stored.length + header.length);
      if (o.toc) {
        const flag = ciCompressor === 'zstd' ? TOC_FLAG_ZSTD : ciCompressor === 'lz4_block' ? TOC_FLAG_LZ4_BLOCK : TOC_FLAG_NONE;
        this.#tocEntry(TOC_ENTRY_BLOB_META, flag, ci, ciOffset, stored.length, ci.length);
        this.#tocEntry(TOC_ENTRY_BLOB_META_HEADER, TOC_FLAG_NONE, header, ciOffset + stored.length, header.length, header.length);
        const digests = this.#digestArena.slice(0, this.records.length * 32);
        const off = this.#pos;
        this.#write(digests);
        this.#section(TOC_ENTRY_BLOB_DIGEST, digests.length);
        this.#tocEntry(TOC_ENTRY_BLOB_DIGEST, TOC_FLAG_NONE, digests, off, digests.length, digests.length);
      }
    }
    return this.entry('x'.repeat(64));
  }

  /** Append the bootstrap (zstd-compressed with a ToC, raw without). */
  appendBootstrap(bootstrap: Uint8Array): void {
    const off = this.#pos;
    let stored = bootstrap;
    let flag = TOC_FLAG_NONE;
    if (this.options.toc) {
      const z = zstdCompress(bootstrap);
      if (z.length < bootstrap.length) { stored = z; flag = TOC_FLAG_ZSTD; }
    }
    this.#write(stored);
    this.#section(TOC_ENTRY_BOOTSTRAP, stored.length);
    if (this.options.toc) this.#tocEntry(TOC_ENTRY_BOOTSTRAP, flag, bootstrap, off, stored.length, bootstrap.length);
  }

  /** Write the ToC, close the file, and return the final blob table entry (id = sha256 of the file). */
  finalize(): BlobEntry {
    let tocSize = 0;
    let tocDigest = new Uint8Array(32);
    if (this.options.toc) {
      const data = new Uint8Array(this.#toc.length * TOC_ENTRY_SIZE);
      const view = new DataView(data.buffer);
      this.#toc.forEach((e, k) => encodeTocEntry(e, view, k * TOC_ENTRY_SIZE));
      this.#write(data);
      const hdr = this.#section(TOC_ENTRY_BLOB_TOC, data.length);
      tocDigest = new Uint8Array(createHash('sha256').update(data).update(hdr).digest());
      tocSize = data.length + hdr.length;
    }
    this.#flush();
    closeSync(this.#fd);
    this.#closed = true;
    const id = this.#hash.digest('hex');
    return { ...this.entry(id), blobTocSize: tocSize, blobTocDigest: tocDigest };
  }

  /** Close without finishing (on failure). */
  abort(): void {
    this.#dropSpool();
    if (!this.#closed) {
      this.#closed = true;
      try { closeSync(this.#fd); } catch { /* already closed */ }
    }
  }

  /** Size written so far. */
  get position(): number {
    return this.#pos;
  }

  /** The blob table entry with `blobId` and the current sizes. */
  entry(blobId: string): BlobEntry {
    const o = this.options;
    return {
      blobId, blobIndex: o.blobIndex, chunkSize: o.chunkSize, chunkCount: this.records.length,
      compressionAlgo: COMPRESSOR_CODE[o.compressor], digestAlgo: DIGESTER_CODE[o.digester], features: this.#features >>> 0,
      compressedSize: this.#pos, uncompressedSize: this.#uncompressedPos, blobTocSize: 0,
      ciCompressor: this.#ci.compressor, ciOffset: this.#ci.offset, ciCompressedSize: this.#ci.compressedSize,
      ciUncompressedSize: this.#ci.uncompressedSize, blobTocDigest: new Uint8Array(32), blobMetaDigest: new Uint8Array(32),
      blobMetaSize: 0, cipherIv: new Uint8Array(8), cipherAlgo: 0,
    };
  }
}
