/**
 * `nydus-image optimize`: give an existing image a new prefetch table and one new blob holding
 * copies of the listed files' chunks in list order, without rebuilding it. The listed files'
 * chunk indexes point into the new blob, so a container's start-up set arrives in one or a few
 * large reads in the order it is needed; every other blob stays as it is, with its blob table
 * entry, and every other file keeps its chunks.
 *
 * Chunks are copied as they are stored (compression is per chunk), each decompressed and checked
 * against its digest on the way; only a chunk whose blob uses another compressor than the new
 * blob is compressed again. The chunk bytes come through a reader callback (a blob directory, a
 * registry's ranged reads): the chunks of each blob are read in offset order, contiguous chunks
 * merged into one read, and parked in a spool file until they are written in list order.
 * @module
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync, rmdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../util/errors.js';
import { TempFiles } from '../util/atomic-file.js';
import { isWritableCompressor, type Compressor } from '../util/compress.js';
import { toHex } from '../util/bytes.js';
import { mapBounded } from '../util/map-bounded.js';
import { S_IFMT, S_IFREG } from '../format/v6/constants.js';
import { CHUNK_FLAG_COMPRESSED, type ChunkRecord } from '../format/v6/chunk-record.js';
import type { BlobEntry } from '../format/v6/blob-entry.js';
import { RafsImage, type ImageBlob } from '../image/rafs-image.js';
import { fileSource, type ByteSource } from '../image/byte-source.js';
import { decodeChunk } from '../blob/chunk-reader.js';
import { BlobWriter } from './blob-writer.js';
import { writeBootstrap } from './bootstrap-writer.js';
import { loadImageTree } from './load-image.js';
import { lookupPath, type BuildNode, type FileChunk } from './build-node.js';

/** Reads `length` stored bytes at `offset` of `blob` (exactly that many, or throws). */
export type BlobRangeReader = (blob: ImageBlob, offset: number, length: number) => Promise<Uint8Array>;

/** Options of an optimize. */
export interface OptimizeOptions {
  /** The image's bootstrap. */
  bootstrap: string;
  /** Where the new bootstrap goes. */
  outputBootstrap: string;
  /** Directory the new blob is written into, named by its id (sha256). */
  outputBlobDir: string;
  /** Absolute paths in the order the workload reads them (see prefetch-list.ts). */
  prefetch: readonly string[];
  /** Where the existing chunks come from. */
  readBlob: BlobRangeReader;
  /** Largest single read of contiguous chunks (default 8 MiB). */
  maxReadBytes?: number;
  /** Reads in flight at once (default 4). */
  concurrency?: number;
  /** Recoverable oddities (listed paths the image lacks). */
  onWarn?: (code: string, message: string) => void;
}

/** What an optimize produced. */
export interface OptimizeResult {
  bootstrap: string;
  /** Id of the new blob; undefined when no listed file has data (then no blob is written). */
  blobId?: string;
  blobPath?: string;
  blobSize: number;
  /** Blob ids of the new bootstrap, in blob table order (the new blob last). */
  blobs: string[];
  /** Paths of the prefetch table, in order. */
  prefetch: string[];
  /** Listed paths the image lacks (skipped). */
  missing: string[];
  /** Distinct chunks copied into the new blob. */
  chunks: number;
  /** Stored bytes read, and the reads that fetched them. */
  bytesRead: number;
  reads: number;
}

const DEFAULT_MAX_READ = 8 << 20;
const MAX_BLOBS = 254;

/** A reader of the blobs in `dir` (`<dir>/<blob id>`); close() releases the open files. */
export function blobDirReader(dir: string): { read: BlobRangeReader; close(): void } {
  const open = new Map<string, ByteSource>();
  return {
    async read(blob, offset, length) {
      let s = open.get(blob.slot.blobId);
      if (!s) {
        const path = join(dir, blob.slot.blobId);
        if (!existsSync(path)) throw new FormatError('ERR_BLOB_MISSING', `Cannot read blob ${blob.slot.blobId} (blob table entry ${blob.index}): ${path} does not exist`, { path });
        s = fileSource(path);
        open.set(blob.slot.blobId, s);
      }
      return s.read(offset, length);
    },
    close() {
      for (const s of open.values()) s.close();
      open.clear();
    },
  };
}

/** One chunk to copy: its record in the old blob and where it waits in the spool. */
interface Wanted {
  rec: ChunkRecord;
  blob: ImageBlob;
  spoolOffset: number;
}

