/**
 * Builds a deterministic "messy" directory tree exercising everything a container image builder
 * must carry over: odd file sizes around the chunk size, duplicate and repeated content, UTF-8 and
 * maximal names, deep and wide directories, all file types (symlinks, hardlinks, devices, fifo,
 * socket), xattrs in several namespaces incl. POSIX ACLs, special modes, odd owners and
 * timestamps with nanoseconds. Needs root (mknod, chown, trusted.* xattrs) and `setfattr`, `mknod`,
 * `mkfifo`, `touch`, `truncate`.
 * @module
 */
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { runOk } from './mounts.js';

/** Options of {@link makeMessyTree}. */
export interface MessyTreeOptions {
  /** Chunk size the sizes revolve around (default 1 MiB). */
  chunkSize?: number;
  /** Add `sparse/sparse-5g.img`: 5 GiB apparent size, a few KiB of data at 0, 1 GiB+3 and near
   * the end. */
  sparse5G?: boolean;
  /** Add `big/`: a 64 MiB+7 pseudo-random file, a 32 MiB compressible text file, and a directory
   * of 2000 small files. */
  big?: boolean;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** FNV-1a 32-bit hash of a string (seeds the PRNG per file). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** `n` deterministic pseudo-random bytes (xorshift32) seeded by `seed`. */
export function prngBytes(seed: string, n: number): Buffer {
  const words = Math.ceil(n / 4);
  const u32 = new Uint32Array(words);
  let x = fnv1a(seed) || 0x9e3779b9;
  for (let i = 0; i < words; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    u32[i] = x;
  }
  return Buffer.from(u32.buffer, 0, n);
}

/** Compressible text: numbered lines of words, `n` bytes. */
function textBytes(seed: string, n: number): Buffer {
  const words = ['nydus', 'rafs', 'erofs', 'chunk', 'blob', 'layer', 'image', 'overlay', 'inode', 'dirent'];
  const r = prngBytes(seed, 4096);
  const parts: string[] = [];
  let len = 0;
  for (let line = 0; len < n; line++) {
    const w1 = words[r[line % r.length]! % words.length]!;
    const w2 = words[r[(line * 7 + 3) % r.length]! % words.length]!;
    const s = `${line.toString().padStart(8, '0')} ${w1} ${w2} the quick brown fox jumps over the lazy dog\n`;
    parts.push(s);
    len += s.length;
  }
  return Buffer.from(parts.join(''), 'ascii').subarray(0, n);
}

/** Content whose period is `period` bytes (so equal chunks repeat), `n` bytes in all. */
function repeatedBytes(seed: string, period: number, n: number): Buffer {
  const unit = prngBytes(seed, period);
  const out = Buffer.allocUnsafe(n);
  for (let off = 0; off < n; off += period) unit.copy(out, off, 0, Math.min(period, n - off));
  return out;
}

/** POSIX ACL xattr value (version 2): entries of [tag, perm, id]. */
function aclValue(entries: Array<[number, number, number]>): Buffer {
  const b = Buffer.alloc(4 + entries.length * 8);
  b.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    b.writeUInt16LE(tag, 4 + i * 8);
    b.writeUInt16LE(perm, 6 + i * 8);
    b.writeUInt32LE(id, 8 + i * 8);
  });
  return b;
}
const ACL_USER_OBJ = 0x01;
const ACL_USER = 0x02;
const ACL_GROUP_OBJ = 0x04;
const ACL_GROUP = 0x08;
const ACL_MASK = 0x10;
const ACL_OTHER = 0x20;
const ACL_UNDEFINED_ID = 0xffffffff;

/** A timestamp: whole seconds plus nanoseconds. */
interface Ts {
  sec: number;
  nsec: number;
}

/** Everything created, in creation order, with the attributes to apply afterwards. */
interface Planned {
  rel: string;
  kind: 'file' | 'dir' | 'symlink' | 'other';
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Ts;
  xattrs?: Array<[string, Buffer]>;
}

/** Nanoseconds per 1/512 s: fractions that are multiples of it survive a double exactly. */
const NS_512TH = 1953125;

/** Default mtime of an entry: 2023-11-14 plus a per-path offset and a per-path fraction that is
 * a multiple of 1/512 s (so fs.utimes sets it to the exact nanosecond). */
