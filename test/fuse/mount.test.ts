/**
 * Real FUSE mounts of an in-memory tree (root only). Everything on the mount is accessed from child
 * processes: the test process serves the mount, so it must never block on it itself.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { mountFuse, type FuseLogger, type FuseSession } from '../../src/fuse/session.js';
import { ERRNO, FuseError } from '../../src/fuse/file-system.js';
import { run, tempDir, cleanupTempDir } from '../helpers/mounts.js';
import { MemoryFs, patternBytes } from './memory-fs.js';

/** Mounting needs root and the FUSE device. */
const SKIP = process.getuid?.() !== 0 || !existsSync('/dev/fuse') ? 'needs root and /dev/fuse' : false;

const BIG_SIZE = 64 << 20;
const BIG = patternBytes(BIG_SIZE);
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const BIG_SHA = sha256(BIG);

/** Runs a shell command line (child process); returns exit code, stdout text and stderr. */
async function sh(cmd: string): Promise<{ code: number; out: string; err: string }> {
  const r = await run('sh', ['-c', cmd], { timeoutMs: 60_000 });
  return { code: r.code, out: r.stdout.toString('utf8'), err: r.stderr };
}

async function mountsMention(mnt: string): Promise<boolean> {
  return (await fsp.readFile('/proc/mounts', 'utf8')).split('\n').some((l) => l.split(' ')[1] === mnt);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_r, reject) => { t = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); }),
  ]);
}

/** A logger that records errors (tests assert there were none). */
function recordingLogger(): FuseLogger & { errors: string[] } {
  const errors: string[] = [];
  return { errors, debug() {}, info() {}, warn() {}, error: (m, f) => errors.push(`${m} ${JSON.stringify(f)}`) };
}

function buildTree(): { fs: MemoryFs; manyNames: string[] } {
  const fs = new MemoryFs();
  fs.timeout = 5;
  fs.addFile(1, 'hello', 'hello world\n');
  fs.addFile(1, 'empty', '');
  const dir = fs.mkdir(1, 'dir', 0o750);
  fs.addFile(dir, 'big', BIG, 0o600);
  fs.addSymlink(1, 'link', 'hello');
  fs.addSymlink(dir, 'up', '../hello');
  const x = fs.addFile(1, 'xattrs', 'x');
  fs.setXattr(x, 'user.a', '1');
  fs.setXattr(x, 'user.long', 'L'.repeat(3000));
  fs.setXattr(x, 'trusted.t', 'tv');
  fs.addFailingFile(1, 'bad', 100, () => new FuseError(ERRNO.EIO, 'broken chunk'));
  fs.addFailingFile(1, 'bad2', 100, () => new Error('not an errno'));
  fs.addFailingFile(1, 'denied', 100, () => new FuseError(ERRNO.EACCES, 'no'));
  const many = fs.mkdir(1, 'many');
  const manyNames: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const name = `f${String(i).padStart(4, '0')}${'_'.repeat(i % 11)}`;
    fs.addFile(many, name, `${i}\n`);
    manyNames.push(name);
  }
  return { fs, manyNames };
}

