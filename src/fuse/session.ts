/**
 * A FUSE session in pure Node: opens /dev/fuse, mounts it, and serves the kernel's requests from a
 * FileSystem until the mount goes away.
 *
 * Requests are read as device-reader.ts says: by default on the event loop (epoll on the
 * descriptor, no thread hop per request); where that is unavailable, by blocking reads in libuv's
 * threadpool, each outstanding read holding one pool thread for as long as the mount is idle. The
 * pool has UV_THREADPOOL_SIZE threads (4 by default), fixed the first time anything uses it — for
 * an ES module entry that happens before its first line runs (the loader reads files through the
 * pool), so the variable must be in the environment the process starts with, set by a shell or
 * CommonJS launcher, and passed as `threadpoolSize`. At least one thread must stay free for
 * everything else (the FileSystem's file reads, fs.promises, dns, zlib …): the reads of all
 * sessions of the process together take at most `threadpoolSize - 1` threads
 * ({@link recommendedThreadpoolSize} leaves four free), and after INIT a probe logs an error when
 * no thread is left (a wrong `threadpoolSize`). Replies are written synchronously (writev on the
 * main thread): a reply must never wait for a pool thread that a blocked read holds; it is also
 * the faster way.
 *
 * The process that serves a mount must not use that mount itself, neither with synchronous calls
 * (they stop the event loop that answers) nor with threadpool calls (they can take the threads the
 * answers need).
 * @module
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { createDeviceReader, pollingAvailable, type DeviceReader, type DeviceReadMode } from './device-reader.js';
import type { FileSystem } from './file-system.js';
import { NydusError } from '../util/errors.js';
import {
  FUSE_MIN_READ_BUFFER, FuseNotify, IN_HEADER_SIZE, NOTIFY_STORE_OUT_SIZE, OUT_HEADER_SIZE, encodeNotifyStoreOut, encodeOutHeader, initFlagNames,
} from './abi/index.js';
import { Dispatcher, MAX_WRITE, type FuseLogger, type FuseStats, type InitResult } from './dispatch.js';
import { abortConnection, mountFuseDevice, setReadAheadKb, topMountAt, umount } from './mount.js';

export type { FuseLogger, FuseStats, InitResult } from './dispatch.js';
export { unmountPath } from './mount.js';

/** Options of {@link mountFuse}. */
export interface MountFuseOptions {
  /** Existing directory to mount on. */
  mountpoint: string;
  fs: FileSystem;
  /** Mount source in the mount table. Default 'nydusfs'. */
  fsName?: string;
  /** Type suffix: the mount's type is `fuse.<subtype>`. Default 'nydusfs'. */
  subtype?: string;
  /** Kernel readahead of the mount in KiB, set through sysfs after INIT. Default 1024; 0 leaves the kernel's. */
  readAheadKb?: number;
  /** Cap on the readahead answered in INIT (bytes). Default: the kernel's offer. */
  maxReadahead?: number;
  /** How /dev/fuse is read (see device-reader.ts). Default `poll` where available, else `threadpool`. */
  readMode?: DeviceReadMode;
  /** `threadpool` mode: outstanding /dev/fuse reads (each holds a threadpool thread). Default 4; clamped so that all sessions together leave one pool thread free. */
  workers?: number;
  /** The UV_THREADPOOL_SIZE this process was started with. Default 4 (libuv's default). */
  threadpoolSize?: number;
  /** Seconds; when set, replaces the FileSystem's entryValid in every entry. */
  entryTimeout?: number;
  /** Seconds; when set, replaces the FileSystem's attrValid in every entry and GETATTR reply. */
  attrTimeout?: number;
  /** Seconds the kernel may cache a lookup that failed with ENOENT. Default 0 (not cached). */
  negativeTimeout?: number;
  /** How long to wait for the kernel's INIT after mount(8). Default 10 000 ms. */
  initTimeoutMs?: number;
  /** After a lazy unmount, how long unmount() waits for open files to close before aborting the connection. Default 5000 ms. */
  unmountTimeoutMs?: number;
  logger?: FuseLogger;
}

