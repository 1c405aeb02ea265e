/**
 * Turns FUSE requests into FileSystem calls and FileSystem answers into reply bytes. No I/O of its
 * own: the session hands it one request at a time (a private copy) and gives it a synchronous
 * `write` for replies. Requests run concurrently; replies go out in completion order.
 * @module
 */
import type { Entry, FileSystem, RequestContext } from './file-system.js';
import type { Logger } from '../util/logger.js';
import { ERRNO, FuseError } from './file-system.js';
import { NydusError } from '../util/errors.js';
import { viewOf } from '../util/bytes.js';
import {
  ATTR_OUT_SIZE, ENTRY_OUT_SIZE, FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, FUSE_MIN_KERNEL_MINOR, FuseOpcode,
  GETXATTR_IN_SIZE, GETXATTR_OUT_SIZE, IN_HEADER_SIZE, INIT_OUT_SIZE, InitFlag, InitFlag2, O_ACCMODE, O_RDONLY, O_TRUNC,
  OPEN_OUT_SIZE, OUT_HEADER_SIZE, OpenFlag, STATFS_OUT_SIZE, W_OK, WRITE_OPCODES, decodeAccessIn, decodeBatchForget,
  decodeForgetIn, decodeGetxattrIn, decodeInHeader, decodeInitIn, decodeInterruptIn, decodeOpenIn, decodeReadIn,
  decodeReleaseIn, direntSize, direntplusSize, encodeAttrOut, encodeDirent, encodeDirentplus, encodeEntryOut,
  encodeGetxattrOut, encodeInitOut, encodeOpenOut, encodeOutHeader, encodeStatfsOut, opcodeName,
  type InHeader, type InitIn, type InitOut,
} from './abi/index.js';

/** The logging a session does: a project Logger without `child`. */
export type FuseLogger = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

/** Counters of one session. */
export interface FuseStats {
  /** Requests received, by opcode name (`LOOKUP`, `READ` …). */
  requests: Record<string, number>;
  /** Error replies sent, by opcode name. */
  errors: Record<string, number>;
  /** Requests being served right now. */
  inflight: number;
  /** Requests answered EINTR because the kernel interrupted them. */
  interrupted: number;
  /** File data bytes answered to READ. */
  readBytes: number;
}

/** What INIT settled on. */
export interface InitResult {
  kernel: InitIn;
  reply: InitOut;
}

/** Options of a {@link Dispatcher}. */
export interface DispatcherOptions {
  /** Writes one reply (one writev of all chunks). Throws the system error (ENOENT: request gone). */
  write(chunks: Uint8Array[]): void;
  logger: FuseLogger;
  /** Replaces the FileSystem's entryValid in every entry (seconds). */
  entryTimeout?: number;
  /** Replaces the FileSystem's attrValid in every entry and GETATTR reply (seconds). */
  attrTimeout?: number;
  /** Seconds the kernel may cache "no such name" (ENOENT from lookup). Default 0: not cached. */
  negativeTimeout?: number;
  /** Cap on the kernel's readahead offer (bytes). Default: what the kernel offers. */
  maxReadahead?: number;
  /** INIT was answered (successfully). */
  onInit(result: InitResult): void;
  /** INIT failed: the kernel speaks a protocol this module cannot serve. */
  onInitError(err: Error): void;
  /** DESTROY arrived (and was answered). */
  onDestroy(): void;
}

/**
 * INIT flags asked for (each only when the kernel offers it). READDIRPLUS always, not "auto": an
 * image's metadata is all local, so handing the kernel every entry with its attributes saves one
 * LOOKUP round trip per name on the walks containers do (ls -l, find).
 */
export const WANTED_INIT_FLAGS =
  InitFlag.ASYNC_READ | InitFlag.BIG_WRITES | InitFlag.PARALLEL_DIROPS | InitFlag.MAX_PAGES | InitFlag.CACHE_SYMLINKS |
  InitFlag.DO_READDIRPLUS | InitFlag.ASYNC_DIO | InitFlag.EXPLICIT_INVAL_DATA;
