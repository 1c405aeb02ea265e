/**
 * The blobs of a RAFS image as flat files for the kernel's EROFS (the `erofs` fs driver): one
 * read-only file per blob, named by its index in the blob table, holding the blob's *uncompressed*
 * chunks at their uncompressed offsets — the layout the bootstrap's chunk indexes address
 * (`blkaddr` = uncompressed offset / 4096) and the layout of the blob cache's data file. Gaps
 * between chunks (4 KiB alignment) read as zeros.
 *
 * A READ maps its byte range to the chunks it covers (binary search over the chunks'
 * uncompressed offsets, which increase with the chunk index) and asks the blob cache for them, so
 * data is fetched on demand, shared with prefetch, digest-checked, and a bad chunk is EIO.
 * @module
 */
import { S_IFDIR, S_IFREG } from '../format/v6/constants.js';
import type { ChunkRecord } from '../format/v6/chunk-record.js';
import type { RafsImage } from '../image/rafs-image.js';
import type { CachedBlob } from '../storage/blob-cache.js';
import {
  ERRNO, FuseError, type Attr, type DirEntry, type Entry, type FileSystem, type OpenResult, type StatFs,
} from '../fuse/file-system.js';
import { errnoOf } from './rafs-fs.js';
import type { AccessTrace } from './access-trace.js';
import type { FirstReadLatency } from './first-read-latency.js';
import { performance } from 'node:perf_hooks';

const ROOT = 1;
const TIMEOUT = 3600;
const DT_DIR = 4;
const DT_REG = 8;
const PAGE_ZEROS = new Uint8Array(4096);
/** Page-cache stores running at once (see pushFetchedData). */
const STORES_IN_FLIGHT = 8;
/** Largest page-cache store in one notification. */
const STORE_MAX = 4 << 20;

interface BlobFile {
  index: number;
  size: number;
  /** Chunks the bootstrap addresses, by uncompressed offset (built on first read). */
  starts: { starts: Float64Array; indexes: Uint32Array } | undefined;
}

/** FileSystem with a root directory holding one file per blob of `image`. */
export class BlobDeviceFs implements FileSystem {
  readonly #image: RafsImage;
  readonly #blobs: readonly CachedBlob[];
  readonly #files: BlobFile[];
  readonly #mtime = Math.floor(Date.now() / 1000);
  /** READ requests and bytes answered (for metrics). */
  readonly stats = { reads: 0, bytes: 0, stores: 0, storeFailures: 0, storesSkipped: 0, storedBytes: 0 };

  readonly #trace: AccessTrace | undefined;
  readonly #latency: FirstReadLatency | undefined;

  /**
   * `trace`: where the blob ranges read are recorded (access_trace); `latency`: where the time of
   * every READ is counted (what reaches the daemon is what the page cache did not have).
   */
  constructor(image: RafsImage, blobs: readonly CachedBlob[], trace?: AccessTrace, latency?: FirstReadLatency) {
    this.#image = image;
    this.#blobs = blobs;
    this.#trace = trace;
    this.#latency = latency;
    this.#files = image.blobs.map((b) => ({ index: b.index, size: b.entry.uncompressedSize, starts: undefined }));
  }

  /** File name of blob `index` under the mount. */
  static fileName(index: number): string {
    return String(index);
  }

