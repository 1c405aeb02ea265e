/**
 * Deep comparison of two directory trees as a container runtime sees them: presence, type, mode,
 * owner, mtime (ns), size, content, symlink target, rdev, xattrs (all namespaces) and hardlink
 * groups. Never follows symlinks. Returns human-readable differences.
 * @module
 */
import * as fsp from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import * as path from 'node:path';
import xattr from '@napi-rs/xattr';

/** Options of {@link compareTrees}. */
export interface CompareOptions {
  /** Skip mode, uid, gid and mtime of the two roots (e.g. a mount point vs. a source dir). */
  ignoreRootAttrs?: boolean;
  /** Paths (relative, '/'-separated, root is '.') to leave out; an ignored directory is not
   * descended into. Applied to both trees. */
  ignore?: (relPath: string) => boolean;
  /** Compare mtimes to the nanosecond (default true). */
  compareMtime?: boolean;
  /** atime is never compared; the option only says so. */
  compareAtime?: false;
  /** Stop after this many differences (default 500); a last line tells how many more. */
  maxDiffs?: number;
}

const S_IFMT = 0o170000n;
const TYPE_NAMES: Record<string, string> = {
  [String(0o140000)]: 'socket',
  [String(0o120000)]: 'symlink',
  [String(0o100000)]: 'file',
  [String(0o060000)]: 'blockdev',
  [String(0o040000)]: 'dir',
  [String(0o020000)]: 'chardev',
  [String(0o010000)]: 'fifo',
};

function typeName(mode: bigint): string {
  return TYPE_NAMES[String(mode & S_IFMT)] ?? `type 0o${(mode & S_IFMT).toString(8)}`;
}
const oct = (m: bigint) => (m & 0o7777n).toString(8).padStart(4, '0');
const isDir = (st: BigIntStats) => (st.mode & S_IFMT) === 0o040000n;
const isReg = (st: BigIntStats) => (st.mode & S_IFMT) === 0o100000n;
const isLnk = (st: BigIntStats) => (st.mode & S_IFMT) === 0o120000n;
const isDev = (st: BigIntStats) => (st.mode & S_IFMT) === 0o020000n || (st.mode & S_IFMT) === 0o060000n;

/** "sec.nnnnnnnnn" of a bigint nanosecond timestamp. */
function fmtNs(ns: bigint): string {
  const neg = ns < 0n;
  const a = neg ? -ns : ns;
  return `${neg ? '-' : ''}${a / 1000000000n}.${(a % 1000000000n).toString().padStart(9, '0')}`;
}

function fmtBytes(b: Buffer): string {
  const printable = /^[\x20-\x7e]*$/.test(b.toString('latin1'));
  if (printable && b.length <= 80) return JSON.stringify(b.toString('latin1'));
  const hex = b.subarray(0, 32).toString('hex');
  return `0x${hex}${b.length > 32 ? `… (${b.length} bytes)` : ''}`;
}