/** A mounted FUSE file system. */
export interface FuseSession {
  /** Canonical absolute mount point. */
  readonly mountpoint: string;
  /** `major:minor` of the mount's device (also its bdi name). */
  readonly device: string;
  /** What INIT negotiated. */
  readonly init: InitResult;
  /** Counters: requests and errors by opcode, requests in flight. */
  readonly stats: FuseStats;
  /** Resolves (never rejects) when the kernel side has ended and /dev/fuse is closed. */
  readonly closed: Promise<void>;
  /**
   * Unmounts this mount (`umount MNT`; `umount -l MNT` when busy), waits for the session to end and
   * closes /dev/fuse. After a lazy unmount, files still open keep working until they close or
   * `unmountTimeoutMs` passes, then the connection is aborted. Idempotent.
   */
  unmount(): Promise<void>;
  /**
   * Push `data` into the kernel's page cache of `nodeid` at `offset` (FUSE_NOTIFY_STORE), so
   * reads of it need no READ request. The node must be known to the kernel (looked up). Resolves
   * false when the kernel refused it (the node is gone) or the session has ended.
   *
   * Written from the threadpool, never the main thread: the kernel locks each page it stores
   * into, and a page may be locked by a READ that only this process's main thread can answer.
   */
  notifyStore(nodeid: number, offset: number, data: readonly Uint8Array[]): Promise<boolean>;
}

/** Read buffer per worker: the kernel wants room for a header, a write_in and max_write bytes. */
const READ_BUFFER_SIZE = Math.max(FUSE_MIN_READ_BUFFER, MAX_WRITE + 64 * 1024);
/** How long a trivial threadpool call may take before the pool counts as exhausted. */
const THREADPOOL_PROBE_MS = 500;

const silent: FuseLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** A UV_THREADPOOL_SIZE for `workers` outstanding reads with four threads to spare. */
export function recommendedThreadpoolSize(workers: number): number {
  return workers + 4;
}

/** Resolves after `ms` unless `signal` aborts first (then resolves early). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

/**
 * Mounts `options.fs` read-only at `options.mountpoint` and serves it. Resolves once the kernel's
 * INIT is answered (the mount is usable); on any failure nothing is left mounted.
 */
export async function mountFuse(options: MountFuseOptions): Promise<FuseSession> {
  const logger = options.logger ?? silent;
  const mountpoint = await fsp.realpath(options.mountpoint);
  const st = await fsp.stat(mountpoint);
  if (!st.isDirectory()) throw new NydusError('ERR_NOT_DIR', `Cannot mount at ${mountpoint}: not a directory`, { path: mountpoint });
  const mode: DeviceReadMode = options.readMode === 'threadpool' || !pollingAvailable() ? 'threadpool' : 'poll';
  const workers = mode === 'threadpool' ? claimWorkers(options.workers ?? 4, options.threadpoolSize ?? 4, logger) : 0;
  let fd: number;
  try {
    fd = fs.openSync('/dev/fuse', 'r+');
  } catch (e) {
    releaseWorkers(workers);
    throw new NydusError('ERR_FUSE_OPEN', `Cannot open /dev/fuse: ${(e as Error).message}`, { cause: e });
  }
  try {
    await mountFuseDevice({ fd, mountpoint, fsName: options.fsName ?? 'nydusfs', subtype: options.subtype ?? 'nydusfs' });
  } catch (e) {
    releaseWorkers(workers);
    fs.closeSync(fd);
    throw e;
  }
  const session = new Session(fd, mountpoint, options, logger);
  try {
    session.start(mode, workers);
  } catch (e) {
    releaseWorkers(workers);
    // Nothing reads the device: closing it ends the connection, then the mount can go.
    fs.closeSync(fd);
    await umount(mountpoint, true).catch((u: unknown) => logger.error('cannot clean up failed mount', { mountpoint, error: (u as Error).message }));
    throw e;
  }
  try {
    await session.ready(options.initTimeoutMs ?? 10_000, options.subtype ?? 'nydusfs', options.readAheadKb ?? 1024);
  } catch (e) {
    await session.unmount().catch((u: unknown) => logger.error('cannot clean up failed mount', { mountpoint, error: (u as Error).message }));
    throw e;
  }
  logger.info('FUSE mounted', {
    mountpoint, device: session.device, readMode: mode, ...(workers > 0 ? { workers } : {}), minor: session.init.reply.minor,
    flags: initFlagNames(session.init.reply.flags, session.init.reply.flags2).join('|'),
  });
  return session;
}

