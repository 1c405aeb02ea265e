/**
 * The nydusd daemon: mounts RAFS images over FUSE (several in one daemon), each reading its blobs
 * through a backend and the daemon-wide blob cache, with background prefetch; keeps the state
 * machine and everything the API reports. The composition root of fs, storage and fuse.
 * @module
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { NydusError, UsageError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { S_IFDIR, S_IFMT, S_IFREG } from '../format/v6/constants.js';
import type { ChunkRecord } from '../format/v6/chunk-record.js';
import { RafsImage, type InodeInfo } from '../image/rafs-image.js';
import { bufferSource } from '../image/byte-source.js';
import { readInlineBootstrap } from '../blob/blob-toc.js';
import { EROFS_SUPER_MAGIC } from '../format/v6/constants.js';
import type { BlobBackend } from '../storage/blob-backend.js';
import type { BlobCacheManager, CachedBlob } from '../storage/blob-cache.js';
import { createBackend } from '../storage/create-backend.js';
import { createBlobCacheManager } from '../storage/cache/create-blob-cache.js';
import { mountFuse, type FuseSession } from '../fuse/session.js';
import { pollingAvailable } from '../fuse/device-reader.js';
import { RafsFs } from '../rafs/rafs-fs.js';
import { BlobDeviceFs } from '../rafs/blob-device-fs.js';
import { createErofsStateDir, sweepErofsStateDirs } from './erofs-state.js';
import { ErofsFileMountError, attachLoop, detachLoop, mountErofs, mountErofsFiles, unmountErofs } from '../fuse/erofs-mount.js';
import { FOP_NAMES, FsMetrics } from '../rafs/fs-metrics.js';
import { AccessTrace, type TraceResolver } from '../rafs/access-trace.js';
import { createTraceResolver } from '../rafs/trace-resolver.js';
import { FirstReadLatency } from '../rafs/first-read-latency.js';
import { startBackgroundStream } from './background-stream.js';
import type { DaemonConfig } from './config.js';

/** nydusd's states. */
export type DaemonState = 'INIT' | 'RUNNING' | 'READY' | 'STOPPED';

/** A request to mount one image. */
export interface MountRequest {
  mountpoint: string;
  /** Bootstrap file, or a blob with an inline bootstrap. */
  source: string;
  config: DaemonConfig;
  /** The config as given (reported back by the API). */
  configText: string;
  /** Extra files to prefetch (API `prefetch_files`). */
  prefetchFiles?: readonly string[];
}

/** One mounted image. */
export interface MountedImage {
  mountpoint: string;
  source: string;
  config: DaemonConfig;
  configText: string;
  image: RafsImage;
  fs: RafsFs;
  session: FuseSession;
  backend: BlobBackend;
  cache: BlobCacheManager;
  blobs: CachedBlob[];
  mountedAt: number;
  /** Settles when the mount's prefetch is done. */
  prefetch: Promise<void>;
  /** When the prefetch began and ended (ms since the epoch; 0: not yet, or none). */
  prefetchTimes: { begin: number; end: number };
  /** The files read since the mount (`access_trace`), and how its events map to paths. */
  trace?: { trace: AccessTrace; resolver: TraceResolver };
  /** Latency of first reads (fusedev: each file's first READ; erofs: every READ of a blob file). */
  firstRead: FirstReadLatency;
  /** READ requests and bytes the mount answered so far (fusedev: files; erofs: blob files). */
  served(): { reads: number; bytes: number };
  /** When the background stream of the rest of the image began and ended (ms since the epoch; 0: not yet). */
  streamTimes: { begin: number; end: number };
  /** Stops the mount's background work (prefetch, streaming). */
  stopBackground: AbortController;
  /**
   * fs_driver "erofs": the kernel mount's parts, undone in reverse. `session` is then the FUSE
   * mount of the blob files and `fs` only keeps (empty) metrics.
   */
  kernel?: { stateDir: string; loops: string[] };
}

/** Options of a daemon. */
export interface DaemonOptions {
  id: string;
  logger: Logger;
  /** Outstanding /dev/fuse reads per mount where /dev/fuse cannot be polled (threadpool read mode). */
  fuseWorkers?: number;
}