function devStr(rdev: bigint): string {
  // glibc encoding of dev_t
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** All xattrs of `p` (not following symlinks), name → value. */
function readXattrs(p: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let names: string[];
  try {
    names = xattr.listAttributesSync(p);
  } catch (e) {
    throw new Error(`Cannot list xattrs of ${p}: ${(e as Error).message}`);
  }
  for (const n of names.sort()) {
    const v = xattr.getAttributeSync(p, n);
    out.set(n, v ?? Buffer.alloc(0));
  }
  return out;
}

/** Compares the contents of two regular files of equal size, reading both in 4 MiB steps.
 * Returns the first differing offset, or -1 when equal. */
async function firstContentDiff(a: string, b: string, size: bigint): Promise<number> {
  const STEP = 4 * 1024 * 1024;
  const ha = await fsp.open(a, 'r');
  try {
    const hb = await fsp.open(b, 'r');
    try {
      const ba = Buffer.allocUnsafe(STEP);
      const bb = Buffer.allocUnsafe(STEP);
      let pos = 0;
      const total = Number(size);
      while (pos < total) {
        const want = Math.min(STEP, total - pos);
        const [ra, rb] = await Promise.all([readFully(ha, ba, want, pos), readFully(hb, bb, want, pos)]);
        const n = Math.min(ra, rb);
        if (!ba.subarray(0, n).equals(bb.subarray(0, n))) {
          for (let i = 0; i < n; i++) if (ba[i] !== bb[i]) return pos + i;
        }
        if (ra !== rb || n === 0) return pos + n; // one of them is shorter than its size says
        pos += n;
      }
      return -1;
    } finally {
      await hb.close();
    }
  } finally {
    await ha.close();
  }
}

async function readFully(h: fsp.FileHandle, buf: Buffer, want: number, pos: number): Promise<number> {
  let got = 0;
  while (got < want) {
    const { bytesRead } = await h.read(buf, got, want - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

class DiffList {
  readonly items: string[] = [];
  dropped = 0;
  constructor(private readonly max: number) {}
  add(s: string): void {
    if (this.items.length < this.max) this.items.push(s);
    else this.dropped++;
  }
  result(): string[] {
    return this.dropped > 0 ? [...this.items, `… and ${this.dropped} more differences`] : this.items;
  }
}

const join = (rel: string, name: string) => (rel === '.' ? name : `${rel}/${name}`);

/** Counts entries below a directory (for "missing dir with N entries" messages). */
async function countEntries(dir: string): Promise<number> {
  let n = 0;
  const names = await fsp.readdir(dir, { withFileTypes: true });
  for (const d of names) {
    n++;
    if (d.isDirectory()) n += await countEntries(path.join(dir, d.name));
  }
  return n;
}

/**
 * Compares the trees at `expected` and `actual` (lstat only, never following symlinks) and
 * returns the differences, one human-readable line each; empty means equal. Per path: presence
 * both ways, type, mode (incl. set-id/sticky), uid, gid, mtime (ns, unless `compareMtime: false`),
 * size and content (regular files; streamed, so sparse multi-GiB files are fine), symlink target
 * (bytes), rdev (devices), xattrs (all namespaces, incl. on symlinks), and hardlink groups: the
 * partition of the non-directory paths present in both trees by (dev, ino) must be the same.
 * Directory size and nlink, atime and ctime are not compared.
 */
export async function compareTrees(expected: string, actual: string, options: CompareOptions = {}): Promise<string[]> {
  const diffs = new DiffList(options.maxDiffs ?? 500);
  const compareMtime = options.compareMtime ?? true;
  const ignore = options.ignore ?? (() => false);
  // (dev:ino) per relative path, for non-directories present in both trees
  const inoE = new Map<string, string>();
  const inoA = new Map<string, string>();

  const compareEntry = async (rel: string, e: string, a: string, se: BigIntStats, sa: BigIntStats) => {
    const isRoot = rel === '.';
    const where = rel;
    if ((se.mode & S_IFMT) !== (sa.mode & S_IFMT)) {
      diffs.add(`${where}: type ${typeName(se.mode)} != ${typeName(sa.mode)}`);
      return;
    }
    const skipAttrs = isRoot && options.ignoreRootAttrs === true;
    if (!skipAttrs) {
      if ((se.mode & 0o7777n) !== (sa.mode & 0o7777n)) diffs.add(`${where}: mode ${oct(se.mode)} != ${oct(sa.mode)}`);
      if (se.uid !== sa.uid) diffs.add(`${where}: uid ${se.uid} != ${sa.uid}`);
      if (se.gid !== sa.gid) diffs.add(`${where}: gid ${se.gid} != ${sa.gid}`);
      if (compareMtime && se.mtimeNs !== sa.mtimeNs) {
        diffs.add(`${where}: mtime ${fmtNs(se.mtimeNs)} != ${fmtNs(sa.mtimeNs)}`);
      }
    }
    if (isReg(se)) {
      if (se.size !== sa.size) diffs.add(`${where}: size ${se.size} != ${sa.size}`);
      else if (se.size > 0n) {
        const off = await firstContentDiff(e, a, se.size);
        if (off >= 0) diffs.add(`${where}: content differs at byte ${off}`);
      }
    } else if (isLnk(se)) {
      const te = await fsp.readlink(e, { encoding: 'buffer' });
      const ta = await fsp.readlink(a, { encoding: 'buffer' });
      if (!te.equals(ta)) diffs.add(`${where}: symlink target ${fmtBytes(te)} != ${fmtBytes(ta)}`);
    } else if (isDev(se)) {
      if (se.rdev !== sa.rdev) diffs.add(`${where}: rdev ${devStr(se.rdev)} != ${devStr(sa.rdev)}`);
    }
    const xe = readXattrs(e);
    const xa = readXattrs(a);
    for (const [n, v] of xe) {
      const w = xa.get(n);
      if (w === undefined) diffs.add(`${where}: xattr ${n} missing in actual`);
      else if (!v.equals(w)) diffs.add(`${where}: xattr ${n} ${fmtBytes(v)} != ${fmtBytes(w)}`);
    }
    for (const n of xa.keys()) if (!xe.has(n)) diffs.add(`${where}: xattr ${n} extra in actual`);
    if (!isDir(se)) {
      inoE.set(rel, `${se.dev}:${se.ino}`);
      inoA.set(rel, `${sa.dev}:${sa.ino}`);
    }
  };

  const walk = async (rel: string, e: string, a: string) => {
    const [ne, na] = await Promise.all([fsp.readdir(e), fsp.readdir(a)]);
    const setE = new Set(ne);
    const setA = new Set(na);
    const all = [...new Set([...ne, ...na])].sort();
    for (const name of all) {
      const r = join(rel, name);
      if (ignore(r)) continue;
      const pe = path.join(e, name);
      const pa = path.join(a, name);
      if (!setA.has(name)) {
        const st = await fsp.lstat(pe, { bigint: true });
        const extra = isDir(st) ? ` (with ${await countEntries(pe)} entries below)` : '';
        diffs.add(`${r}: missing in actual (${typeName(st.mode)}${extra})`);
        continue;
      }
      if (!setE.has(name)) {
        const st = await fsp.lstat(pa, { bigint: true });
        const extra = isDir(st) ? ` (with ${await countEntries(pa)} entries below)` : '';
        diffs.add(`${r}: extra in actual (${typeName(st.mode)}${extra})`);
        continue;
      }
      const [se, sa] = await Promise.all([fsp.lstat(pe, { bigint: true }), fsp.lstat(pa, { bigint: true })]);
      await compareEntry(r, pe, pa, se, sa);
      if (isDir(se) && isDir(sa)) await walk(r, pe, pa);
    }
  };

  const [re, ra] = await Promise.all([fsp.lstat(expected, { bigint: true }), fsp.lstat(actual, { bigint: true })]);
  if (!isDir(re)) throw new Error(`Cannot compare trees: ${expected} is not a directory`);
  if (!isDir(ra)) throw new Error(`Cannot compare trees: ${actual} is not a directory`);
  await compareEntry('.', expected, actual, re, ra);
  await walk('.', expected, actual);

  // Hardlink groups: for each path, the set of (common) paths sharing its inode must be equal.
  const groups = (m: Map<string, string>) => {
    const byIno = new Map<string, string[]>();
    for (const [rel, key] of m) {
      const g = byIno.get(key);
      if (g) g.push(rel);
      else byIno.set(key, [rel]);
    }
    const of = new Map<string, string>();
    for (const g of byIno.values()) {
      const s = g.sort().join(' = ');
      for (const rel of g) of.set(rel, s);
    }
    return of;
  };
  const ge = groups(inoE);
  const ga = groups(inoA);
  // One line per expected group whose members are not exactly one actual group.
  const actualOfGroup = new Map<string, Set<string>>();
  for (const rel of [...inoE.keys()].sort()) {
    const x = ge.get(rel)!;
    let ys = actualOfGroup.get(x);
    if (!ys) actualOfGroup.set(x, (ys = new Set()));
    ys.add(ga.get(rel)!);
  }
  for (const [x, ys] of actualOfGroup) {
    if (ys.size === 1 && ys.has(x)) continue;
    const first = x.split(' = ')[0]!;
    diffs.add(`${first}: hardlink group {${x}} != ${[...ys].map((y) => `{${y}}`).join(' ')}`);
  }
  return diffs.result();
}