function defaultMtime(rel: string): Ts {
  const h = fnv1a(rel);
  return { sec: 1700000000 + (h % 100000), nsec: ((h >>> 20) % 512) * NS_512TH };
}

/**
 * Creates the messy tree under `root` (created if missing; should be empty). Deterministic: the
 * same options give the same names, contents, modes, owners, xattrs and timestamps (inode numbers
 * and ctimes aside). Directory mtimes are set last, deepest first; the root's too.
 *
 * Layout (paths relative to root):
 * - `files/`: empty files, 1 byte, chunkSize-1/chunkSize/chunkSize+1, 2*chunkSize+1, 3/4/5 MiB
 *   (+odd bytes) pseudo-random, `repeated-10m.bin` (10 MiB of a chunk-sized unit repeated),
 *   `zeros-2chunks.bin`, `text-3m.txt` (compressible), `dup-a.bin`/`dup/dup-b.bin` (identical
 *   content, not hardlinks), `holes.bin` (small sparse file).
 * - `names/`: CJK, emoji, spaces, leading/trailing space, quotes/glob chars, 255-byte names
 *   (ASCII and 3-byte UTF-8).
 * - `deep/d01/…/d30/leaf.txt`; `wide/` with 300 entries (files, dirs, symlinks; long names).
 * - `links/`: relative, absolute, dangling, directory, UTF-8 target, and a 1000-byte target.
 * - hardlinks: `hardlinks/a.bin`, `hardlinks/sub/b.bin`, `other/c.bin` (one inode);
 *   `hardlinks/pair-1.txt`, `other/pair-2.txt` (another).
 * - `special/`: char device 240:17, block device 7:200, fifo, unix socket.
 * - `modes/`: 04755, 02755 (file and dir), 01777 dir, 0000 file and dir, 0600, 0444, 0711 dir.
 * - `owners/`: 1234:5678, 65534:65534, 100000:100001 on files/dirs, 4321:8765 on a symlink.
 * - `xattrs/`: user/trusted/security xattrs on files and dirs, several on one file, binary,
 *   empty and 1000-byte values, trusted/security on a symlink, POSIX access+default ACLs.
 * - `times/`: 1970-01-01T00:00:01, +3 days and a quarter second, 2100-01-01, 1 ns and
 *   999999999 ns fractions; symlink with its own mtime (lutimes).
 */