const PLACEHOLDER_BLOB_ID = 'x'.repeat(64);
/**
 * Files (inodes) resolved to chunks before the first hand-over of prefetch work; each later batch
 * is as large as all before it, so fetching starts early and the requests of a long list are not
 * cut into small ones at batch ends.
 */
const PREFETCH_BATCH = 256;

/** Load a bootstrap file, or the bootstrap inlined in a blob. Blob ids "xxxx…" take the file's name. */
export function loadImage(source: string): RafsImage {
  const image = new RafsImage(bufferSource(readBootstrap(source), source));
  const name = basename(source).replace(/\.(boot|bootstrap)$/, '');
  for (const b of image.blobs) {
    if (b.slot.blobId === PLACEHOLDER_BLOB_ID && /^[0-9a-f]{64}$/.test(name)) {
      (b.slot as { blobId: string }).blobId = name;
      (b.entry as { blobId: string }).blobId = name;
    }
  }
  return image;
}

/** Whether `source` is a bootstrap file (EROFS magic at 1024), not a blob with one inlined. */
function isPlainBootstrap(source: string): boolean {
  const fd = openSync(source, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 1024) === 4 && b.readUInt32LE(0) === EROFS_SUPER_MAGIC;
  } finally {
    closeSync(fd);
  }
}

/** The bytes of a bootstrap file, or of the bootstrap inlined in a blob. */
export function readBootstrap(source: string): Uint8Array {
  let buf: Uint8Array;
  try {
    if (statSync(source).isDirectory()) throw new UsageError('ERR_BAD_SOURCE', `Cannot mount ${source}: it is a directory, not a bootstrap`);
    buf = readFileSync(source);
  } catch (e) {
    if (e instanceof NydusError) throw e;
    throw new UsageError('ERR_BAD_SOURCE', `Cannot read bootstrap ${source}: ${(e as Error).message}`);
  }
  const magic = buf.length >= 1028 ? new DataView(buf.buffer, buf.byteOffset + 1024, 4).getUint32(0, true) : 0;
  if (magic !== EROFS_SUPER_MAGIC) buf = readInlineBootstrap(bufferSource(buf, source));
  return buf;
}

/** The running daemon. */
export class Daemon {
  readonly id: string;
  readonly startedAt = Date.now();
  state: DaemonState = 'INIT';
  readonly mounts = new Map<string, MountedImage>();
  readonly #logger: Logger;
  readonly #caches = new Map<string, BlobCacheManager>();
  readonly #backends = new Map<string, { backend: BlobBackend; users: number }>();
  readonly #o: DaemonOptions;
  #dummyDir: string | undefined;
  #busy: Promise<unknown> = Promise.resolve();
  /** Cache warmings running (see warm), stopped with the daemon. */
  readonly #warming = new Set<AbortController>();

  /** Cache warmings (PUT /api/v1/daemon/prefetch) still running. */
  get warming(): number {
    return this.#warming.size;
  }

  constructor(options: DaemonOptions) {
    this.#o = options;
    this.id = options.id;
    this.#logger = options.logger;
    this.state = 'RUNNING';
  }