describe('a mounted in-memory tree', { timeout: 180_000, skip: SKIP }, () => {
  let dir = '';
  let mnt = '';
  let session: FuseSession | undefined;
  let mfs: MemoryFs;
  let manyNames: string[];
  const logger = recordingLogger();

  before(async () => {
    ({ fs: mfs, manyNames } = buildTree());
    dir = await tempDir(undefined, 'nydus-fuse-');
    mnt = path.join(dir, 'mnt');
    await fsp.mkdir(mnt);
    session = await mountFuse({ mountpoint: mnt, fs: mfs, logger, workers: 3, threadpoolSize: 4 });
  });

  after(async () => {
    try {
      await session?.unmount();
    } finally {
      await cleanupTempDir(dir);
    }
    assert.equal(await mountsMention(mnt), false);
    assert.deepEqual(logger.errors, []);
  });

  test('mountFuse() negotiated 7.45, 1 MiB requests and raised the readahead', async () => {
    const s = session!;
    assert.equal(s.mountpoint, mnt);
    assert.match(s.device, /^0:\d+$/);
    assert.equal(s.init.reply.minor, Math.min(45, s.init.kernel.minor));
    assert.equal(s.init.reply.maxPages, 256);
    assert.equal((await fsp.readFile(`/sys/class/bdi/${s.device}/read_ahead_kb`, 'utf8')).trim(), '1024');
    const line = (await fsp.readFile('/proc/mounts', 'utf8')).split('\n').find((l) => l.split(' ')[1] === mnt) ?? '';
    assert.match(line, /^nydusfs \S+ fuse\.nydusfs ro,/);
    assert.match(line, /default_permissions,allow_other/);
  });

  test('ls -la and stat show names, modes, sizes, owners and times', async () => {
    const ls = await sh(`ls -la ${mnt}`);
    assert.equal(ls.code, 0, ls.err);
    for (const n of ['hello', 'empty', 'dir', 'link -> hello', 'xattrs', 'many']) assert.ok(ls.out.includes(n), `${n} in\n${ls.out}`);
    const st = await sh(`stat -c '%n|%s|%a|%F|%u|%g|%h' ${mnt}/hello ${mnt}/dir ${mnt}/dir/big ${mnt}/link ${mnt}/empty`);
    assert.equal(st.code, 0, st.err);
    assert.deepEqual(st.out.trim().split('\n'), [
      `${mnt}/hello|12|644|regular file|1000|100|1`,
      `${mnt}/dir|4096|750|directory|1000|100|2`,
      `${mnt}/dir/big|${BIG_SIZE}|600|regular file|1000|100|1`,
      `${mnt}/link|5|777|symbolic link|1000|100|1`,
      `${mnt}/empty|0|644|regular empty file|1000|100|1`,
    ]);
    const ino = mfs.nodes.get(2)!;
    assert.equal((await sh(`stat -c '%i %Y' ${mnt}/hello`)).out.trim(), `2 ${ino.mtime}`);
    const fsStat = await sh(`stat -f -c '%S %b %l' ${mnt}`);
    assert.equal(fsStat.out.trim(), '4096 1000 255');
  });

  test('readlink and following symlinks', async () => {
    assert.equal((await sh(`readlink ${mnt}/link`)).out, 'hello\n');
    assert.equal((await sh(`readlink ${mnt}/dir/up`)).out, '../hello\n');
    assert.equal((await sh(`cat ${mnt}/link ${mnt}/dir/up`)).out, 'hello world\nhello world\n');
  });

  test('getfattr lists and reads xattrs; a missing one is ENODATA', async () => {
    const all = await sh(`getfattr --absolute-names -d -m - ${mnt}/xattrs`);
    assert.equal(all.code, 0, all.err);
    assert.match(all.out, /user\.a="1"/);
    assert.match(all.out, /trusted\.t="tv"/);
    assert.match(all.out, /user\.long="L{3000}"/);
    const one = await sh(`getfattr --absolute-names --only-values -n user.long ${mnt}/xattrs`);
    assert.equal(one.out, 'L'.repeat(3000));
    const none = await sh(`getfattr --absolute-names -n user.none ${mnt}/xattrs`);
    assert.notEqual(none.code, 0);
    assert.match(none.err, /No such attribute/);
    const empty = await sh(`getfattr --absolute-names -d -m - ${mnt}/hello`);
    assert.equal(empty.code, 0);
    assert.equal(empty.out.trim(), '');
  });

  test('cat, dd bs=1M and sha256sum read the exact bytes', async () => {
    assert.equal((await sh(`cat ${mnt}/hello`)).out, 'hello world\n');
    assert.equal((await sh(`cat ${mnt}/empty | wc -c`)).out.trim(), '0');
    const dd = await sh(`dd if=${mnt}/dir/big bs=1M 2>/dev/null | sha256sum`);
    assert.equal(dd.out.split(' ')[0], BIG_SHA);
    assert.equal((await sh(`sha256sum ${mnt}/dir/big`)).out.split(' ')[0], BIG_SHA);
    const mid = await sh(`dd if=${mnt}/dir/big bs=4096 skip=1001 count=77 2>/dev/null | sha256sum`);
    assert.equal(mid.out.split(' ')[0], sha256(BIG.subarray(1001 * 4096, 1078 * 4096)));
    const odd = await sh(`tail -c 12345 ${mnt}/dir/big | sha256sum`);
    assert.equal(odd.out.split(' ')[0], sha256(BIG.subarray(BIG_SIZE - 12345)));
    assert.ok((session!.stats.requests.READ ?? 0) > 0);
  });

  test('closing a file costs no round trip after the first FLUSH (answered ENOSYS)', async () => {
    assert.equal((await sh(`for i in 1 2 3 4 5; do cat ${mnt}/hello; done | wc -l`)).out.trim(), '5');
    assert.ok((session!.stats.requests.FLUSH ?? 0) <= 1, `FLUSH sent ${session!.stats.requests.FLUSH} times`);
    assert.equal((await sh(`sync ${mnt}/hello && echo ok`)).out.trim(), 'ok', 'fsync still succeeds');
  });

  test('a 1000-entry directory lists fully through READDIRPLUS, never LOOKUP per name (ls, ls -l)', async () => {
    const before = { ...session!.stats.requests };
    const ls = await sh(`ls ${mnt}/many`);
    assert.equal(ls.code, 0, ls.err);
    assert.deepEqual(ls.out.trim().split('\n'), [...manyNames].sort());
    const unsorted = await sh(`ls -f ${mnt}/many`);
    assert.deepEqual(unsorted.out.trim().split('\n').sort(), ['.', '..', ...manyNames].sort());
    const long = await sh(`ls -ln ${mnt}/many`);
    const lines = long.out.trim().split('\n');
    assert.equal(lines.length, 1001);
    assert.match(lines[0]!, /^total /);
    assert.ok(lines.slice(1).every((l) => /^-rw-r--r-- 1 1000 100 +\d+ /.test(l)), lines[1]);
    const after = session!.stats.requests;
    const delta = (k: string): number => (after[k] ?? 0) - (before[k] ?? 0);
    assert.ok(delta('READDIRPLUS') > 0, 'READDIRPLUS used');
    assert.equal(delta('READDIR'), 0, 'READDIRPLUS always, not "auto" (no plain READDIR)');
    assert.ok(delta('LOOKUP') < 10, `ls -ln needed ${delta('LOOKUP')} LOOKUPs: the attributes came with READDIRPLUS`);
    assert.equal((await sh(`cat ${mnt}/many/f0999${'_'.repeat(999 % 11)}`)).out, '999\n');
  });

  test('writes fail with EROFS', async () => {
    for (const cmd of [`touch ${mnt}/new`, `mkdir ${mnt}/d2`, `rm ${mnt}/hello`, `echo x >> ${mnt}/hello`,
      `ln -s a ${mnt}/l2`, `mv ${mnt}/hello ${mnt}/h2`, `setfattr -n user.b -v 1 ${mnt}/hello`, `chmod 600 ${mnt}/hello`]) {
      const r = await sh(cmd);
      assert.notEqual(r.code, 0, cmd);
      assert.match(r.err, /Read-only file system/, cmd);
    }
    assert.equal((await sh(`cat ${mnt}/hello`)).out, 'hello world\n');
  });

  test('32 concurrent readers all get the right bytes', async () => {
    const jobs = Array.from({ length: 32 }, async (_v, i) => {
      const skip = (i * 7) % 60;
      const r = await sh(`dd if=${mnt}/dir/big bs=1M skip=${skip} count=4 2>/dev/null | sha256sum`);
      assert.equal(r.out.split(' ')[0], sha256(BIG.subarray(skip << 20, (skip + 4) << 20)), `reader ${i}`);
    });
    const small = Array.from({ length: 8 }, async () => assert.equal((await sh(`cat ${mnt}/hello`)).out, 'hello world\n'));
    await Promise.all([...jobs, ...small]);
  });

  test('FileSystem errors reach callers as errno; other files still read', async () => {
    const [missing, bad, bad2, denied, good] = await Promise.all([
      sh(`cat ${mnt}/nope`), sh(`cat ${mnt}/bad`), sh(`cat ${mnt}/bad2`), sh(`cat ${mnt}/denied`), sh(`cat ${mnt}/hello`),
    ]);
    assert.match(missing.err, /No such file or directory/);
    assert.match(bad.err, /Input\/output error/);
    assert.match(bad2.err, /Input\/output error/);
    assert.match(denied.err, /Permission denied/);
    assert.equal(good.out, 'hello world\n');
    assert.ok((session!.stats.errors.READ ?? 0) >= 3);
  });
});