  #attr(nodeid: number): Attr {
    const f = nodeid === ROOT ? undefined : this.#files[nodeid - 2];
    if (nodeid !== ROOT && !f) throw new FuseError(ERRNO.ENOENT, `no blob file with node ${nodeid}`);
    const size = f ? f.size : 0;
    return {
      ino: nodeid, size, blocks: Math.ceil(size / 512), atime: this.#mtime, atimeNsec: 0, mtime: this.#mtime, mtimeNsec: 0,
      ctime: this.#mtime, ctimeNsec: 0, mode: f ? S_IFREG | 0o444 : S_IFDIR | 0o555, nlink: f ? 1 : 2,
      uid: 0, gid: 0, rdev: 0, blksize: 4096,
    };
  }

  /**
   * Push every chunk the cache fetches into the kernel's page cache of its blob file (through
   * `store`, FUSE_NOTIFY_STORE), so that the loop devices read prefetched data without a READ
   * round trip. Chunks decoded in the same turn of the event loop go together: runs of adjacent
   * chunks become one store, with the zeros between them (4 KiB alignment) and up to the next
   * page boundary, so that whole pages become up to date. Returns the function that stops it.
   */
  pushFetchedData(store: (nodeid: number, offset: number, data: readonly Uint8Array[]) => Promise<boolean>): () => void {
    const pending = new Map<number, Array<{ off: number; data: Uint8Array }>>();
    let scheduled = false;
    // Each store holds a threadpool thread while the kernel waits for page locks, which READs
    // (served through the same pool) release: so only a few at a time; the rest are skipped,
    // which costs nothing but a READ later.
    let storing = 0;
    const flush = (): void => {
      scheduled = false;
      for (const [index, list] of pending) {
        const f = this.#files[index] as BlobFile;
        list.sort((a, b) => a.off - b.off);
        let run: { start: number; end: number; parts: Uint8Array[] } | undefined;
        const send = (): void => {
          if (!run) return;
          const end = Math.min(f.size, Math.ceil(run.end / 4096) * 4096);
          if (end > run.end) run.parts.push(PAGE_ZEROS.subarray(0, end - run.end));
          if (storing < STORES_IN_FLIGHT) {
            storing++;
            const bytes = end - run.start;
            void store(index + 2, run.start, run.parts).then((ok) => {
              if (ok) { this.stats.stores++; this.stats.storedBytes += bytes; } else this.stats.storeFailures++;
            }).finally(() => { storing--; });
          } else {
            this.stats.storesSkipped++;
          }
          run = undefined;
        };
        for (const c of list) {
          const gap = run ? c.off - run.end : -1;
          if (run && gap >= 0 && gap < PAGE_ZEROS.length && run.end - run.start < STORE_MAX) {
            if (gap > 0) run.parts.push(PAGE_ZEROS.subarray(0, gap));
            run.parts.push(c.data);
            run.end = c.off + c.data.length;
          } else {
            send();
            run = { start: c.off, end: c.off + c.data.length, parts: [c.data] };
          }
        }
        send();
      }
      pending.clear();
    };
    const stops = this.#files.map((f) => (this.#blobs[f.index] as CachedBlob).onData((rec, data) => {
      let list = pending.get(f.index);
      if (!list) pending.set(f.index, (list = []));
      list.push({ off: rec.uncompressedOffset, data });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    }));
    return () => { for (const s of stops) s(); };
  }

  async lookup(parent: number, name: Uint8Array): Promise<Entry> {
    const s = Buffer.from(name).toString('utf8');
    const k = /^\d+$/.test(s) ? Number(s) : -1;
    if (parent !== ROOT || !this.#files[k]) throw new FuseError(ERRNO.ENOENT, `no blob file ${s}`);
    return { nodeid: k + 2, generation: 0, entryValid: TIMEOUT, attrValid: TIMEOUT, attr: this.#attr(k + 2) };
  }

  forget(): void { /* nothing per node */ }

  async getattr(nodeid: number): Promise<{ attr: Attr; attrValid: number }> {
    return { attr: this.#attr(nodeid), attrValid: TIMEOUT };
  }

  async readlink(): Promise<Uint8Array> {
    throw new FuseError(ERRNO.EINVAL, 'no symlinks here');
  }

  async open(nodeid: number, flags: number): Promise<OpenResult> {
    if ((flags & 3) !== 0) throw new FuseError(ERRNO.EROFS, 'read-only file system');
    if (nodeid === ROOT) throw new FuseError(ERRNO.EISDIR, 'is a directory');
    this.#attr(nodeid);
    return { fh: 0, keepCache: true };
  }

  /**
   * Uncompressed offsets and chunk indexes of the blob's chunks that the bootstrap has records
   * for, in chunk order. A merged image keeps no record of chunks that only files hidden by upper
   * layers used: nothing in the image addresses them, so they are simply not mapped (zeros).
   */
  #starts(f: BlobFile): { starts: Float64Array; indexes: Uint32Array } {
    if (f.starts) return f.starts;
    const s = this.#image.chunkStarts(f.index);
    for (let m = 1; m < s.starts.length; m++) {
      if ((s.starts[m] as number) <= (s.starts[m - 1] as number)) {
        throw new FuseError(ERRNO.EIO, `blob ${f.index}: chunk ${s.indexes[m]} starts at ${s.starts[m]}, not after the chunk before it (${s.starts[m - 1]}); the blob cannot be addressed by offset`);
      }
    }
    f.starts = s;
    return f.starts;
  }

  async read(nodeid: number, _fh: number, offset: number, size: number): Promise<Uint8Array[]> {
    try {
      const f = this.#files[nodeid - 2];
      if (!f) throw new FuseError(ERRNO.ENOENT, `no blob file with node ${nodeid}`);
      if (offset >= f.size || size === 0) return [];
      const end = Math.min(f.size, offset + size);
      this.#trace?.blob(f.index, offset, end - offset);
      const t0 = performance.now();
      const { starts, indexes } = this.#starts(f);
      // Last chunk starting at or before `offset`.
      let lo = 0;
      let hi = starts.length - 1;
      let first = 0;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if ((starts[mid] as number) <= offset) { first = mid; lo = mid + 1; } else hi = mid - 1;
      }
      const recs: ChunkRecord[] = [];
      for (let k = first; k < starts.length && (starts[k] as number) < end; k++) {
        const rec = this.#image.chunkRecordByIndex(f.index, indexes[k] as number) as ChunkRecord;
        if (rec.uncompressedOffset + rec.uncompressedSize > offset) recs.push(rec);
      }
      const datas = recs.length > 0 ? await (this.#blobs[f.index] as CachedBlob).readChunks(recs) : [];
      const out: Uint8Array[] = [];
      let pos = offset;
      recs.forEach((rec, n) => {
        const d = datas[n] as Uint8Array;
        if (rec.uncompressedOffset > pos) {
          out.push(new Uint8Array(Math.min(end, rec.uncompressedOffset) - pos));
          pos = Math.min(end, rec.uncompressedOffset);
        }
        if (pos >= end) return;
        const s = pos - rec.uncompressedOffset;
        const e = Math.min(end, rec.uncompressedOffset + d.length) - rec.uncompressedOffset;
        if (e > s) {
          out.push(d.subarray(s, e));
          pos += e - s;
        }
      });
      if (pos < end) out.push(new Uint8Array(end - pos));
      this.stats.reads++;
      this.stats.bytes += end - offset;
      this.#latency?.record(performance.now() - t0);
      return out;
    } catch (e) {
      throw e instanceof FuseError ? e : new FuseError(errnoOf(e), (e as Error).message);
    }
  }

  async release(): Promise<void> { /* stateless */ }

  async opendir(nodeid: number): Promise<OpenResult> {
    if (nodeid !== ROOT) throw new FuseError(ERRNO.ENOTDIR, 'not a directory');
    return { fh: 0, keepCache: true };
  }

  async readdir(nodeid: number, _fh: number, offset: number, plus: boolean): Promise<DirEntry[]> {
    if (nodeid !== ROOT) throw new FuseError(ERRNO.ENOTDIR, 'not a directory');
    const all: DirEntry[] = [
      { ino: ROOT, off: 1, type: DT_DIR, name: Buffer.from('.') },
      { ino: ROOT, off: 2, type: DT_DIR, name: Buffer.from('..') },
      ...this.#files.map((f, k) => ({ ino: k + 2, off: k + 3, type: DT_REG, name: Buffer.from(BlobDeviceFs.fileName(f.index)) })),
    ];
    return all.slice(offset).map((d) => (plus && d.ino !== ROOT ? { ...d, entry: { nodeid: d.ino, generation: 0, entryValid: TIMEOUT, attrValid: TIMEOUT, attr: this.#attr(d.ino) } } : d));
  }

  async releasedir(): Promise<void> { /* stateless */ }

  async statfs(): Promise<StatFs> {
    const blocks = Math.ceil(this.#files.reduce((s, f) => s + f.size, 0) / 4096);
    return { blocks, bfree: 0, bavail: 0, files: this.#files.length + 1, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  async getxattr(): Promise<Uint8Array> {
    throw new FuseError(ERRNO.ENODATA, 'no xattrs');
  }

  async listxattr(): Promise<string[]> {
    return [];
  }

  async access(): Promise<void> { /* root-owned, read-only: the kernel checks modes */ }
}