  /**
   * libuv threads left for one more mount. Where /dev/fuse is read on the event loop (poll mode,
   * see fuse/device-reader.ts) mounts hold none; otherwise every mount's outstanding /dev/fuse
   * reads each hold a threadpool thread, and the cache's file I/O needs some too.
   */
  #threadpoolSize(): number {
    const total = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    if (pollingAvailable()) return total;
    const used = this.mounts.size * (this.#o.fuseWorkers ?? 4);
    const left = total - used;
    if (left < (this.#o.fuseWorkers ?? 4) + 4) {
      throw new UsageError('ERR_TOO_MANY_MOUNTS', `Cannot mount: ${this.mounts.size} mounts already use ${used} of the ${total} libuv threads (raise UV_THREADPOOL_SIZE or lower --thread-num)`);
    }
    return left;
  }

  /** Run mount/umount operations one at a time. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#busy.then(fn, fn);
    this.#busy = next.catch(() => undefined);
    return next;
  }

  #cacheFor(config: DaemonConfig): BlobCacheManager {
    let dir = config.cache.workDir;
    if (config.cache.type === 'dummycache') {
      this.#dummyDir ??= mkdtempSync(`${tmpdir()}/nydusd-dummycache-`);
      dir = this.#dummyDir;
    }
    // (Like the prefetch settings, adaptive amplification is the first mount's of a work dir.)
    const key = `${dir}|${config.digestValidate}|${config.amplifyIo}`;
    let m = this.#caches.get(key);
    if (!m) {
      m = createBlobCacheManager({
        workDir: dir, validate: config.digestValidate, amplifyIo: config.amplifyIo, adaptiveAmplify: config.coldRead.adaptiveAmplify,
        prefetch: { threads: config.prefetch.threads, mergingSize: config.prefetch.mergingSize, bandwidthRate: config.prefetch.bandwidthRate },
      }, { logger: this.#logger.child({ component: 'blobcache', workDir: dir }) });
      this.#caches.set(key, m);
    }
    return m;
  }

  #backendFor(config: DaemonConfig): BlobBackend {
    const key = JSON.stringify(config.backend);
    let b = this.#backends.get(key);
    if (!b) {
      b = { backend: createBackend(config.backend, { logger: this.#logger.child({ backend: config.backend.type }) }), users: 0 };
      this.#backends.set(key, b);
    }
    b.users++;
    return b.backend;
  }

  /** Give back a mount's opens of its blobs: a blob no mount uses any more has its cache files closed. */
  async #releaseBlobs(cache: BlobCacheManager, blobs: readonly CachedBlob[]): Promise<void> {
    for (const b of blobs) {
      await cache.release(b).catch((e: unknown) => this.#logger.warn('cannot close the cache files of a blob', { blobId: b.info.blobId, error: (e as Error).message }));
    }
  }

  async #releaseBackend(backend: BlobBackend): Promise<void> {
    for (const [k, b] of this.#backends) {
      if (b.backend === backend && --b.users <= 0) {
        this.#backends.delete(k);
        await backend.close();
      }
    }
  }

