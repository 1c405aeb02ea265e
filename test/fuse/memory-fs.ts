/**
 * A small in-memory FileSystem for the FUSE tests: directories, files (data in memory or failing
 * reads), symlinks and xattrs. Node ids are inode numbers; the root is 1.
 */
import {
  ERRNO, FuseError, type Attr, type DirEntry, type Entry, type FileSystem, type OpenResult, type StatFs,
} from '../../src/fuse/file-system.js';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

interface Node {
  ino: number;
  parent: number;
  mode: number;
  mtime: number;
  /** Directory children in insertion order. */
  children?: Map<string, number>;
  data?: Uint8Array;
  target?: Uint8Array;
  xattrs: Map<string, Uint8Array>;
  /** Reading throws this (an errno or a plain error). */
  readError?: () => Error;
}

/** Deterministic pseudo-random bytes (xorshift32) — the same for the same seed and size. */
export function patternBytes(size: number, seed = 0x9e3779b9): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    buf.writeUInt32LE(x, i);
  }
  for (; i < size; i++) buf[i] = i & 0xff;
  return buf;
}

/** An in-memory read-only tree served over FUSE. */
export class MemoryFs implements FileSystem {
  readonly nodes = new Map<number, Node>();
  /** Outstanding lookup counts by node (LOOKUP and READDIRPLUS entries add, FORGET subtracts). */
  readonly lookups = new Map<number, number>();
  /** Calls by method, for assertions. */
  readonly calls = new Map<string, number>();
  destroyed = false;
  timeout = 1;
  #nextIno = 2;
  #nextFh = 1;

  constructor() {
    this.nodes.set(1, { ino: 1, parent: 1, mode: S_IFDIR | 0o755, mtime: 1_700_000_000, children: new Map(), xattrs: new Map() });
  }