/**
 * Threadpool threads held by the reads of every session in this process. The pool is one per
 * process, so the limit is shared by all mounts.
 */
let heldThreads = 0;

/** Reserves threads for `wanted` reads, leaving one pool thread free; returns how many were granted. */
function claimWorkers(wanted: number, pool: number, logger: FuseLogger): number {
  if (!Number.isInteger(wanted) || wanted < 1) throw new RangeError(`Cannot mount: workers must be a positive integer, got ${wanted}`);
  if (!Number.isInteger(pool) || pool < 2) throw new RangeError(`Cannot mount: threadpoolSize must be an integer ≥ 2, got ${pool}`);
  const free = pool - 1 - heldThreads;
  if (free < 1) {
    throw new NydusError('ERR_FUSE_THREADPOOL',
      `Cannot mount: the FUSE sessions of this process already hold ${heldThreads} of ${pool} threadpool threads; start it with a larger UV_THREADPOOL_SIZE`);
  }
  const workers = Math.min(wanted, free);
  if (workers < wanted) {
    logger.warn('fewer FUSE workers than asked: each holds a threadpool thread', {
      workers, asked: wanted, threadpoolSize: pool, heldByOtherMounts: heldThreads,
      hint: `start the process with UV_THREADPOOL_SIZE=${heldThreads + recommendedThreadpoolSize(wanted)} and pass threadpoolSize`,
    });
  }
  heldThreads += workers;
  return workers;
}

function releaseWorkers(n: number): void {
  heldThreads -= n;
}