/** Reads of contiguous chunks of one blob, in offset order, each at most `max` bytes. */
function planReads(wanted: readonly Wanted[], max: number): Wanted[][] {
  const byBlob = new Map<number, Wanted[]>();
  for (const w of wanted) {
    const list = byBlob.get(w.blob.index) ?? [];
    list.push(w);
    byBlob.set(w.blob.index, list);
  }
  const reads: Wanted[][] = [];
  for (const list of byBlob.values()) {
    list.sort((a, b) => a.rec.compressedOffset - b.rec.compressedOffset);
    let cur: Wanted[] = [];
    let end = -1;
    let size = 0;
    for (const w of list) {
      const r = w.rec;
      if (cur.length > 0 && (r.compressedOffset !== end || size + r.compressedSize > max)) {
        reads.push(cur);
        cur = [];
        size = 0;
      }
      cur.push(w);
      end = r.compressedOffset + r.compressedSize;
      size += r.compressedSize;
    }
    if (cur.length > 0) reads.push(cur);
  }
  return reads;
}

function writeAll(fd: number, data: Uint8Array, pos: number): void {
  for (let off = 0; off < data.length;) off += writeSync(fd, data, off, data.length - off, pos + off);
}

function readAll(fd: number, buf: Buffer, len: number, pos: number, what: string): Buffer {
  for (let got = 0; got < len;) {
    const n = readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) throw new FormatError('ERR_TRUNCATED', `Cannot read ${what}: it ended at offset ${pos + got}`, { offset: pos + got });
    got += n;
  }
  return buf.subarray(0, len);
}