  #add(parent: number, name: string, node: Omit<Node, 'ino' | 'parent' | 'xattrs' | 'mtime'>): number {
    const dir = this.nodes.get(parent);
    if (!dir?.children) throw new Error(`not a directory: ${parent}`);
    const ino = this.#nextIno++;
    this.nodes.set(ino, { ino, parent, mtime: 1_700_000_000 + ino, xattrs: new Map(), ...node });
    dir.children.set(name, ino);
    return ino;
  }

  mkdir(parent: number, name: string, perm = 0o755): number {
    return this.#add(parent, name, { mode: S_IFDIR | perm, children: new Map() });
  }

  addFile(parent: number, name: string, data: Uint8Array | string, perm = 0o644): number {
    return this.#add(parent, name, { mode: S_IFREG | perm, data: typeof data === 'string' ? Buffer.from(data) : data });
  }

  addFailingFile(parent: number, name: string, size: number, err: () => Error): number {
    return this.#add(parent, name, { mode: S_IFREG | 0o644, data: new Uint8Array(size), readError: err });
  }

  addSymlink(parent: number, name: string, target: string): number {
    return this.#add(parent, name, { mode: S_IFLNK | 0o777, target: Buffer.from(target) });
  }

  setXattr(ino: number, name: string, value: Uint8Array | string): void {
    this.#node(ino).xattrs.set(name, typeof value === 'string' ? Buffer.from(value) : value);
  }

  #count(m: string): void {
    this.calls.set(m, (this.calls.get(m) ?? 0) + 1);
  }

  #node(ino: number): Node {
    const n = this.nodes.get(ino);
    if (!n) throw new FuseError(ERRNO.ENOENT, `no node ${ino}`);
    return n;
  }

  attrOf(n: Node): Attr {
    const size = n.data?.length ?? n.target?.length ?? (n.children ? 4096 : 0);
    return {
      ino: n.ino, size, blocks: Math.ceil(size / 512), atime: n.mtime, atimeNsec: 0, mtime: n.mtime, mtimeNsec: 123,
      ctime: n.mtime, ctimeNsec: 0, mode: n.mode, nlink: n.children ? 2 : 1, uid: 1000, gid: 100, rdev: 0, blksize: 4096,
    };
  }

  #entry(n: Node): Entry {
    this.lookups.set(n.ino, (this.lookups.get(n.ino) ?? 0) + 1);
    return { nodeid: n.ino, generation: 1, entryValid: this.timeout, attrValid: this.timeout, attr: this.attrOf(n) };
  }

  async lookup(parent: number, name: Uint8Array): Promise<Entry> {
    this.#count('lookup');
    const dir = this.#node(parent);
    if (!dir.children) throw new FuseError(ERRNO.ENOTDIR, 'not a directory');
    const ino = dir.children.get(Buffer.from(name).toString());
    if (ino === undefined) throw new FuseError(ERRNO.ENOENT, 'no such name');
    return this.#entry(this.#node(ino));
  }

  forget(nodeid: number, nlookup: number): void {
    this.#count('forget');
    this.lookups.set(nodeid, (this.lookups.get(nodeid) ?? 0) - nlookup);
  }

  async getattr(nodeid: number): Promise<{ attr: Attr; attrValid: number }> {
    this.#count('getattr');
    return { attr: this.attrOf(this.#node(nodeid)), attrValid: this.timeout };
  }

  async readlink(nodeid: number): Promise<Uint8Array> {
    const n = this.#node(nodeid);
    if (!n.target) throw new FuseError(ERRNO.EINVAL, 'not a symlink');
    return n.target;
  }

  async open(nodeid: number): Promise<OpenResult> {
    this.#count('open');
    const n = this.#node(nodeid);
    if (n.children) throw new FuseError(ERRNO.EISDIR, 'is a directory');
    return { fh: this.#nextFh++, keepCache: true };
  }

  async read(nodeid: number, _fh: number, offset: number, size: number): Promise<Uint8Array | Uint8Array[]> {
    this.#count('read');
    const n = this.#node(nodeid);
    if (n.readError) throw n.readError();
    const data = n.data ?? new Uint8Array(0);
    return data.subarray(Math.min(offset, data.length), Math.min(offset + size, data.length));
  }

  async release(): Promise<void> {
    this.#count('release');
  }

  async opendir(nodeid: number): Promise<OpenResult> {
    this.#count('opendir');
    if (!this.#node(nodeid).children) throw new FuseError(ERRNO.ENOTDIR, 'not a directory');
    return { fh: this.#nextFh++, cacheDir: false };
  }

  async readdir(nodeid: number, _fh: number, offset: number, plus: boolean): Promise<DirEntry[]> {
    this.#count(plus ? 'readdirplus' : 'readdir');
    const dir = this.#node(nodeid);
    const all: Array<{ name: string; ino: number }> = [
      { name: '.', ino: dir.ino }, { name: '..', ino: dir.parent }, ...[...dir.children!].map(([name, ino]) => ({ name, ino })),
    ];
    const out: DirEntry[] = [];
    // A batch of up to 200: the session packs what fits and asks again.
    for (let i = offset; i < all.length && out.length < 200; i++) {
      const { name, ino } = all[i]!;
      const n = this.#node(ino);
      const d: DirEntry = { ino, off: i + 1, type: (n.mode >> 12) & 0xf, name: Buffer.from(name) };
      out.push(plus && i >= 2 ? { ...d, entry: this.#entry(n) } : d);
    }
    return out;
  }

  async releasedir(): Promise<void> {
    this.#count('releasedir');
  }

  async statfs(): Promise<StatFs> {
    return { blocks: 1000, bfree: 0, bavail: 0, files: this.nodes.size, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  async getxattr(nodeid: number, name: string): Promise<Uint8Array> {
    const v = this.#node(nodeid).xattrs.get(name);
    if (!v) throw new FuseError(ERRNO.ENODATA, 'no such xattr');
    return v;
  }

  async listxattr(nodeid: number): Promise<string[]> {
    return [...this.#node(nodeid).xattrs.keys()];
  }

  async access(): Promise<void> {}

  destroy(): void {
    this.destroyed = true;
  }
}