export async function makeMessyTree(root: string, options: MessyTreeOptions = {}): Promise<void> {
  const chunk = options.chunkSize ?? MiB;
  if (!Number.isInteger(chunk) || chunk < 4096) throw new Error(`Cannot build tree: bad chunkSize ${chunk}`);
  await fsp.mkdir(root, { recursive: true });
  const planned: Planned[] = [];
  const abs = (rel: string) => path.join(root, rel);

  const dir = async (rel: string, attrs: Omit<Planned, 'rel' | 'kind'> = {}) => {
    await fsp.mkdir(abs(rel), { recursive: true });
    planned.push({ rel, kind: 'dir', mode: 0o755, ...attrs });
  };
  const file = async (rel: string, data: Buffer | string, attrs: Omit<Planned, 'rel' | 'kind'> = {}) => {
    await fsp.writeFile(abs(rel), data);
    planned.push({ rel, kind: 'file', mode: 0o644, ...attrs });
  };
  const symlink = async (rel: string, target: string, attrs: Omit<Planned, 'rel' | 'kind'> = {}) => {
    await fsp.symlink(target, abs(rel));
    planned.push({ rel, kind: 'symlink', ...attrs });
  };
  const rnd = (rel: string, n: number, attrs: Omit<Planned, 'rel' | 'kind'> = {}) =>
    file(rel, prngBytes(rel, n), attrs);

  // --- files of interesting sizes
  await dir('files');
  await file('files/empty', Buffer.alloc(0));
  await file('files/empty-2', Buffer.alloc(0), { mode: 0o600 });
  await rnd('files/one-byte', 1);
  await rnd('files/4095', 4095);
  await rnd('files/4096', 4096);
  await rnd('files/4097', 4097);
  await rnd('files/chunk-minus-1', chunk - 1);
  await rnd('files/chunk', chunk);
  await rnd('files/chunk-plus-1', chunk + 1);
  await rnd('files/2chunks-plus-1', 2 * chunk + 1);
  await rnd('files/3m.bin', 3 * MiB + 5);
  await rnd('files/4m.bin', 4 * MiB);
  await rnd('files/5m.bin', 5 * MiB - 3);
  await file('files/repeated-10m.bin', repeatedBytes('repeat-unit', chunk, 10 * MiB));
  await file('files/zeros-2chunks.bin', Buffer.alloc(2 * chunk));
  await file('files/text-3m.txt', textBytes('text', 3 * MiB + 17));
  const dupData = prngBytes('dup-content', chunk + 12345);
  await file('files/dup-a.bin', dupData);
  await dir('files/dup');
  await file('files/dup/dup-b.bin', dupData);
  {
    // small sparse file: data, a hole of 2 MiB, data, trailing hole
    const fh = await fsp.open(abs('files/holes.bin'), 'w');
    try {
      await fh.write(prngBytes('holes-1', 3000), 0, 3000, 0);
      await fh.write(prngBytes('holes-2', 5000), 0, 5000, 2 * MiB + 100);
      await fh.truncate(3 * MiB);
    } finally {
      await fh.close();
    }
    planned.push({ rel: 'files/holes.bin', kind: 'file', mode: 0o644 });
  }

  // --- names
  await dir('names');
  await dir('names/中文目录');
  await file('names/中文目录/文件.txt', '中文内容\n');
  await file('names/日本語ファイル.txt', 'こんにちは\n');
  await file('names/한국어.txt', '안녕하세요\n');
  await file('names/emoji-😀🚀.bin', prngBytes('emoji', 777));
  await dir('names/📁 folder');
  await file('names/📁 folder/🧪.txt', 'test\n');
  await file('names/name with spaces.txt', 'spaces\n');
  await file('names/ leading space', 'lead\n');
  await file('names/trailing space ', 'trail\n');
  await file("names/quote'double\"back\\slash", 'q\n');
  await file('names/glob*?[x]{a,b}$HOME;|&', 'g\n');
  await file('names/.hidden', 'h\n');
  await file('names/...', 'dots\n');
  await file('names/-dash', 'd\n');
  await file('names/' + 'L'.repeat(255), 'long ascii name\n');
  await file('names/' + '長'.repeat(85), 'long utf-8 name (255 bytes)\n');
  await dir('names/' + 'D'.repeat(255));
  await file('names/' + 'D'.repeat(255) + '/x', 'x\n');

  // --- deep chain of 30 directories
  {
    let rel = 'deep';
    await dir(rel);
    for (let i = 1; i <= 30; i++) {
      rel += `/d${String(i).padStart(2, '0')}`;
      await dir(rel);
    }
    await file(rel + '/leaf.txt', 'deepest\n');
  }

  // --- wide directory: 300 entries with long-ish names (several directory blocks)
  await dir('wide');
  for (let i = 0; i < 300; i++) {
    const name = `entry-${String(i).padStart(3, '0')}-${'w'.repeat(i % 50)}`;
    const rel = `wide/${name}`;
    if (i % 25 === 0) await dir(rel);
    else if (i % 37 === 0) await symlink(rel, `entry-${String(i - 1).padStart(3, '0')}-${'w'.repeat((i - 1) % 50)}`);
    else await file(rel, i % 3 === 0 ? '' : `entry ${i}\n`);
  }

  // --- symlinks
  await dir('links');
  await symlink('links/rel', '../files/one-byte');
  await symlink('links/rel-dir', '../deep/d01');
  await symlink('links/abs', '/etc/hostname');
  await symlink('links/dangling', 'does/not/exist');
  await symlink('links/self-loop', 'self-loop');
  await symlink('links/utf8-target', '../names/中文目录/文件.txt');
  await symlink('links/long-target', ('../' + 'x'.repeat(96) + '/').repeat(10).slice(0, 1000));
  await symlink('links/dot', '.');

  // --- hardlinks: a group of 3 in different directories, and a pair
  await dir('hardlinks');
  await dir('hardlinks/sub');
  await dir('other');
  await rnd('hardlinks/a.bin', chunk + Math.floor(chunk / 2), { mode: 0o640, uid: 1234, gid: 5678 });
  await fsp.link(abs('hardlinks/a.bin'), abs('hardlinks/sub/b.bin'));
  await fsp.link(abs('hardlinks/a.bin'), abs('other/c.bin'));
  await file('hardlinks/pair-1.txt', 'pair\n');
  await fsp.link(abs('hardlinks/pair-1.txt'), abs('other/pair-2.txt'));

  // --- special files
  await dir('special');
  await runOk('mknod', ['-m', '0620', abs('special/chardev'), 'c', '240', '17']);
  planned.push({ rel: 'special/chardev', kind: 'other', mode: 0o620, uid: 0, gid: 5 });
  await runOk('mknod', ['-m', '0660', abs('special/blockdev'), 'b', '7', '200']);
  planned.push({ rel: 'special/blockdev', kind: 'other', mode: 0o660, gid: 6 });
  await runOk('mknod', ['-m', '0666', abs('special/null-like'), 'c', '1', '3']);
  planned.push({ rel: 'special/null-like', kind: 'other', mode: 0o666 });
  await runOk('mkfifo', ['-m', '0644', abs('special/fifo')]);
  planned.push({ rel: 'special/fifo', kind: 'other', mode: 0o644 });
  await makeSocket(abs('special/socket'));
  planned.push({ rel: 'special/socket', kind: 'other', mode: 0o755 });

  // --- modes (chmod is applied after chown, which would clear set-id bits)
  await dir('modes');
  await rnd('modes/setuid-04755', 100, { mode: 0o4755 });
  await rnd('modes/setgid-02755', 100, { mode: 0o2755 });
  await rnd('modes/setuid-setgid-sticky-07777', 10, { mode: 0o7777 });
  await rnd('modes/mode-0000', 10, { mode: 0o000 });
  await rnd('modes/mode-0600', 10, { mode: 0o600 });
  await rnd('modes/mode-0444', 10, { mode: 0o444 });
  await dir('modes/dir-setgid-02755', { mode: 0o2755 });
  await file('modes/dir-setgid-02755/inside', 'x\n');
  await dir('modes/dir-sticky-01777', { mode: 0o1777 });
  await file('modes/dir-sticky-01777/inside', 'x\n');
  await dir('modes/dir-0000', { mode: 0o000 });
  await dir('modes/dir-0711', { mode: 0o711 });
  await file('modes/dir-0711/inside', 'x\n', { mode: 0o700 });

  // --- owners
  await dir('owners', { uid: 1234, gid: 5678 });
  await file('owners/1234-5678', 'o\n', { uid: 1234, gid: 5678 });
  await file('owners/nobody-65534', 'o\n', { uid: 65534, gid: 65534 });
  await file('owners/big-100000', 'o\n', { uid: 100000, gid: 100001 });
  await file('owners/uid-only', 'o\n', { uid: 4000000000, gid: 0 });
  await dir('owners/dir-100000', { uid: 100000, gid: 100000, mode: 0o750 });
  await symlink('owners/symlink-4321', '1234-5678', { uid: 4321, gid: 8765 });

  // --- xattrs
  await dir('xattrs', {
    xattrs: [
      ['user.dir', Buffer.from('on a directory')],
      ['trusted.dir', Buffer.from('trusted dir')],
    ],
  });
  await file('xattrs/user-only', 'x\n', { xattrs: [['user.comment', Buffer.from('hello world')]] });
  await file('xattrs/many', 'x\n', {
    xattrs: [
      ['user.a', Buffer.from('1')],
      ['user.bb', Buffer.from('22')],
      ['user.ccc', Buffer.from('333')],
      ['user.empty', Buffer.alloc(0)],
      ['user.binary', Buffer.from([0x00, 0xff, 0x10, 0x00, 0x80, 0x7f, 0x0a, 0x00])],
      ['user.long', prngBytes('long-xattr', 1000)],
      ['trusted.other', Buffer.from('y')],
      ['trusted.t', Buffer.from('trusted value')],
      ['security.test', Buffer.from('security value')],
    ],
  });
  await file('xattrs/security-only', 'x\n', { xattrs: [['security.label', Buffer.from('label\0')]] });
  await file('xattrs/trusted-only', 'x\n', { xattrs: [['trusted.md5', Buffer.from('d41d8cd98f00b204e9800998ecf8427e')]] });
  await symlink('xattrs/symlink', 'many', {
    xattrs: [
      ['trusted.sym', Buffer.from('on a symlink')],
      ['security.sym', Buffer.from('sec on symlink')],
    ],
  });
  // POSIX ACLs (system.posix_acl_*): access ACL on a file (mode group bits = mask), default ACL on a dir
  await file('xattrs/acl-file', 'acl\n', {
    mode: 0o660,
    xattrs: [
      [
        'system.posix_acl_access',
        aclValue([
          [ACL_USER_OBJ, 6, ACL_UNDEFINED_ID],
          [ACL_USER, 4, 1234],
          [ACL_GROUP_OBJ, 4, ACL_UNDEFINED_ID],
          [ACL_GROUP, 2, 5678],
          [ACL_MASK, 6, ACL_UNDEFINED_ID],
          [ACL_OTHER, 0, ACL_UNDEFINED_ID],
        ]),
      ],
    ],
  });
  await dir('xattrs/acl-dir', {
    mode: 0o755,
    xattrs: [
      [
        'system.posix_acl_default',
        aclValue([
          [ACL_USER_OBJ, 7, ACL_UNDEFINED_ID],
          [ACL_GROUP_OBJ, 5, ACL_UNDEFINED_ID],
          [ACL_OTHER, 5, ACL_UNDEFINED_ID],
        ]),
      ],
    ],
  });
  // The hardlinked inode gets an xattr too (through one of its names).
  planned.push({ rel: 'hardlinks/a.bin', kind: 'file', xattrs: [['user.hardlinked', Buffer.from('shared')]] });

  // --- times (whole seconds, fractions, old and far-future dates)
  await dir('times');
  await file('times/epoch-plus-1', 't\n', { mtime: { sec: 1, nsec: 0 } });
  await file('times/1970-plus-3days', 't\n', { mtime: { sec: 3 * 86400, nsec: 250000000 } });
  await file('times/year-2100', 't\n', { mtime: { sec: 4102444800, nsec: 0 } });
  await file('times/ns-1', 't\n', { mtime: { sec: 1600000000, nsec: 1 } });
  await file('times/ns-999999999', 't\n', { mtime: { sec: 1600000000, nsec: 999999999 } });
  await file('times/ns-123456789', 't\n', { mtime: { sec: 1234567890, nsec: 123456789 } });
  await symlink('times/symlink', 'ns-1', { mtime: { sec: 1500000000, nsec: 500000000 } });
  await dir('times/old-dir', { mtime: { sec: 86400, nsec: 0 } });

  // --- optional: 5 GiB sparse file
  if (options.sparse5G) {
    await dir('sparse');
    const fh = await fsp.open(abs('sparse/sparse-5g.img'), 'w');
    try {
      await fh.truncate(5 * GiB);
      await fh.write(prngBytes('sparse-0', 4096), 0, 4096, 0);
      await fh.write(prngBytes('sparse-1g', 3000), 0, 3000, GiB + 3);
      await fh.write(prngBytes('sparse-end', 2048), 0, 2048, 5 * GiB - 2048 - 7);
    } finally {
      await fh.close();
    }
    planned.push({ rel: 'sparse/sparse-5g.img', kind: 'file', mode: 0o644 });
  }

  // --- optional: big files
  if (options.big) {
    await dir('big');
    await rnd('big/random-64m.bin', 64 * MiB + 7);
    await file('big/text-32m.txt', textBytes('big-text', 32 * MiB));
    await dir('big/small-files');
    for (let i = 0; i < 2000; i++) {
      const rel = `big/small-files/f${String(i).padStart(4, '0')}`;
      await rnd(rel, (i * 37) % 4097);
    }
  }

  // --- apply attributes: owner, then mode (chown clears set-id bits), then xattrs, then times.
  // Non-directories first; directory times last, deepest first; the root at the very end.
  const merged = new Map<string, Planned>();
  for (const p of planned) {
    const prev = merged.get(p.rel);
    if (!prev) merged.set(p.rel, { ...p, xattrs: [...(p.xattrs ?? [])] });
    else prev.xattrs = [...(prev.xattrs ?? []), ...(p.xattrs ?? [])];
  }
  const entries = [...merged.values()];
  for (const p of entries) {
    const a = abs(p.rel);
    if (p.uid !== undefined || p.gid !== undefined) await fsp.lchown(a, p.uid ?? 0, p.gid ?? 0);
    if (p.mode !== undefined && p.kind !== 'symlink') await fsp.chmod(a, p.mode);
    for (const [name, value] of p.xattrs ?? []) {
      const args = ['-h', '-n', name];
      if (value.length > 0) args.push('-v', '0x' + value.toString('hex'));
      args.push(a);
      await runOk('setfattr', args);
    }
  }
  for (const p of entries) {
    if (p.kind === 'dir') continue;
    await setTime(abs(p.rel), p.mtime ?? defaultMtime(p.rel), p.kind === 'symlink');
  }
  const dirs = entries
    .filter((p) => p.kind === 'dir')
    .sort((x, y) => y.rel.split('/').length - x.rel.split('/').length || (x.rel < y.rel ? -1 : 1));
  for (const d of dirs) await setTime(abs(d.rel), d.mtime ?? defaultMtime(d.rel), false);
  await fsp.chmod(root, 0o755);
  await setTime(root, { sec: 1700000000, nsec: 987654321 }, false);
}