/** Optimize an image. Outputs appear under their final names only when everything succeeded. */
export async function optimize(o: OptimizeOptions): Promise<OptimizeResult> {
  const image = new RafsImage(fileSource(o.bootstrap));
  const temps = new TempFiles();
  const createdDir = !existsSync(o.outputBlobDir);
  let writer: BlobWriter | undefined;
  let spool: { fd: number; path: string } | undefined;
  try {
    if (image.blobs.length >= MAX_BLOBS) throw new FormatError('ERR_TOO_MANY_BLOBS', `Cannot optimize ${o.bootstrap}: it already references ${image.blobs.length} blobs (at most ${MAX_BLOBS - 1} leave room for one more)`, { path: o.bootstrap });
    const root = loadImageTree(image, image.blobs.map((b) => b.index));
    const blobs: BlobEntry[] = image.blobs.map((b) => ({ ...b.entry, blobId: b.slot.blobId, blobIndex: b.index }));

    // The prefetch table, in list order; listed regular files in the order their data is wanted.
    const prefetch: BuildNode[] = [];
    const listed = new Set<BuildNode>();
    const paths: string[] = [];
    const missing: string[] = [];
    const files: BuildNode[] = [];
    for (const p of o.prefetch) {
      const node = lookupPath(root, p);
      if (!node) { missing.push(p); continue; }
      if (listed.has(node)) continue;
      listed.add(node);
      prefetch.push(node);
      paths.push(p);
      if ((node.mode & S_IFMT) === S_IFREG && (node.chunks?.length ?? 0) > 0) files.push(node);
    }
    if (missing.length > 0) o.onWarn?.('WARN_PREFETCH_MISSING', `${missing.length} listed path(s) are not in the image and are skipped: ${missing.join(', ')}`);

    // Distinct chunks (by digest) in the order the listed files hold them.
    const wanted: Wanted[] = [];
    const byDigest = new Map<string, Wanted>();
    let spoolSize = 0;
    for (const f of files) {
      for (const c of f.chunks as FileChunk[]) {
        const key = `${toHex(c.record.digest)}:${c.record.uncompressedSize}`;
        if (byDigest.has(key)) continue;
        const blob = image.blobs[c.blobIndex] as ImageBlob;
        const w: Wanted = { rec: c.record, blob, spoolOffset: spoolSize };
        byDigest.set(key, w);
        wanted.push(w);
        spoolSize += c.record.compressedSize;
      }
    }

    let bytesRead = 0;
    let reads = 0;
    let entry: BlobEntry | undefined;
    let blobTemp: string | undefined;
    let newRecords = new Map<Wanted, ChunkRecord>();
    if (wanted.length > 0) {
      mkdirSync(o.outputBlobDir, { recursive: true });
      blobTemp = temps.for(join(o.outputBlobDir, 'blob'));
      const spoolPath = temps.for(join(o.outputBlobDir, 'spool'));
      spool = { fd: openSync(spoolPath, 'w+', 0o600), path: spoolPath };
      const sp = spool;
      // Fetch in blob order, verify each chunk, park its stored bytes at its place in list order.
      await mapBounded(planReads(wanted, o.maxReadBytes ?? DEFAULT_MAX_READ), o.concurrency ?? 4, async (group) => {
        const first = group[0] as Wanted;
        const last = group[group.length - 1] as Wanted;
        const start = first.rec.compressedOffset;
        const len = last.rec.compressedOffset + last.rec.compressedSize - start;
        const data = await o.readBlob(first.blob, start, len);
        if (data.length !== len) throw new FormatError('ERR_TRUNCATED', `Cannot read blob ${first.blob.slot.blobId}: ${data.length} bytes at ${start}, expected ${len}`, { offset: start });
        reads++;
        bytesRead += len;
        for (const w of group) {
          const stored = data.subarray(w.rec.compressedOffset - start, w.rec.compressedOffset - start + w.rec.compressedSize);
          decodeChunk(stored, w.rec, { compressor: w.blob.compressor, digester: w.blob.digester }, `blob ${w.blob.slot.blobId}`);
          writeAll(sp.fd, stored, w.spoolOffset);
        }
      });
      const compressor: Exclude<Compressor, 'gzip'> = isWritableCompressor(image.compressor) ? image.compressor : 'zstd';
      writer = new BlobWriter({
        path: blobTemp, blobIndex: blobs.length, chunkSize: image.ext.chunkSize, compressor, digester: image.digester, toc: true, inlineMeta: false,
      });
      let buf = Buffer.allocUnsafe(image.ext.chunkSize + 4096);
      for (const w of wanted) {
        const r = w.rec;
        if (buf.length < r.compressedSize) buf = Buffer.allocUnsafe(r.compressedSize);
        const stored = readAll(sp.fd, buf, r.compressedSize, w.spoolOffset, `spool ${sp.path}`);
        const compressed = (r.flags & CHUNK_FLAG_COMPRESSED) !== 0;
        const rec = !compressed || w.blob.compressor === compressor
          ? writer.addStoredChunk(stored, compressed, r.uncompressedSize, r.digest, r.fileOffset)
          : writer.addChunk(decodeChunk(stored, r, { compressor: w.blob.compressor, digester: w.blob.digester }, `blob ${w.blob.slot.blobId}`), r.fileOffset);
        newRecords.set(w, rec);
      }
      writer.finishData();
      entry = writer.finalize();
    }

    // Point the listed files' chunks at the copies.
    let blobIndex = blobs.length;
    if (entry) {
      const same = blobs.find((b) => b.blobId === entry?.blobId);
      if (same) {
        // The image already holds exactly this blob (optimized with this list before): use it.
        blobIndex = same.blobIndex;
        const existing = new Map<number, ChunkRecord>();
        for (const f of files) for (const c of f.chunks as FileChunk[]) if (c.blobIndex === blobIndex) existing.set(c.record.index, c.record);
        newRecords = new Map([...newRecords].map(([w, r]) => [w, existing.get(r.index) ?? { ...r, blobIndex }]));
      } else {
        blobs.push({ ...entry, blobIndex });
      }
    }
    for (const f of files) {
      f.chunks = (f.chunks as FileChunk[]).map((c) => {
        const w = byDigest.get(`${toHex(c.record.digest)}:${c.record.uncompressedSize}`) as Wanted;
        return { blobIndex, record: newRecords.get(w) as ChunkRecord };
      });
    }

    const bootTemp = temps.for(o.outputBootstrap);
    writeFileSync(bootTemp, writeBootstrap(root, { chunkSize: image.ext.chunkSize, compressor: image.compressor, digester: image.digester, blobs, prefetch }));
    const result: OptimizeResult = {
      bootstrap: o.outputBootstrap, blobSize: 0, blobs: blobs.map((b) => b.blobId), prefetch: paths, missing,
      chunks: wanted.length, bytesRead, reads,
    };
    if (entry && blobTemp && writer) {
      const blobPath = join(o.outputBlobDir, entry.blobId);
      temps.commit(blobTemp, blobPath);
      Object.assign(result, { blobId: entry.blobId, blobPath, blobSize: writer.position });
    }
    temps.commit(bootTemp, o.outputBootstrap);
    return result;
  } catch (e) {
    writer?.abort();
    temps.cleanup();
    if (createdDir) { try { rmdirSync(o.outputBlobDir); } catch { /* not empty or absent */ } }
    throw e;
  } finally {
    if (spool) { try { closeSync(spool.fd); } catch { /* closed */ } }
    temps.cleanup();
    image.close();
  }
}