  /** Mount an image. Rejects when the mountpoint is taken or anything fails (nothing is left mounted). */
  mount(req: MountRequest): Promise<MountedImage> {
    return this.#serial(async () => {
      if (this.mounts.has(req.mountpoint)) throw new UsageError('ERR_MOUNT_EXISTS', `Cannot mount at ${req.mountpoint}: something is already mounted there by this daemon`);
      const log = this.#logger.child({ mountpoint: req.mountpoint });
      const image = loadImage(req.source);
      const backend = this.#backendFor(req.config);
      const stopPrefetch = new AbortController();
      const cache = this.#cacheFor(req.config);
      const opened: CachedBlob[] = [];
      try {
        const blobs = image.blobs.map((b) => {
          const blob = cache.open({
            blobId: b.slot.blobId, compressor: b.compressor, digester: b.digester, chunkCount: b.entry.chunkCount,
            uncompressedSize: b.entry.uncompressedSize, compressedSize: b.entry.compressedSize,
            chunkAt: (index: number) => image.chunkRecordByIndex(b.index, index),
          }, backend);
          opened.push(blob);
          return blob;
        });
        // The prefetch starts now, while the file system is being mounted (spawning mount tools,
        // waiting for the kernel): its first requests are on the wire before the mount is done.
        // If the mount fails, the prefetch is stopped and releasing the backend ends its fetches.
        const prefetchTimes = { begin: 0, end: 0 };
        const prefetch = this.#startPrefetch({ config: req.config, image, blobs, prefetchTimes }, req.prefetchFiles ?? [], log, stopPrefetch.signal);
        const metrics = new FsMetrics({ iostatsFiles: req.config.iostatsFiles, accessPattern: req.config.accessPattern, latestReadFiles: req.config.latestReadFiles });
        const trace = req.config.accessTrace ? new AccessTrace() : undefined;
        const firstRead = new FirstReadLatency();
        const fs = new RafsFs({
          image, blobs, metrics, ...(trace ? { trace } : {}), firstRead,
          ...(req.config.coldRead.siblingFiles ? { siblingMaxSize: req.config.coldRead.siblingMaxSize } : {}), enableXattr: req.config.enableXattr, statelessOpen: true,
          defaultUid: process.geteuid?.() ?? 0, defaultGid: process.getegid?.() ?? 0,
        });
        let kernel: MountedImage['kernel'];
        let session: FuseSession;
        const readOp = FOP_NAMES.indexOf('read');
        let served = (): { reads: number; bytes: number } => ({ reads: metrics.fopHits[readOp] ?? 0, bytes: metrics.dataRead });
        if (req.config.fsDriver === 'erofs') {
          let blobStats: BlobDeviceFs['stats'];
          ({ session, kernel, stats: blobStats } = await this.#mountKernelErofs(req, image, blobs, log, trace, firstRead));
          served = () => ({ reads: blobStats.reads, bytes: blobStats.bytes });
        } else {
          session = await mountFuse({
            mountpoint: req.mountpoint, fs, fsName: 'nydusfs', subtype: 'nydusfs', logger: log,
            threadpoolSize: this.#threadpoolSize(), workers: this.#o.fuseWorkers ?? 4,
          });
        }
        const m: MountedImage = {
          mountpoint: req.mountpoint, source: req.source, config: req.config, configText: req.configText, image, fs, session,
          backend, cache, blobs, mountedAt: Date.now(), prefetch, prefetchTimes, ...(kernel ? { kernel } : {}),
          ...(trace ? { trace: { trace, resolver: createTraceResolver(image, (nid) => fs.knownPath(nid)) } } : {}),
          firstRead, served, streamTimes: { begin: 0, end: 0 }, stopBackground: stopPrefetch,
        };
        if (req.config.coldRead.backgroundStream) {
          startBackgroundStream({
            image, blobs, activity: () => served().reads, busy: () => session.stats.inflight > 0, quietMs: req.config.coldRead.quietMs, after: prefetch,
            times: m.streamTimes, signal: stopPrefetch.signal, logger: log,
          });
        }
        this.mounts.set(req.mountpoint, m);
        void session.closed.then(() => {
          if (this.mounts.get(req.mountpoint) === m) {
            log.warn('mount went away (unmounted from outside)');
            this.mounts.delete(req.mountpoint);
            stopPrefetch.abort();
            void this.#releaseBlobs(cache, blobs).then(() => this.#releaseBackend(backend));
          }
        });
        this.state = 'RUNNING';
        log.info('mounted', { source: req.source, blobs: image.blobs.map((b) => b.slot.blobId) });
        return m;
      } catch (e) {
        stopPrefetch.abort();
        await this.#releaseBlobs(cache, opened);
        await this.#releaseBackend(backend);
        throw e;
      }
    });
  }

  /** Unmount `mountpoint`. */
  umount(mountpoint: string): Promise<void> {
    return this.#serial(async () => {
      const m = this.mounts.get(mountpoint);
      if (!m) throw new UsageError('ERR_NOT_MOUNTED', `Cannot unmount ${mountpoint}: nothing is mounted there by this daemon`);
      this.mounts.delete(mountpoint);
      m.stopBackground.abort();
      if (m.kernel) await this.#unmountKernelErofs(mountpoint, m.session, m.kernel);
      else await m.session.unmount();
      await this.#releaseBlobs(m.cache, m.blobs);
      await this.#releaseBackend(m.backend);
      this.#logger.info('unmounted', { mountpoint });
    });
  }

  /**
   * fs_driver "erofs": the blobs as FUSE files in a private directory, then the kernel's EROFS at
   * the mountpoint, backed by those files directly, or where the kernel cannot, by a loop device
   * over each and over the bootstrap. Undone in reverse on failure.
   */
  async #mountKernelErofs(req: MountRequest, image: RafsImage, blobs: readonly CachedBlob[], log: Logger, trace: AccessTrace | undefined, latency: FirstReadLatency): Promise<{ session: FuseSession; kernel: { stateDir: string; loops: string[] }; stats: BlobDeviceFs['stats'] }> {
    await sweepErofsStateDirs(log);
    const stateDir = createErofsStateDir();
    const blobDir = join(stateDir, 'blobs');
    mkdirSync(blobDir);
    // EROFS mounts the bootstrap file itself: the mount's own file (a link to it, named in the
    // state dir), or for a bootstrap inlined in a blob, a copy of its bytes.
    const bootFile = join(stateDir, 'bootstrap');
    if (isPlainBootstrap(req.source)) symlinkSync(resolve(req.source), bootFile);
    else writeFileSync(bootFile, readBootstrap(req.source));
    const loops: string[] = [];
    let session: FuseSession | undefined;
    let stopPush = (): void => undefined;
    try {
      const blobFs = new BlobDeviceFs(image, blobs, trace, latency);
      const s = await mountFuse({
        mountpoint: blobDir, fs: blobFs, fsName: 'nydus-blobs', subtype: 'nydusblob', logger: log,
        threadpoolSize: this.#threadpoolSize(), workers: this.#o.fuseWorkers ?? 4,
      });
      session = s;
      // Attached before the kernel mount: the prefetch may already be fetching. Stores before the
      // kernel has looked the blob files up fail harmlessly (those ranges are READ later instead).
      stopPush = blobFs.pushFetchedData((nodeid, offset, data) => s.notifyStore(nodeid, offset, data));
      const blobFiles = image.blobs.map((b) => join(blobDir, BlobDeviceFs.fileName(b.index)));
      let fileBacked = false;
      if (req.config.erofsBacking !== 'loop') {
        try {
          await mountErofsFiles(bootFile, blobFiles, req.mountpoint);
          fileBacked = true;
        } catch (e) {
          if (!(e instanceof ErofsFileMountError && e.unsupported) || req.config.erofsBacking === 'file') throw e;
          log.info('file-backed EROFS unavailable, using loop devices', { reason: e.message });
        }
      }
      if (!fileBacked) {
        loops.push(await attachLoop(bootFile));
        for (const f of blobFiles) loops.push(await attachLoop(f));
        await mountErofs(loops[0] as string, loops.slice(1), req.mountpoint);
      }
      void s.closed.then(() => {
        stopPush();
        log.info('blob files closed', { ...blobFs.stats });
      });
      return { session, kernel: { stateDir, loops }, stats: blobFs.stats };
    } catch (e) {
      stopPush();
      for (const l of loops.reverse()) await detachLoop(l).catch(() => undefined);
      await session?.unmount().catch(() => undefined);
      rmSync(stateDir, { recursive: true, force: true });
      throw e;
    }
  }

  async #unmountKernelErofs(mountpoint: string, session: FuseSession, k: { stateDir: string; loops: string[] }): Promise<void> {
    await unmountErofs(mountpoint);
    for (const l of [...k.loops].reverse()) await detachLoop(l).catch((e: unknown) => this.#logger.warn('loop detach failed', { device: l, error: (e as Error).message }));
    await session.unmount();
    rmSync(k.stateDir, { recursive: true, force: true });
  }

  /**
   * Fetch the listed files of image `source` into the blob cache without mounting it, in the
   * background (the snapshotter asks at pull: the container that mounts the image next finds its
   * start-up data local, or joins the fetches in flight, since the blobs stay open meanwhile).
   * Returns at once; failures are logged. Paths the image lacks are skipped (one warning).
   */
  warm(req: { source: string; config: DaemonConfig; files: readonly string[] }): void {
    const log = this.#logger.child({ warm: req.source });
    const image = loadImage(req.source);
    const backend = this.#backendFor(req.config);
    const cache = this.#cacheFor(req.config);
    const stop = new AbortController();
    this.#warming.add(stop);
    const opened: CachedBlob[] = [];
    const run = async (): Promise<void> => {
      for (const b of image.blobs) {
        opened.push(cache.open({
          blobId: b.slot.blobId, compressor: b.compressor, digester: b.digester, chunkCount: b.entry.chunkCount,
          uncompressedSize: b.entry.uncompressedSize, compressedSize: b.entry.compressedSize,
          chunkAt: (index: number) => image.chunkRecordByIndex(b.index, index),
        }, backend));
      }
      const times = { begin: 0, end: 0 };
      const config = { ...req.config, prefetch: { ...req.config.prefetch, enable: false, prefetchAll: false } };
      await this.#startPrefetch({ config, image, blobs: opened, prefetchTimes: times }, req.files, log, stop.signal, false);
      log.info('cache warmed', { files: req.files.length, ms: times.end - times.begin });
    };
    void run().catch((e: unknown) => log.warn('cannot warm the cache', { error: (e as Error).message })).finally(async () => {
      this.#warming.delete(stop);
      await this.#releaseBlobs(cache, opened);
      await this.#releaseBackend(backend);
    });
  }

  /** Unmount everything and release every resource. */
  async stop(): Promise<void> {
    for (const w of this.#warming) w.abort();
    for (const mp of [...this.mounts.keys()]) {
      try {
        await this.umount(mp);
      } catch (e) {
        this.#logger.error('unmount failed', { mountpoint: mp, error: (e as Error).message });
      }
    }
    for (const c of this.#caches.values()) await c.close();
    this.#caches.clear();
    if (this.#dummyDir) rmSync(this.#dummyDir, { recursive: true, force: true });
    this.state = 'STOPPED';
  }

  /**
   * Background prefetch of a mount: everything (prefetch_all), or the prefetch table and listed
   * files, in their order. Files are resolved to chunks in batches, each batch handed to the blob
   * caches at once: the first fetches start while the rest of a long list is still being resolved.
   */
  #startPrefetch(m: Pick<MountedImage, 'config' | 'image' | 'blobs' | 'prefetchTimes'>, files: readonly string[], log: Logger, signal: AbortSignal, warnMissing = true): Promise<void> {
    const p = m.config.prefetch;
    if (!p.enable && files.length === 0) return Promise.resolve();
    const work = async (): Promise<void> => {
      // Resolving starts on the next turn: the mount goes on first.
      await new Promise<void>((r) => setImmediate(r));
      if (signal.aborted) return;
      const t0 = Date.now();
      m.prefetchTimes.begin = t0;
      const perBlob = new Map<number, ChunkRecord[]>();
      const submitted = new Map<number, Set<number>>();
      const running: Promise<void>[] = [];
      let chunks = 0;
      const add = (blob: number, rec: ChunkRecord): void => {
        const done = submitted.get(blob) ?? new Set<number>();
        submitted.set(blob, done);
        if (done.has(rec.index)) return;
        done.add(rec.index);
        const list = perBlob.get(blob) ?? [];
        list.push(rec);
        perBlob.set(blob, list);
      };
      const flush = (): void => {
        for (const [b, recs] of perBlob) {
          chunks += recs.length;
          running.push((m.blobs[b] as CachedBlob).prefetch(recs.sort((x, y) => x.compressedOffset - y.compressedOffset)));
        }
        perBlob.clear();
      };
      if (p.enable && p.prefetchAll) {
        m.image.blobs.forEach((b) => {
          for (let k = 0; k < b.entry.chunkCount; k++) {
            const rec = m.image.chunkRecordByIndex(b.index, k);
            if (rec) add(b.index, rec);
          }
        });
      } else {
        const roots: InodeInfo[] = [];
        if (p.enable) for (const nid of m.image.prefetchNids()) roots.push(m.image.inode(nid));
        const missing: string[] = [];
        for (const f of files) {
          const i = m.image.resolve(f);
          if (i) roots.push(i);
          else missing.push(f);
        }
        // One warning per mount: a profile made for another version of an image may miss many paths.
        // (A cache warming leaves it to the mount that follows.)
        if (missing.length > 0 && warnMissing) log.warn(`${missing.length} of ${files.length} prefetch files are not in the image; prefetching the rest`, { missing: missing.length, first: missing.slice(0, 5) });
        const seen = new Set<number>();
        // Depth first, in list order: the first root on top.
        const stack = roots.reverse();
        let visited = 0;
        let nextFlush = PREFETCH_BATCH;
        while (stack.length > 0) {
          const i = stack.pop() as InodeInfo;
          if (seen.has(i.nid)) continue;
          seen.add(i.nid);
          const t = i.mode & S_IFMT;
          if (t === S_IFREG) for (const c of m.image.chunkIndexes(i)) add(c.blobIndex, m.image.chunkRecord(c));
          else if (t === S_IFDIR) {
            const children: InodeInfo[] = [];
            for (const d of m.image.dirents(i)) {
              if (d.nid !== i.nid && !(d.name.length === 2 && d.name[0] === 0x2e && d.name[1] === 0x2e)) children.push(m.image.inode(d.nid));
            }
            stack.push(...children.reverse());
          }
          if (++visited >= nextFlush) {
            nextFlush = visited * 2;
            flush();
            await new Promise<void>((r) => setImmediate(r));
            if (signal.aborted) return;
          }
        }
      }
      flush();
      await Promise.all(running);
      log.info('prefetch done', { ms: Date.now() - t0, chunks });
    };
    return work().catch((e: unknown) => log.warn('prefetch failed', { error: (e as Error).message })).finally(() => { m.prefetchTimes.end = Date.now(); });
  }
}