/** flags2 bits asked for (need INIT_EXT). */
export const WANTED_INIT_FLAGS2 = InitFlag2.DIRECT_IO_ALLOW_MMAP;
/** Largest WRITE payload, and (with max_pages) the largest READ: 1 MiB. */
export const MAX_WRITE = 1 << 20;
/** Pages per request: 256 × 4 KiB = 1 MiB (the kernel clamps to fs.fuse.max_pages_limit). */
export const MAX_PAGES = 256;
/** Background (readahead) requests the kernel keeps in flight. */
export const MAX_BACKGROUND = 64;
const CONGESTION_THRESHOLD = 48;
const EPROTO = 71;
/** writev takes at most IOV_MAX (1024) buffers. */
const MAX_IOV = 1000;

/** Requests without side effects in the FileSystem: an INTERRUPT may answer them EINTR at once. */
const INTERRUPTIBLE: ReadonlySet<number> = new Set<number>([
  FuseOpcode.READ, FuseOpcode.READDIR, FuseOpcode.READDIRPLUS, FuseOpcode.GETXATTR, FuseOpcode.LISTXATTR,
  FuseOpcode.READLINK, FuseOpcode.GETATTR, FuseOpcode.STATFS, FuseOpcode.ACCESS,
]);

interface Pending {
  opcode: number;
  answered: boolean;
}

/** A positive errno for an error thrown by the FileSystem: its `errno` when a positive integer, else EIO. */
export function errnoFrom(e: unknown): number {
  const n = typeof e === 'object' && e !== null ? (e as { errno?: unknown }).errno : undefined;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 4096 ? n : ERRNO.EIO;
}

/** The bytes from `from` up to the first NUL (or `end`). */
function cString(msg: Uint8Array, from: number, end: number): Uint8Array {
  let i = from;
  while (i < end && msg[i] !== 0) i++;
  return msg.subarray(from, i);
}

/** Serves FUSE requests from a FileSystem. */
export class Dispatcher {
  readonly #fs: FileSystem;
  readonly #o: DispatcherOptions;
  readonly #inflight = new Map<bigint, Pending>();
  readonly #requests = new Map<number, number>();
  readonly #errors = new Map<number, number>();
  #interrupted = 0;
  #readBytes = 0;
  #closed = false;

  constructor(fs: FileSystem, options: DispatcherOptions) {
    this.#fs = fs;
    this.#o = options;
  }

