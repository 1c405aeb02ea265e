/**
 * The RAFS file system served over FUSE: every request is answered from the bootstrap (read
 * lazily through RafsImage) and file data from the blob cache, chunk by chunk. The only place
 * where errors become errnos.
 * @module
 */
import { NydusError } from '../util/errors.js';
import {
  EROFS_BLOCK_SIZE, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
} from '../format/v6/constants.js';
import type { ChunkRecord } from '../format/v6/chunk-record.js';
import type { InodeInfo, RafsImage } from '../image/rafs-image.js';
import type { ChunkIndex } from '../format/v6/chunk-index.js';
import type { CachedBlob } from '../storage/blob-cache.js';
import {
  ERRNO, FuseError, type Attr, type DirEntry, type Entry, type FileSystem, type OpenResult, type RequestContext, type StatFs,
} from '../fuse/file-system.js';
import { FsMetrics, type FopName } from './fs-metrics.js';
import type { AccessTrace } from './access-trace.js';
import type { FirstReadLatency } from './first-read-latency.js';
import { performance } from 'node:perf_hooks';

/** Options of a RAFS file system. */
export interface RafsFsOptions {
  image: RafsImage;
  /** The cached blob of each blob table entry, by index. */
  blobs: readonly CachedBlob[];
  metrics: FsMetrics;
  /** Where data reads are recorded (access_trace); lookups then keep names for its paths. */
  trace?: AccessTrace;
  /** Where the latency of each file's first read is counted. */
  firstRead?: FirstReadLatency;
  /**
   * `cold_read.sibling_files`: when a file of at most this many bytes misses the cache, the
   * missing chunks of the other files of at most this size in its directory that lie within the
   * request's reach in the same blob come in the same requests (undefined: off).
   */
  siblingMaxSize?: number;
  /** Serve xattrs (`enable_xattr`); when off, xattr requests answer ENOSYS as nydusd does. */
  enableXattr: boolean;
  /** Answer OPEN with ENOSYS so that the kernel stops sending OPEN/RELEASE (see open). */
  statelessOpen?: boolean;
  /** Seconds the kernel may cache entries and attributes (immutable image: long). */
  entryTimeout?: number;
  attrTimeout?: number;
  /** Owner reported when the image has no explicit uid/gid (nydusd: its own euid/egid). */
  defaultUid?: number;
  defaultGid?: number;
}

interface OpenFile {
  inode: InodeInfo;
  chunks: ChunkIndex[] | undefined;
}

const DEFAULT_TIMEOUT = 3600;
const READDIR_BATCH = 256;
/** Files whose chunk indexes are kept between READs (see #recentChunks). */
const RECENT_CHUNK_MAPS = 64;
/** Directories whose small files are remembered for sibling fetches. */
const SIBLING_DIRS = 64;
/** Directories with more entries than this are not looked through for siblings. */
const SIBLING_MAX_ENTRIES = 4096;
/** How far from a missing chunk (compressed bytes, each way) a sibling may lie. */
const SIBLING_REACH = 1 << 20;

/** The one-chunk small files of a directory, by blob. */
type Siblings = Map<number, ChunkRecord[]>;

/** Map any error to a positive errno (EIO unless it carries one). */
export function errnoOf(e: unknown): number {
  if (e instanceof FuseError) return e.errno;
  if (e instanceof NydusError && e.errno !== undefined) return e.errno;
  const n = (e as { errno?: unknown }).errno;
  return typeof n === 'number' && n > 0 ? n : ERRNO.EIO;
}

/** A FileSystem over one RAFS image. */
export class RafsFs implements FileSystem {
  readonly image: RafsImage;
  readonly metrics: FsMetrics;
  readonly #o: RafsFsOptions;
  readonly #files = new Map<number, OpenFile>();
  /**
   * Chunk indexes of recently read files, by nid: with stateless opens there is no open file to
   * keep them on, and a large file read in 128 KiB pieces would decode them on every READ.
   */
  readonly #recentChunks = new Map<number, ChunkIndex[]>();
  /** nid → parent nid and name, for paths in metrics (kept only when metrics need paths). */
  readonly #names = new Map<number, { parent: number; name: string }>();
  /** Small files of recently read directories (see #siblingsOf). */
  readonly #siblings = new Map<number, Siblings>();
  #nextFh = 1;
  readonly #entryTimeout: number;
  readonly #attrTimeout: number;