/** Sets atime = mtime = `ts`. Fractions that a double cannot carry exactly go through
 * `touch -d @sec.nnnnnnnnn` (exact nanoseconds); the rest through fs.utimes / fs.lutimes. */
async function setTime(p: string, ts: Ts, noFollow: boolean): Promise<void> {
  if (ts.nsec % NS_512TH === 0) {
    // sec + k/512 is exact in a double, and libuv's (t - sec) * 1e9 is then exactly nsec
    const asDouble = ts.sec + ts.nsec / NS_512TH / 512;
    if (noFollow) await fsp.lutimes(p, asDouble, asDouble);
    else await fsp.utimes(p, asDouble, asDouble);
    return;
  }
  const stamp = `@${ts.sec}.${String(ts.nsec).padStart(9, '0')}`;
  await runOk('touch', [...(noFollow ? ['-h'] : []), '-d', stamp, p]);
}

/** Creates a unix socket file at `p` that stays after the listener is closed (libuv unlinks the
 * path on close, so a second hardlink keeps the inode and is renamed back). */
async function makeSocket(p: string): Promise<void> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(p, () => resolve());
  });
  const keep = p + '.keep';
  await fsp.link(p, keep);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await fsp.rename(keep, p);
  const st = await fsp.lstat(p);
  if (!st.isSocket()) throw new Error(`Cannot create socket: ${p} is not a socket after close`);
}