  /** A snapshot of the counters. */
  get stats(): FuseStats {
    const byName = (m: Map<number, number>): Record<string, number> =>
      Object.fromEntries([...m].map(([op, n]) => [opcodeName(op), n]));
    return {
      requests: byName(this.#requests), errors: byName(this.#errors), inflight: this.#inflight.size,
      interrupted: this.#interrupted, readBytes: this.#readBytes,
    };
  }

  /** Stop writing replies (the device is gone); requests still running finish silently. */
  close(): void {
    this.#closed = true;
  }

  /** Handles one request. `msg` must stay untouched by the caller (names are sliced from it). */
  handle(msg: Uint8Array): void {
    const view = viewOf(msg);
    let h: InHeader;
    try {
      h = decodeInHeader(view, 0);
    } catch (e) {
      this.#o.logger.error('bad FUSE request header', { bytes: msg.length, error: (e as Error).message });
      if (msg.length >= 16) this.#reply(view.getBigUint64(8, true), -ERRNO.EIO);
      return;
    }
    this.#requests.set(h.opcode, (this.#requests.get(h.opcode) ?? 0) + 1);
    const end = Math.min(h.len, msg.length);
    const at = IN_HEADER_SIZE;
    try {
      switch (h.opcode) {
        case FuseOpcode.INIT:
          this.#init(h, view, end);
          return;
        case FuseOpcode.FORGET:
          this.#forget(h.nodeid, decodeForgetIn(view, at).nlookup);
          return;
        case FuseOpcode.BATCH_FORGET:
          for (const f of decodeBatchForget(view, at)) this.#forget(f.nodeid, f.nlookup);
          return;
        case FuseOpcode.INTERRUPT:
          this.#interrupt(decodeInterruptIn(view, at).unique);
          return;
        case FuseOpcode.NOTIFY_REPLY:
          return;
        case FuseOpcode.DESTROY:
          this.#reply(h.unique, 0);
          this.#o.onDestroy();
          return;
        case FuseOpcode.LOOKUP: {
          const name = cString(msg, at, end);
          this.#serve(h, () => this.#lookup(h, name));
          return;
        }
        case FuseOpcode.GETATTR:
          this.#serve(h, () => this.#getattr(h));
          return;
        case FuseOpcode.READLINK:
          this.#serve(h, async () => [await this.#fs.readlink(h.nodeid, ctxOf(h))]);
          return;
        case FuseOpcode.OPEN: {
          const { flags } = decodeOpenIn(view, at);
          this.#serve(h, () => this.#open(h, flags, false));
          return;
        }
        case FuseOpcode.OPENDIR: {
          const { flags } = decodeOpenIn(view, at);
          this.#serve(h, () => this.#open(h, flags, true));
          return;
        }
        case FuseOpcode.READ: {
          const r = decodeReadIn(view, at);
          this.#serve(h, () => this.#read(h, r.fh, r.offset, r.size));
          return;
        }
        case FuseOpcode.READDIR:
        case FuseOpcode.READDIRPLUS: {
          const r = decodeReadIn(view, at);
          this.#serve(h, () => this.#readdir(h, r.fh, r.offset, r.size, h.opcode === FuseOpcode.READDIRPLUS));
          return;
        }
        case FuseOpcode.RELEASE:
        case FuseOpcode.RELEASEDIR: {
          const { fh } = decodeReleaseIn(view, at);
          this.#serve(h, async () => {
            await (h.opcode === FuseOpcode.RELEASE ? this.#fs.release(h.nodeid, fh) : this.#fs.releasedir(h.nodeid, fh));
            return [];
          });
          return;
        }
        case FuseOpcode.STATFS:
          this.#serve(h, async () => {
            const out = new Uint8Array(STATFS_OUT_SIZE);
            encodeStatfsOut(await this.#fs.statfs(h.nodeid), viewOf(out), 0);
            return [out];
          });
          return;
        case FuseOpcode.GETXATTR: {
          const { size } = decodeGetxattrIn(view, at);
          const name = Buffer.from(cString(msg, at + GETXATTR_IN_SIZE, end)).toString('utf8');
          this.#serve(h, async () => sized(await this.#fs.getxattr(h.nodeid, name, ctxOf(h)), size));
          return;
        }
        case FuseOpcode.LISTXATTR: {
          const { size } = decodeGetxattrIn(view, at);
          this.#serve(h, async () => {
            const names = await this.#fs.listxattr(h.nodeid, ctxOf(h));
            return sized(Buffer.from(names.map((n) => `${n}\0`).join(''), 'utf8'), size);
          });
          return;
        }
        case FuseOpcode.ACCESS: {
          const { mask } = decodeAccessIn(view, at);
          this.#serve(h, async () => {
            if ((mask & W_OK) !== 0) throw new FuseError(ERRNO.EROFS, 'Cannot grant write access: read-only file system');
            await this.#fs.access(h.nodeid, mask, ctxOf(h));
            return [];
          });
          return;
        }
        case FuseOpcode.FLUSH:
        case FuseOpcode.FSYNC:
        case FuseOpcode.FSYNCDIR:
          // Nothing to flush or sync on a read-only file system. ENOSYS, not 0: the kernel then
          // counts these as done and stops sending them (one round trip less per close).
          this.#replyError(h, ERRNO.ENOSYS);
          return;
        default:
          this.#replyError(h, WRITE_OPCODES.has(h.opcode) ? ERRNO.EROFS : ERRNO.ENOSYS);
      }
    } catch (e) {
      // The arguments did not decode (truncated request).
      this.#o.logger.warn('malformed FUSE request', { op: opcodeName(h.opcode), bytes: msg.length, error: (e as Error).message });
      this.#replyError(h, ERRNO.EINVAL);
    }
  }

  #init(h: InHeader, view: DataView, end: number): void {
    const k = decodeInitIn(view, IN_HEADER_SIZE, end - IN_HEADER_SIZE);
    if (k.major > FUSE_KERNEL_VERSION) {
      // Answer with our major version only; the kernel sends a new INIT.
      const out = new Uint8Array(8);
      const v = viewOf(out);
      v.setUint32(0, FUSE_KERNEL_VERSION, true);
      v.setUint32(4, FUSE_KERNEL_MINOR_VERSION, true);
      this.#reply(h.unique, 0, [out]);
      return;
    }
    if (k.major < FUSE_KERNEL_VERSION || k.minor < FUSE_MIN_KERNEL_MINOR) {
      this.#replyError(h, EPROTO);
      this.#o.onInitError(new NydusError('ERR_FUSE_PROTOCOL',
        `Cannot serve FUSE ${k.major}.${k.minor}: needs ${FUSE_KERNEL_VERSION}.${FUSE_MIN_KERNEL_MINOR} or newer`));
      return;
    }
    const minor = Math.min(k.minor, FUSE_KERNEL_MINOR_VERSION);
    let flags = WANTED_INIT_FLAGS & k.flags;
    let flags2 = 0;
    if ((k.flags & InitFlag.INIT_EXT) !== 0) {
      flags2 = WANTED_INIT_FLAGS2 & k.flags2;
      if (flags2 !== 0) flags |= InitFlag.INIT_EXT;
    }
    const reply: InitOut = {
      major: FUSE_KERNEL_VERSION, minor,
      maxReadahead: Math.min(k.maxReadahead, this.#o.maxReadahead ?? k.maxReadahead),
      flags: flags >>> 0, maxBackground: MAX_BACKGROUND, congestionThreshold: CONGESTION_THRESHOLD,
      maxWrite: MAX_WRITE, timeGran: 1, maxPages: MAX_PAGES, mapAlignment: 0, flags2: flags2 >>> 0,
      maxStackDepth: 0, requestTimeout: 0,
    };
    const out = new Uint8Array(INIT_OUT_SIZE);
    encodeInitOut(reply, viewOf(out), 0);
    this.#reply(h.unique, 0, [out]);
    this.#o.onInit({ kernel: k, reply });
  }

  #forget(nodeid: number, nlookup: number): void {
    try {
      this.#fs.forget(nodeid, nlookup);
    } catch (e) {
      this.#o.logger.warn('forget failed', { nodeid, error: (e as Error).message });
    }
  }

  #interrupt(unique: bigint): void {
    const p = this.#inflight.get(unique);
    if (!p || p.answered || !INTERRUPTIBLE.has(p.opcode)) return;
    p.answered = true;
    this.#interrupted++;
    this.#errors.set(p.opcode, (this.#errors.get(p.opcode) ?? 0) + 1);
    this.#reply(unique, -ERRNO.EINTR);
  }

  async #lookup(h: InHeader, name: Uint8Array): Promise<Uint8Array[]> {
    let e: Entry;
    try {
      e = await this.#fs.lookup(h.nodeid, name, ctxOf(h));
    } catch (err) {
      const neg = this.#o.negativeTimeout ?? 0;
      if (neg <= 0 || errnoFrom(err) !== ERRNO.ENOENT) throw err;
      // nodeid 0 with a timeout: the kernel caches the absence of the name.
      e = {
        nodeid: 0, generation: 0, entryValid: neg, attrValid: 0,
        attr: { ino: 0, size: 0, blocks: 0, atime: 0, atimeNsec: 0, mtime: 0, mtimeNsec: 0, ctime: 0, ctimeNsec: 0, mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, blksize: 0 },
      };
      const out = new Uint8Array(ENTRY_OUT_SIZE);
      encodeEntryOut(e, viewOf(out), 0);
      return [out];
    }
    const out = new Uint8Array(ENTRY_OUT_SIZE);
    encodeEntryOut(this.#timeouts(e), viewOf(out), 0);
    return [out];
  }

  async #getattr(h: InHeader): Promise<Uint8Array[]> {
    const { attr, attrValid } = await this.#fs.getattr(h.nodeid, ctxOf(h));
    const out = new Uint8Array(ATTR_OUT_SIZE);
    encodeAttrOut({ attr, attrValid: this.#o.attrTimeout ?? attrValid }, viewOf(out), 0);
    return [out];
  }

  async #open(h: InHeader, flags: number, dir: boolean): Promise<Uint8Array[]> {
    if (!dir && ((flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0)) {
      throw new FuseError(ERRNO.EROFS, 'Cannot open for writing: read-only file system');
    }
    const r = dir ? await this.#fs.opendir(h.nodeid, flags, ctxOf(h)) : await this.#fs.open(h.nodeid, flags, ctxOf(h));
    const openFlags = (r.keepCache ? OpenFlag.KEEP_CACHE : 0) | (r.directIo ? OpenFlag.DIRECT_IO : 0) | (r.cacheDir ? OpenFlag.CACHE_DIR : 0);
    const out = new Uint8Array(OPEN_OUT_SIZE);
    encodeOpenOut({ fh: r.fh, openFlags }, viewOf(out), 0);
    return [out];
  }

  async #read(h: InHeader, fh: number, offset: number, size: number): Promise<Uint8Array[]> {
    if (size === 0) return [];
    const data = await this.#fs.read(h.nodeid, fh, offset, size, ctxOf(h));
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (const c of Array.isArray(data) ? data : [data]) {
      if (total >= size) break;
      const take = Math.min(c.length, size - total);
      if (take > 0) chunks.push(take === c.length ? c : c.subarray(0, take));
      total += take;
    }
    this.#readBytes += total;
    return chunks.length > MAX_IOV ? [Buffer.concat(chunks)] : chunks;
  }

  async #readdir(h: InHeader, fh: number, offset: number, size: number, plus: boolean): Promise<Uint8Array[]> {
    const entries = await this.#fs.readdir(h.nodeid, fh, offset, plus, ctxOf(h));
    let used = 0;
    let n = 0;
    for (const d of entries) {
      const sz = plus ? direntplusSize(d.name.length) : direntSize(d.name.length);
      if (used + sz > size) break;
      used += sz;
      n++;
    }
    if (n === 0 && entries.length > 0) {
      throw new FuseError(ERRNO.EINVAL, `Cannot list directory: a ${size}-byte buffer does not hold one entry`);
    }
    const out = new Uint8Array(used);
    let off = 0;
    for (let i = 0; i < n; i++) {
      const d = entries[i]!;
      off += plus
        ? encodeDirentplus(d.entry === undefined ? undefined : this.#timeouts(d.entry), d, out, off)
        : encodeDirent(d, out, off);
    }
    return [out];
  }

  #timeouts(e: Entry): Entry {
    if (this.#o.entryTimeout === undefined && this.#o.attrTimeout === undefined) return e;
    return { ...e, entryValid: this.#o.entryTimeout ?? e.entryValid, attrValid: this.#o.attrTimeout ?? e.attrValid };
  }

  /** Runs `op`, then answers with its chunks or with the errno it threw. Never rejects. */
  #serve(h: InHeader, op: () => Promise<Uint8Array[]>): void {
    const p: Pending = { opcode: h.opcode, answered: false };
    this.#inflight.set(h.unique, p);
    void (async () => {
      try {
        const chunks = await op();
        if (!p.answered) {
          p.answered = true;
          this.#reply(h.unique, 0, chunks);
        }
      } catch (e) {
        const errno = errnoFrom(e);
        if (errno === ERRNO.EIO) {
          this.#o.logger.warn('FUSE request failed', { op: opcodeName(h.opcode), nodeid: h.nodeid, error: (e as Error)?.message ?? String(e) });
        }
        if (!p.answered) {
          p.answered = true;
          this.#replyError(h, errno);
        }
      } finally {
        this.#inflight.delete(h.unique);
      }
    })();
  }

  #replyError(h: InHeader, errno: number): void {
    this.#errors.set(h.opcode, (this.#errors.get(h.opcode) ?? 0) + 1);
    this.#reply(h.unique, -errno);
  }

  #reply(unique: bigint, error: number, chunks: Uint8Array[] = []): void {
    if (this.#closed) return;
    let len = OUT_HEADER_SIZE;
    for (const c of chunks) len += c.length;
    const hdr = new Uint8Array(OUT_HEADER_SIZE);
    encodeOutHeader({ len, error, unique }, viewOf(hdr), 0);
    try {
      this.#o.write(chunks.length === 0 ? [hdr] : [hdr, ...chunks]);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOENT: the request was interrupted or aborted meanwhile. ENODEV: the mount is gone.
      if (code === 'ENOENT' || code === 'ENODEV' || code === 'ECONNABORTED') return;
      this.#o.logger.error('cannot write FUSE reply', { unique: String(unique), len, error: (e as Error).message });
    }
  }
}

function ctxOf(h: InHeader): RequestContext {
  return { uid: h.uid, gid: h.gid, pid: h.pid };
}

/** The GETXATTR/LISTXATTR answer: the size for a size-0 query, ERANGE when it does not fit. */
function sized(value: Uint8Array, size: number): Uint8Array[] {
  if (size === 0) {
    const out = new Uint8Array(GETXATTR_OUT_SIZE);
    encodeGetxattrOut({ size: value.length }, viewOf(out), 0);
    return [out];
  }
  if (value.length > size) throw new FuseError(ERRNO.ERANGE, `Cannot return ${value.length} bytes of xattr data into ${size}`);
  return [value];
}