class Session implements FuseSession {
  notifyStore(nodeid: number, offset: number, data: readonly Uint8Array[]): Promise<boolean> {
    if (this.#ended) return Promise.resolve(false);
    const size = data.reduce((n, d) => n + d.length, 0);
    const head = new Uint8Array(OUT_HEADER_SIZE + NOTIFY_STORE_OUT_SIZE);
    const view = new DataView(head.buffer);
    encodeOutHeader({ len: head.length + size, error: FuseNotify.STORE, unique: 0n }, view, 0);
    encodeNotifyStoreOut({ nodeid: BigInt(nodeid), offset: BigInt(offset), size }, view, OUT_HEADER_SIZE);
    return new Promise((resolve) => {
      fs.writev(this.#fd, [head, ...data], (err) => resolve(!err));
    });
  }

  readonly mountpoint: string;
  readonly closed: Promise<void>;
  readonly #fd: number;
  readonly #fs: FileSystem;
  readonly #logger: FuseLogger;
  readonly #dispatcher: Dispatcher;
  readonly #unmountTimeoutMs: number;
  readonly #initDone: Promise<InitResult>;
  #resolveInit!: (r: InitResult) => void;
  #rejectInit!: (e: Error) => void;
  #resolveClosed!: () => void;
  #init: InitResult | undefined;
  #device = '';
  #reader: DeviceReader | undefined;
  #workers = 0;
  #ended = false;
  #unmounting: Promise<void> | undefined;

  constructor(fd: number, mountpoint: string, o: MountFuseOptions, logger: FuseLogger) {
    this.#fd = fd;
    this.mountpoint = mountpoint;
    this.#fs = o.fs;
    this.#logger = logger;
    this.#unmountTimeoutMs = o.unmountTimeoutMs ?? 5000;
    this.closed = new Promise((resolve) => { this.#resolveClosed = resolve; });
    this.#initDone = new Promise((resolve, reject) => {
      this.#resolveInit = resolve;
      this.#rejectInit = reject;
    });
    this.#initDone.catch(() => undefined);
    this.#dispatcher = new Dispatcher(o.fs, {
      write: (chunks) => { fs.writevSync(this.#fd, chunks); },
      logger,
      ...(o.entryTimeout !== undefined ? { entryTimeout: o.entryTimeout } : {}),
      ...(o.attrTimeout !== undefined ? { attrTimeout: o.attrTimeout } : {}),
      ...(o.negativeTimeout !== undefined ? { negativeTimeout: o.negativeTimeout } : {}),
      ...(o.maxReadahead !== undefined ? { maxReadahead: o.maxReadahead } : {}),
      onInit: (r) => {
        this.#init = r;
        this.#resolveInit(r);
      },
      onInitError: (e) => this.#rejectInit(e),
      onDestroy: () => logger.debug('FUSE DESTROY', { mountpoint }),
    });
  }

  get device(): string {
    return this.#device;
  }

  get init(): InitResult {
    if (!this.#init) throw new NydusError('ERR_FUSE_NOT_READY', `Cannot report INIT of ${this.mountpoint}: not negotiated yet`);
    return this.#init;
  }

  get stats(): FuseStats {
    return this.#dispatcher.stats;
  }

  /** Start reading requests (`workers` reads outstanding in `threadpool` mode). */
  start(mode: DeviceReadMode, workers: number): void {
    this.#workers = workers;
    const reader = createDeviceReader({
      fd: this.#fd, bufferSize: READ_BUFFER_SIZE, workers, mode,
      onMessage: (msg) => {
        if (msg.length < IN_HEADER_SIZE) {
          this.#logger.error('short FUSE request', { bytes: msg.length });
          return;
        }
        try {
          this.#dispatcher.handle(msg);
        } catch (e) {
          this.#logger.error('FUSE request handling threw', { error: (e as Error).message });
        }
      },
      onReadError: (code, message) => this.#logger.error('FUSE device read failed', { code, error: message }),
    });
    this.#reader = reader;
    void reader.ended.then(() => this.#finish());
  }

  /** Waits for INIT, finds the mount's device and raises its readahead. */
  async ready(timeoutMs: number, subtype: string, readAheadKb: number): Promise<void> {
    const ac = new AbortController();
    const timeout = sleep(timeoutMs, ac.signal).then(() => {
      throw new NydusError('ERR_FUSE_INIT', `Cannot mount ${this.mountpoint}: no FUSE INIT within ${timeoutMs} ms`);
    });
    const ended = this.closed.then(() => {
      throw new NydusError('ERR_FUSE_INIT', `Cannot mount ${this.mountpoint}: the connection ended before INIT`);
    });
    try {
      await Promise.race([this.#initDone, timeout, ended]);
    } finally {
      ac.abort();
    }
    const m = await topMountAt(this.mountpoint);
    if (!m || m.fstype !== `fuse.${subtype}`) {
      throw new NydusError('ERR_FUSE_MOUNT', `Cannot find the new mount at ${this.mountpoint} in the mount table`);
    }
    this.#device = m.device;
    if (readAheadKb > 0) {
      try {
        await setReadAheadKb(m.device, readAheadKb);
      } catch (e) {
        this.#logger.warn('cannot set FUSE readahead', { device: m.device, readAheadKb, error: (e as Error).message });
      }
    }
    if (this.#reader?.mode === 'threadpool') await this.#probeThreadpool();
  }

  /**
   * Every worker now waits in the kernel. If that took the threadpool's last thread, a trivial
   * threadpool call cannot finish until the next FUSE request arrives, and neither can the
   * FileSystem's own file I/O: the mount would hang on first use. Typical cause: UV_THREADPOOL_SIZE
   * was assigned after the pool had started (in an ES module entry, even its first line is too late).
   */
  async #probeThreadpool(): Promise<void> {
    const before = this.#requestCount();
    const ac = new AbortController();
    const ran = await Promise.race([
      fsp.stat('/').then(() => true, () => true),
      sleep(THREADPOOL_PROBE_MS, ac.signal).then(() => false),
    ]);
    ac.abort();
    if (!ran && this.#requestCount() === before) {
      this.#logger.error('libuv threadpool has no free thread: FUSE reads hold them all and file I/O will hang', {
        mountpoint: this.mountpoint, workers: this.#workers,
        hint: 'set UV_THREADPOOL_SIZE in the environment the process starts with, and pass that value as threadpoolSize',
      });
    }
  }

  #requestCount(): number {
    let n = 0;
    for (const v of Object.values(this.#dispatcher.stats.requests)) n += v;
    return n;
  }

  async #finish(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    releaseWorkers(this.#workers);
    this.#dispatcher.close();
    this.#rejectInit(new NydusError('ERR_FUSE_INIT', `Cannot mount ${this.mountpoint}: the connection ended`));
    try {
      await this.#reader?.close();
    } catch (e) {
      this.#logger.warn('cannot close /dev/fuse', { error: (e as Error).message });
    }
    try {
      this.#fs.destroy?.();
    } catch (e) {
      this.#logger.warn('FileSystem destroy failed', { error: (e as Error).message });
    }
    this.#logger.debug('FUSE session ended', { mountpoint: this.mountpoint });
    this.#resolveClosed();
  }

  unmount(): Promise<void> {
    if (!this.#unmounting) {
      const p = this.#unmount();
      this.#unmounting = p;
      p.catch(() => { this.#unmounting = undefined; });
    }
    return this.#unmounting;
  }

  async #unmount(): Promise<void> {
    const top = await topMountAt(this.mountpoint);
    const ours = top !== undefined && (this.#device === '' ? top.fstype.startsWith('fuse') : top.device === this.#device);
    if (ours) {
      const r = await umount(this.mountpoint);
      if (r.code !== 0 && (await this.#stillMounted())) {
        this.#logger.warn('umount failed, unmounting lazily', { mountpoint: this.mountpoint, error: r.stderr });
        const lazy = await umount(this.mountpoint, true);
        if (lazy.code !== 0 && (await this.#stillMounted())) {
          throw new NydusError('ERR_UNMOUNT', `Cannot unmount ${this.mountpoint}: ${r.stderr}; lazy unmount: ${lazy.stderr}`, { path: this.mountpoint });
        }
      }
    } else if (!this.#ended && this.#device !== '') {
      this.#logger.warn('mount point is covered or gone; aborting the connection', { mountpoint: this.mountpoint });
      await abortConnection(this.#device);
    }
    if (this.#ended) return;
    const ac = new AbortController();
    const done = await Promise.race([this.closed.then(() => true), sleep(this.#unmountTimeoutMs, ac.signal).then(() => false)]);
    ac.abort();
    if (done) return;
    if (this.#device === '') {
      this.#logger.error('FUSE session does not end and its device is unknown', { mountpoint: this.mountpoint });
      return;
    }
    this.#logger.warn('files still open after unmount; aborting the connection', { mountpoint: this.mountpoint, device: this.#device });
    await abortConnection(this.#device);
    await this.closed;
  }

  async #stillMounted(): Promise<boolean> {
    const top = await topMountAt(this.mountpoint);
    return top !== undefined && (this.#device === '' || top.device === this.#device);
  }
}