/**
 * Three layer directories under `dir` for image tests: `l1` the messy tree (without its socket,
 * which a tar layer cannot carry), `l2` a whiteout, an opaque directory and new files, `l3` a
 * whiteout of a file `l2` added and one more file. Returns them bottom first.
 */
export async function makeMessyLayers(dir: string): Promise<[string, string, string]> {
  const l1 = path.join(dir, 'l1');
  await makeMessyTree(l1, { chunkSize: 0x100000 });
  const sockets: string[] = [];
  const findSockets = async (d: string): Promise<void> => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isSocket()) sockets.push(p);
      else if (e.isDirectory()) await findSockets(p);
    }
  };
  await findSockets(l1);
  for (const s of sockets) await fsp.rm(s);
  const l2 = path.join(dir, 'l2');
  await fsp.mkdir(path.join(l2, 'files'), { recursive: true });
  await fsp.writeFile(path.join(l2, 'files', '.wh.empty'), '');
  await fsp.mkdir(path.join(l2, 'deep'), { recursive: true });
  await fsp.writeFile(path.join(l2, 'deep', '.wh..wh..opq'), '');
  await fsp.writeFile(path.join(l2, 'deep', 'fresh.txt'), 'fresh\n');
  await fsp.writeFile(path.join(l2, 'new-in-l2.txt'), 'layer two\n');
  const l3 = path.join(dir, 'l3');
  await fsp.mkdir(l3, { recursive: true });
  await fsp.writeFile(path.join(l3, '.wh.new-in-l2.txt'), '');
  await fsp.writeFile(path.join(l3, 'top.txt'), 'top\n');
  return [l1, l2, l3];
}