  constructor(options: RafsFsOptions) {
    this.#o = options;
    this.image = options.image;
    this.metrics = options.metrics;
    this.#entryTimeout = options.entryTimeout ?? DEFAULT_TIMEOUT;
    this.#attrTimeout = options.attrTimeout ?? DEFAULT_TIMEOUT;
    if (options.blobs.length !== options.image.blobs.length) {
      throw new RangeError(`Cannot serve image: ${options.blobs.length} cached blobs for ${options.image.blobs.length} blob table entries`);
    }
  }

  /** FUSE node id of a nid: the root is 1, others nid + 2. */
  nodeId(nid: number): number {
    return nid === this.image.rootNid ? 1 : nid + 2;
  }

  /** nid of a FUSE node id. */
  nid(nodeid: number): number {
    return nodeid === 1 ? this.image.rootNid : nodeid - 2;
  }

  #trackNames(): boolean {
    const o = this.metrics.options;
    return o.iostatsFiles || o.accessPattern || o.latestReadFiles;
  }

  /** The path of a nid when lookups have shown all of it, else undefined. */
  knownPath(nid: number): string | undefined {
    const p = this.pathOf(nid);
    return p.startsWith('/') ? p : undefined;
  }

  /** Path of a nid as far as lookups have shown it. */
  pathOf(nid: number): string {
    if (nid === this.image.rootNid) return '/';
    const parts: string[] = [];
    let cur = nid;
    for (let depth = 0; depth < 4096; depth++) {
      const e = this.#names.get(cur);
      if (!e) return parts.length === 0 ? `nid:${nid}` : `?/${parts.reverse().join('/')}`;
      parts.push(e.name);
      if (e.parent === this.image.rootNid) break;
      cur = e.parent;
    }
    return `/${parts.reverse().join('/')}`;
  }

  async #run<T>(op: FopName, fn: () => T | Promise<T>): Promise<T> {
    const t0 = process.hrtime.bigint();
    try {
      const r = await fn();
      this.metrics.op(op, t0, true);
      return r;
    } catch (e) {
      this.metrics.op(op, t0, false);
      if (e instanceof FuseError) throw e;
      throw new FuseError(errnoOf(e), e instanceof Error ? e.message : String(e));
    }
  }

  #inode(nodeid: number): InodeInfo {
    return this.image.inode(this.nid(nodeid));
  }

  /** Attributes of an inode. */
  attrOf(i: InodeInfo): Attr {
    const explicit = this.image.explicitUidGid;
    return {
      ino: i.nid, size: i.size, blocks: Math.ceil(i.size / 512),
      atime: i.mtime, atimeNsec: i.mtimeNsec, mtime: i.mtime, mtimeNsec: i.mtimeNsec, ctime: i.mtime, ctimeNsec: i.mtimeNsec,
      mode: i.mode, nlink: i.nlink,
      uid: explicit ? i.uid : (this.#o.defaultUid ?? 0), gid: explicit ? i.gid : (this.#o.defaultGid ?? 0),
      rdev: this.image.rdev(i), blksize: EROFS_BLOCK_SIZE,
    };
  }

  #entry(i: InodeInfo): Entry {
    return { nodeid: this.nodeId(i.nid), generation: 0, entryValid: this.#entryTimeout, attrValid: this.#attrTimeout, attr: this.attrOf(i) };
  }

  lookup(parent: number, name: Uint8Array): Promise<Entry> {
    return this.#run('lookup', () => {
      const dir = this.#inode(parent);
      if ((dir.mode & S_IFMT) !== S_IFDIR) throw new FuseError(ERRNO.ENOTDIR, 'not a directory');
      if (name.length > 255) throw new FuseError(ERRNO.ENAMETOOLONG, 'name too long');
      const d = this.image.lookup(dir, name);
      if (!d) throw new FuseError(ERRNO.ENOENT, 'no such entry');
      const child = this.image.inode(d.nid);
      if ((this.#o.trace || this.#trackNames()) && d.nid !== dir.nid) this.#names.set(d.nid, { parent: dir.nid, name: Buffer.from(name).toString('utf8') });
      return this.#entry(child);
    });
  }

  forget(): void {
    // Inodes are decoded on demand; nothing is pinned per lookup.
  }

  getattr(nodeid: number): Promise<{ attr: Attr; attrValid: number }> {
    return this.#run('getattr', () => ({ attr: this.attrOf(this.#inode(nodeid)), attrValid: this.#attrTimeout }));
  }

  readlink(nodeid: number): Promise<Uint8Array> {
    return this.#run('readlink', () => {
      const i = this.#inode(nodeid);
      if ((i.mode & S_IFMT) !== S_IFLNK) throw new FuseError(ERRNO.EINVAL, 'not a symlink');
      return this.image.readlink(i);
    });
  }

  /**
   * Files need no open state either. With `statelessOpen`, OPEN answers ENOSYS once checked:
   * the kernel (FUSE 7.23+) takes that as success, keeps the page cache, and sends no more OPEN
   * or RELEASE for the mount — two round trips saved on every file opened, which is a third of
   * the requests of a container start-up. READ then finds the inode by nodeid, and the metrics
   * count an open at each read from offset 0.
   */
  open(nodeid: number, flags: number): Promise<OpenResult> {
    const opened = this.#run('open', (): OpenResult | undefined => {
      if ((flags & 3) !== 0) throw new FuseError(ERRNO.EROFS, 'read-only file system');
      const i = this.#inode(nodeid);
      if ((i.mode & S_IFMT) === S_IFDIR) throw new FuseError(ERRNO.EISDIR, 'is a directory');
      if (this.#o.statelessOpen) return undefined;
      const fh = this.#nextFh++;
      this.#files.set(fh, { inode: i, chunks: undefined });
      this.metrics.open(i.nid, () => this.pathOf(i.nid));
      return { fh, keepCache: true };
    });
    // The ENOSYS of a stateless open is the protocol, not a failure: outside #run's error count.
    return opened.then((r) => {
      if (!r) throw new FuseError(ERRNO.ENOSYS, 'files are stateless');
      return r;
    });
  }

  read(nodeid: number, fh: number, offset: number, size: number): Promise<Uint8Array[]> {
    return this.#run('read', async () => {
      let f = this.#files.get(fh);
      if (!f) {
        f = { inode: this.#inode(nodeid), chunks: undefined };
        if (offset === 0) this.metrics.open(f.inode.nid, () => this.pathOf(f?.inode.nid ?? 0));
      }
      const i = f.inode;
      if ((i.mode & S_IFMT) !== S_IFREG) throw new FuseError(ERRNO.EINVAL, 'not a regular file');
      if (offset >= i.size || size === 0) return [];
      const end = Math.min(i.size, offset + size);
      // Recorded when asked for, not when answered: the trace keeps the order of the requests.
      this.#o.trace?.file(i.nid, offset, end - offset);
      const t0 = this.#o.firstRead?.first(i.nid) ? performance.now() : -1;
      f.chunks ??= this.#chunksOf(i);
      const cs = this.image.ext.chunkSize;
      const first = Math.floor(offset / cs);
      const last = Math.floor((end - 1) / cs);
      const want: Array<{ k: number; rec: ChunkRecord; blob: number }> = [];
      for (let k = first; k <= last; k++) {
        const c = f.chunks[k];
        if (!c) throw new FuseError(ERRNO.EIO, `chunk ${k} of nid ${i.nid} is missing`);
        want.push({ k, rec: this.image.chunkRecord(c), blob: c.blobIndex });
      }
      // One cache request per blob, in file order.
      const datas = new Map<number, Uint8Array>();
      const byBlob = new Map<number, Array<{ k: number; rec: ChunkRecord }>>();
      for (const w of want) {
        const list = byBlob.get(w.blob) ?? [];
        list.push(w);
        byBlob.set(w.blob, list);
      }
      const along = this.#alongWith(i, want);
      await Promise.all([...byBlob].map(async ([b, list]) => {
        const blob = this.#o.blobs[b] as CachedBlob;
        const extra = along?.get(b);
        const got = await blob.readChunks(list.map((x) => x.rec), undefined, extra ? { alongWith: extra } : {});
        list.forEach((x, n) => datas.set(x.k, got[n] as Uint8Array));
      }));
      const out: Uint8Array[] = [];
      for (let k = first; k <= last; k++) {
        const d = datas.get(k) as Uint8Array;
        const base = k * cs;
        const s = Math.max(offset, base) - base;
        const e = Math.min(end, base + d.length) - base;
        if (e < s) throw new FuseError(ERRNO.EIO, `chunk ${k} of nid ${i.nid} is shorter than the file says`);
        out.push(d.subarray(s, e));
      }
      this.metrics.read(i.nid, () => this.pathOf(i.nid), end - offset);
      if (t0 >= 0) this.#o.firstRead?.record(performance.now() - t0);
      return out;
    });
  }

  /**
   * For a small file whose chunk is missing: the small files of its directory near it in the same
   * blob, to fetch in the same requests (by blob index). Needs the file's directory, known from
   * the lookups that found it (names are kept when the access trace is on).
   */
  #alongWith(i: InodeInfo, want: ReadonlyArray<{ rec: ChunkRecord; blob: number }>): Siblings | undefined {
    const max = this.#o.siblingMaxSize;
    const w = want[0];
    if (max === undefined || want.length !== 1 || !w || i.size > max) return undefined;
    const blob = this.#o.blobs[w.blob] as CachedBlob;
    if (blob.isReady(w.rec.index)) return undefined;
    const parent = this.#names.get(i.nid)?.parent;
    if (parent === undefined) return undefined;
    const cands = (this.#siblingsOf(parent, max).get(w.blob) ?? []).filter((r) => r.index !== w.rec.index
      && Math.abs(r.compressedOffset - w.rec.compressedOffset) <= SIBLING_REACH);
    // Only the siblings that touch the missing chunk, directly or through each other, in the
    // blob: they come in the same request instead of requests of their own.
    const byStart = new Map(cands.map((r) => [r.compressedOffset, r]));
    const byEnd = new Map(cands.map((r) => [r.compressedOffset + r.compressedSize, r]));
    const near: ChunkRecord[] = [];
    for (let r = byEnd.get(w.rec.compressedOffset); r && near.length < 256; r = byEnd.get(r.compressedOffset)) near.push(r);
    for (let r = byStart.get(w.rec.compressedOffset + w.rec.compressedSize); r && near.length < 512; r = byStart.get(r.compressedOffset + r.compressedSize)) near.push(r);
    const missing = near.filter((r) => !blob.isReady(r.index));
    return missing.length > 0 ? new Map([[w.blob, missing]]) : undefined;
  }

  /** The one-chunk files of at most `max` bytes in directory `dirNid`, by blob (remembered for a few directories). */
  #siblingsOf(dirNid: number, max: number): Siblings {
    let s = this.#siblings.get(dirNid);
    if (s) return s;
    s = new Map();
    try {
      const dir = this.image.inode(dirNid);
      let n = 0;
      for (const d of this.image.dirents(dir)) {
        if (++n > SIBLING_MAX_ENTRIES) { s = new Map(); break; }
        if (d.fileType !== 1) continue;
        const f = this.image.inode(d.nid);
        if ((f.mode & S_IFMT) !== S_IFREG || f.size === 0 || f.size > max || f.size > this.image.ext.chunkSize) continue;
        const c = this.image.chunkIndexes(f)[0];
        if (!c) continue;
        const list = s.get(c.blobIndex) ?? [];
        list.push(this.image.chunkRecord(c));
        s.set(c.blobIndex, list);
      }
    } catch {
      s = new Map();
    }
    if (this.#siblings.size >= SIBLING_DIRS) {
      const oldest = this.#siblings.keys().next().value;
      if (oldest !== undefined) this.#siblings.delete(oldest);
    }
    this.#siblings.set(dirNid, s);
    return s;
  }

  #chunksOf(i: InodeInfo): ChunkIndex[] {
    let c = this.#recentChunks.get(i.nid);
    if (c) return c;
    c = this.image.chunkIndexes(i);
    if (this.#recentChunks.size >= RECENT_CHUNK_MAPS) {
      const oldest = this.#recentChunks.keys().next().value;
      if (oldest !== undefined) this.#recentChunks.delete(oldest);
    }
    this.#recentChunks.set(i.nid, c);
    return c;
  }

  release(_nodeid: number, fh: number): Promise<void> {
    return this.#run('release', () => { this.#files.delete(fh); });
  }

  /**
   * Directories need no open state: OPENDIR answers ENOSYS, so the kernel stops sending
   * OPENDIR/RELEASEDIR (two round trips per directory on every walk) and READDIR carries
   * positions that resume at their block.
   */
  opendir(nodeid: number): Promise<OpenResult> {
    return this.#run('opendir', () => {
      const i = this.#inode(nodeid);
      if ((i.mode & S_IFMT) !== S_IFDIR) throw new FuseError(ERRNO.ENOTDIR, 'not a directory');
      throw new FuseError(ERRNO.ENOSYS, 'directories are stateless');
    });
  }

  readdir(nodeid: number, _fh: number, offset: number, plus: boolean): Promise<DirEntry[]> {
    return this.#run(plus ? 'readdirplus' : 'readdir', () => {
      const dir = this.#inode(nodeid);
      const out: DirEntry[] = [];
      for (const e of this.image.direntsFrom(dir, offset, READDIR_BATCH)) {
        const isDot = (e.name.length === 1 && e.name[0] === 0x2e) || (e.name.length === 2 && e.name[0] === 0x2e && e.name[1] === 0x2e);
        const entry: DirEntry = { ino: e.nid, off: e.next, type: DT_OF_FT[e.fileType] ?? 0, name: e.name };
        if (plus && !isDot) {
          entry.entry = this.#entry(this.image.inode(e.nid));
          if (this.#o.trace || this.#trackNames()) this.#names.set(e.nid, { parent: dir.nid, name: Buffer.from(e.name).toString('utf8') });
        }
        out.push(entry);
      }
      return out;
    });
  }

  releasedir(): Promise<void> {
    return Promise.resolve();
  }

  statfs(): Promise<StatFs> {
    return this.#run('statfs', () => ({
      blocks: this.image.sb.blocks + this.image.source.size / EROFS_BLOCK_SIZE, bfree: 0, bavail: 0,
      files: this.image.sb.inos, ffree: 0, bsize: EROFS_BLOCK_SIZE, namelen: 255, frsize: EROFS_BLOCK_SIZE,
    }));
  }

  getxattr(nodeid: number, name: string): Promise<Uint8Array> {
    return this.#run('getxattr', () => {
      if (!this.#o.enableXattr) throw new FuseError(ERRNO.ENOSYS, 'xattrs are disabled (enable_xattr)');
      const x = this.image.xattrs(this.#inode(nodeid)).find((a) => a.name === name);
      if (!x) throw new FuseError(ERRNO.ENODATA, 'no such xattr');
      return x.value;
    });
  }

  listxattr(nodeid: number): Promise<string[]> {
    return this.#run('listxattr', () => {
      if (!this.#o.enableXattr) throw new FuseError(ERRNO.ENOSYS, 'xattrs are disabled (enable_xattr)');
      return this.image.xattrs(this.#inode(nodeid)).map((x) => x.name);
    });
  }

  access(nodeid: number, mask: number, ctx: RequestContext): Promise<void> {
    return this.#run('access', () => {
      if ((mask & 2) !== 0) throw new FuseError(ERRNO.EROFS, 'read-only file system');
      void ctx;
      this.#inode(nodeid);
    });
  }

  destroy(): void {
    this.#files.clear();
  }
}

/** EROFS dirent file type → DT_* value. */
const DT_OF_FT: Record<number, number> = { 1: 8, 2: 4, 3: 2, 4: 6, 5: 1, 6: 12, 7: 10 };