describe('session lifecycle', { timeout: 60_000, skip: SKIP }, () => {
  test('unmount() leaves nothing in /proc/mounts, ends the session and is idempotent', async (t) => {
    const dir = await tempDir(t, 'nydus-fuse-');
    const { fs } = buildTree();
    const s = await mountFuse({ mountpoint: dir, fs, workers: 2, threadpoolSize: 4 });
    try {
      assert.equal((await sh(`cat ${dir}/hello`)).out, 'hello world\n');
      assert.equal(await mountsMention(s.mountpoint), true);
    } finally {
      await s.unmount();
    }
    assert.equal(await mountsMention(s.mountpoint), false);
    await withTimeout(s.closed, 1000, 'closed');
    assert.equal(fs.destroyed, true);
    assert.equal(s.stats.inflight, 0);
    await s.unmount();
  });

  test('sessions share the threadpool: workers are clamped, a mount with no thread left is refused', async (t) => {
    const dir = await tempDir(t, 'nydus-fuse-');
    await fsp.mkdir(path.join(dir, 'a'));
    await fsp.mkdir(path.join(dir, 'b'));
    await fsp.symlink(path.join(dir, 'a'), path.join(dir, 'link'));
    const warnings: string[] = [];
    const logger: FuseLogger = { debug() {}, info() {}, warn: (m) => warnings.push(m), error() {} };
    const fdsBefore = (await fsp.readdir('/proc/self/fd')).length;
    // Through a symlink: the session reports (and later unmounts) the real path.
    const s = await mountFuse({ mountpoint: path.join(dir, 'link'), fs: buildTree().fs, readMode: 'threadpool', workers: 4, threadpoolSize: 4, logger });
    try {
      assert.equal(s.mountpoint, await fsp.realpath(path.join(dir, 'a')));
      assert.match(warnings.join('\n'), /fewer FUSE workers/);
      await assert.rejects(mountFuse({ mountpoint: path.join(dir, 'b'), fs: buildTree().fs, readMode: 'threadpool', threadpoolSize: 4 }),
        (e: unknown) => (e as { code?: string }).code === 'ERR_FUSE_THREADPOOL');
      assert.equal(await mountsMention(path.join(dir, 'b')), false);
    } finally {
      await s.unmount();
    }
    const s2 = await mountFuse({ mountpoint: path.join(dir, 'b'), fs: buildTree().fs, readMode: 'threadpool', workers: 3, threadpoolSize: 4 });
    await s2.unmount();
    assert.equal(await mountsMention(s.mountpoint), false);
    assert.equal((await fsp.readdir('/proc/self/fd')).length, fdsBefore, 'every /dev/fuse descriptor is closed');
  });

  test('poll mode holds no threadpool thread: six sessions on a pool of 4 all serve, then unmount', async (t) => {
    const dir = await tempDir(t, 'nydus-fuse-');
    const sessions: FuseSession[] = [];
    const fdsBefore = (await fsp.readdir('/proc/self/fd')).length;
    try {
      for (let i = 0; i < 6; i++) {
        const mnt = path.join(dir, `m${i}`);
        await fsp.mkdir(mnt);
        sessions.push(await mountFuse({ mountpoint: mnt, fs: buildTree().fs, threadpoolSize: 4 }));
      }
      // Both at once: the event loop reads every device and the FileSystems' file I/O still runs.
      const outs = await Promise.all(sessions.map((s) => sh(`cat ${s.mountpoint}/hello`)));
      for (const o of outs) assert.equal(o.out, 'hello world\n');
      assert.equal((await fsp.stat(dir)).isDirectory(), true, 'the pool still answers');
    } finally {
      for (const s of sessions) await s.unmount();
    }
    for (const s of sessions) {
      assert.equal(await mountsMention(s.mountpoint), false);
      await withTimeout(s.closed, 1000, 'closed');
    }
    assert.equal((await fsp.readdir('/proc/self/fd')).length, fdsBefore, 'every /dev/fuse descriptor is closed');
  });

  test('an external umount resolves closed', async (t) => {
    const dir = await tempDir(t, 'nydus-fuse-');
    const { fs } = buildTree();
    const s = await mountFuse({ mountpoint: dir, fs, workers: 3, threadpoolSize: 4 });
    try {
      const r = await sh(`ls ${dir} >/dev/null && umount ${dir}`);
      assert.equal(r.code, 0, r.err);
      await withTimeout(s.closed, 5000, 'closed after external umount');
      assert.equal(await mountsMention(s.mountpoint), false);
    } finally {
      await s.unmount();
    }
  });

  test('unmount() of a busy mount detaches it lazily, then aborts the connection', async (t) => {
    const dir = await tempDir(t, 'nydus-fuse-');
    const { fs } = buildTree();
    const logger = recordingLogger();
    const s = await mountFuse({ mountpoint: dir, fs, workers: 2, threadpoolSize: 4, unmountTimeoutMs: 300, logger });
    // A child keeps a file open on the mount.
    const holder = spawn('sh', ['-c', `exec 3<${dir}/hello; exec sleep 30`], { stdio: 'ignore' });
    const exited = new Promise((r) => holder.once('exit', r));
    try {
      for (let i = 0; i < 100 && (s.stats.requests.OPEN ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await sh(`umount ${dir}`)).code !== 0, true, 'plain umount is refused while busy');
      await withTimeout(s.unmount(), 10_000, 'unmount of a busy mount');
      await withTimeout(s.closed, 1000, 'closed');
      assert.equal(await mountsMention(s.mountpoint), false);
    } finally {
      await s.unmount();
      holder.kill('SIGKILL');
      await exited;
    }
  });
});
