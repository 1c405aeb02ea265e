/**
 * Tests of the test helpers: makeMessyTree, compareTrees (equal copies and every kind of
 * mutation), overlay and EROFS mounts with their clean-up, run/tempDir.
 * Needs root, mkfs.erofs/fsck.erofs (erofs-utils), setfattr, loop devices, EROFS and overlayfs.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import xattr from '@napi-rs/xattr';
import { makeMessyTree } from './make-tree.js';
import { compareTrees } from './compare-tree.js';
import {
  cleanupTempDir,
  fsckErofs,
  isMounted,
  listMountPoints,
  loopDevicesBackedBy,
  REPO_ROOT,
  run,
  runCli,
  runOk,
  tempDir,
  withErofsDevice,
  withLoopErofs,
  withOverlay,
} from './mounts.js';

const MiB = 1024 * 1024;
let work: string;
let base: string;

before(async () => {
  work = await tempDir();
  base = path.join(work, 'base');
  await makeMessyTree(base);
});

after(async () => {
  if (work) await cleanupTempDir(work);
});

/** `cp -a base <fresh dir>`, returns the copy. */
let copies = 0;
async function freshCopy(): Promise<string> {
  const dst = path.join(work, `copy-${++copies}`);
  await runOk('cp', ['-a', base, dst]);
  return dst;
}

/** Restores the mtime of `rel` in `copy` from the base tree (exact ns, not following symlinks). */
async function restoreTime(copy: string, rel: string): Promise<void> {
  await runOk('touch', ['-h', '-r', path.join(base, rel), path.join(copy, rel)]);
}

function assertNotMounted(dir: string): void {
  assert.equal(isMounted(dir), false, `${dir} still mounted`);
  assert.equal(
    fs.readFileSync('/proc/mounts', 'utf8').includes(` ${dir} `),
    false,
    `${dir} still in /proc/mounts`,
  );
}

test('makeMessyTree builds the expected entries', async () => {
  const p = (rel: string) => path.join(base, rel);
  const st = async (rel: string) => fsp.lstat(p(rel), { bigint: true });

  assert.equal((await st('files/empty')).size, 0n);
  assert.equal((await st('files/chunk-minus-1')).size, BigInt(MiB - 1));
  assert.equal((await st('files/chunk')).size, BigInt(MiB));
  assert.equal((await st('files/chunk-plus-1')).size, BigInt(MiB + 1));
  assert.equal((await st('files/repeated-10m.bin')).size, BigInt(10 * MiB));
  const rep = await fsp.readFile(p('files/repeated-10m.bin'));
  assert.ok(rep.subarray(0, MiB).equals(rep.subarray(3 * MiB, 4 * MiB)), 'repeated content');
  assert.ok((await fsp.readFile(p('files/dup-a.bin'))).equals(await fsp.readFile(p('files/dup/dup-b.bin'))));

  // names
  assert.ok(fs.existsSync(p('names/中文目录/文件.txt')));
  assert.ok(fs.existsSync(p('names/emoji-😀🚀.bin')));
  assert.ok(fs.existsSync(p('names/name with spaces.txt')));
  const names = await fsp.readdir(p('names'));
  assert.ok(names.some((n) => Buffer.byteLength(n) === 255 && n.startsWith('長')), '255-byte UTF-8 name');
  assert.ok(names.includes('L'.repeat(255)));

  // deep and wide
  let deep = 'deep';
  for (let i = 1; i <= 30; i++) deep += `/d${String(i).padStart(2, '0')}`;
  assert.equal(await fsp.readFile(p(deep + '/leaf.txt'), 'utf8'), 'deepest\n');
  assert.equal((await fsp.readdir(p('wide'))).length, 300);

  // symlinks
  assert.equal(await fsp.readlink(p('links/rel')), '../files/one-byte');
  assert.equal(await fsp.readlink(p('links/abs')), '/etc/hostname');
  assert.equal((await fsp.readlink(p('links/long-target'))).length, 1000);
  await assert.rejects(fsp.stat(p('links/dangling')), { code: 'ENOENT' });

  // hardlinks
  const a = await st('hardlinks/a.bin');
  assert.equal(a.nlink, 3n);
  assert.equal((await st('other/c.bin')).ino, a.ino);
  assert.equal((await st('hardlinks/sub/b.bin')).ino, a.ino);
  assert.equal((await st('other/pair-2.txt')).ino, (await st('hardlinks/pair-1.txt')).ino);
  assert.equal((await st('hardlinks/pair-1.txt')).nlink, 2n);

  // special files
  const chr = await st('special/chardev');
  assert.ok(chr.isCharacterDevice());
  assert.equal(chr.rdev, (240n << 8n) | 17n);
  const blk = await st('special/blockdev');
  assert.ok(blk.isBlockDevice());
  assert.equal(blk.rdev, (7n << 8n) | 200n);
  assert.ok((await st('special/fifo')).isFIFO());
  assert.ok((await st('special/socket')).isSocket(), 'socket file remains after the listener closed');

  // modes, owners, times
  assert.equal((await st('modes/setuid-04755')).mode & 0o7777n, 0o4755n);
  assert.equal((await st('modes/setgid-02755')).mode & 0o7777n, 0o2755n);
  assert.equal((await st('modes/dir-sticky-01777')).mode & 0o7777n, 0o1777n);
  assert.equal((await st('modes/mode-0000')).mode & 0o7777n, 0n);
  const big = await st('owners/big-100000');
  assert.deepEqual([big.uid, big.gid], [100000n, 100001n]);
  const sym = await st('owners/symlink-4321');
  assert.deepEqual([sym.uid, sym.gid], [4321n, 8765n]);
  assert.equal((await st('times/ns-123456789')).mtimeNs, 1234567890123456789n);
  assert.equal((await st('times/ns-1')).mtimeNs, 1600000000000000001n);
  assert.equal((await st('times/year-2100')).mtimeNs, 4102444800n * 1000000000n);
  assert.equal((await st('times/symlink')).mtimeNs, 1500000000500000000n);
  assert.equal((await st('times/old-dir')).mtimeNs, 86400n * 1000000000n, 'dir mtime set after its children');
  assert.equal((await st('.')).mtimeNs, 1700000000987654321n);

  // xattrs (napi-rs/xattr does not follow symlinks)
  const many = xattr.listAttributesSync(p('xattrs/many')).sort();
  assert.ok(many.includes('user.binary') && many.includes('trusted.t') && many.includes('security.test'));
  assert.deepEqual(xattr.getAttributeSync(p('xattrs/many'), 'user.binary'), Buffer.from([0, 0xff, 0x10, 0, 0x80, 0x7f, 0x0a, 0]));
  assert.deepEqual(xattr.listAttributesSync(p('xattrs/symlink')).sort(), ['security.sym', 'trusted.sym']);
  assert.deepEqual(xattr.listAttributesSync(p('xattrs')).sort(), ['trusted.dir', 'user.dir']);
});

test('makeMessyTree is deterministic and cp -a compares equal', async () => {
  const again = path.join(work, 'again');
  await makeMessyTree(again);
  assert.deepEqual(await compareTrees(base, again), []);
  const copy = await freshCopy();
  assert.deepEqual(await compareTrees(base, copy), []);
  assert.deepEqual(await compareTrees(copy, base), []);
});

test('makeMessyTree honours chunkSize', async (t) => {
  const dir = path.join(await tempDir(t), 'tree');
  await makeMessyTree(dir, { chunkSize: 64 * 1024 });
  assert.equal((await fsp.stat(path.join(dir, 'files/chunk-plus-1'))).size, 64 * 1024 + 1);
  await assert.rejects(makeMessyTree(path.join(dir, 'bad'), { chunkSize: 1000 }));
});

test('makeMessyTree options sparse5G and big', async (t) => {
  const dir = path.join(await tempDir(t), 'tree');
  await makeMessyTree(dir, { sparse5G: true, big: true });
  const sp = path.join(dir, 'sparse/sparse-5g.img');
  const st = await fsp.stat(sp);
  assert.equal(st.size, 5 * 1024 * MiB);
  assert.ok(st.blocks * 512 < 1 * MiB, `sparse file allocates ${st.blocks * 512} bytes`);
  const fh = await fsp.open(sp);
  const b = Buffer.alloc(8);
  await fh.read(b, 0, 8, 1024 * MiB + 3);
  assert.notDeepEqual(b, Buffer.alloc(8));
  await fh.read(b, 0, 8, 1024 * MiB - 8);
  assert.deepEqual(b, Buffer.alloc(8));
  await fh.close();
  assert.equal((await fsp.stat(path.join(dir, 'big/random-64m.bin'))).size, 64 * MiB + 7);
  assert.equal((await fsp.readdir(path.join(dir, 'big/small-files'))).length, 2000);
});

// Reading a 5 GiB sparse file cold costs ~10 s per tree here (the page cache fills with zeros).
test('compareTrees on a 5 GiB sparse file (NYDUS_SLOW_TESTS=1)', { skip: !process.env['NYDUS_SLOW_TESTS'] }, async (t) => {
  const dir = await tempDir(t);
  const a = path.join(dir, 'a');
  await makeMessyTree(a, { sparse5G: true });
  const b = path.join(dir, 'b');
  await runOk('cp', ['-a', a, b]);
  assert.deepEqual(await compareTrees(a, b), []);
  const f = path.join(b, 'sparse/sparse-5g.img');
  const fh = await fsp.open(f, 'r+');
  await fh.write(Buffer.from([1]), 0, 1, 5 * 1024 * MiB - 1);
  await fh.close();
  await runOk('touch', ['-r', path.join(a, 'sparse/sparse-5g.img'), f]);
  assert.deepEqual(await compareTrees(a, b), [`sparse/sparse-5g.img: content differs at byte ${5 * 1024 * MiB - 1}`]);
});

/** Each mutation on a fresh copy: [name, mutate(copy), expected diff patterns (each must match
 * exactly one line, and every line must be matched)]. */
const mutations: Array<[string, (c: string) => Promise<void>, RegExp[]]> = [
  [
    'content byte changed',
    async (c) => {
      const fh = await fsp.open(path.join(c, 'files/4m.bin'), 'r+');
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, 3000000);
      b[0] = b[0]! ^ 0x01;
      await fh.write(b, 0, 1, 3000000);
      await fh.close();
      await restoreTime(c, 'files/4m.bin');
    },
    [/^files\/4m\.bin: content differs at byte 3000000$/],
  ],
  [
    'size changed',
    async (c) => {
      await fsp.appendFile(path.join(c, 'files/empty'), 'x');
      await restoreTime(c, 'files/empty');
    },
    [/^files\/empty: size 0 != 1$/],
  ],
  [
    'mode changed',
    async (c) => fsp.chmod(path.join(c, 'modes/setuid-04755'), 0o755),
    [/^modes\/setuid-04755: mode 4755 != 0755$/],
  ],
  [
    'uid changed',
    async (c) => fsp.lchown(path.join(c, 'owners/1234-5678'), 1235, 5678),
    [/^owners\/1234-5678: uid 1234 != 1235$/],
  ],
  [
    'gid of a symlink changed',
    async (c) => fsp.lchown(path.join(c, 'owners/symlink-4321'), 4321, 1),
    [/^owners\/symlink-4321: gid 8765 != 1$/],
  ],
  [
    'mtime changed by one nanosecond',
    async (c) => {
      await runOk('touch', ['-h', '-d', '@1234567890.123456790', path.join(c, 'times/ns-123456789')]);
    },
    [/^times\/ns-123456789: mtime 1234567890\.123456789 != 1234567890\.123456790$/],
  ],
  [
    'xattr value changed',
    async (c) => runOk('setfattr', ['-n', 'user.a', '-v', '2', path.join(c, 'xattrs/many')]).then(() => undefined),
    [/^xattrs\/many: xattr user\.a "1" != "2"$/],
  ],
  [
    'xattr removed from a symlink, added to a dir',
    async (c) => {
      await runOk('setfattr', ['-h', '-x', 'trusted.sym', path.join(c, 'xattrs/symlink')]);
      await runOk('setfattr', ['-n', 'user.new', '-v', 'v', path.join(c, 'deep')]);
    },
    [/^xattrs\/symlink: xattr trusted\.sym missing in actual$/, /^deep: xattr user\.new extra in actual$/],
  ],
  [
    'symlink target changed',
    async (c) => {
      await fsp.unlink(path.join(c, 'links/rel'));
      await fsp.symlink('../files/4096', path.join(c, 'links/rel'));
      await restoreTime(c, 'links/rel');
      await restoreTime(c, 'links');
    },
    [/^links\/rel: symlink target "\.\.\/files\/one-byte" != "\.\.\/files\/4096"$/],
  ],
  [
    'hardlink broken by copying',
    async (c) => {
      const f = path.join(c, 'other/c.bin');
      await runOk('cp', ['-a', f, f + '.tmp']);
      await fsp.rename(f + '.tmp', f);
      await restoreTime(c, 'other');
    },
    [/^hardlinks\/a\.bin: hardlink group \{hardlinks\/a\.bin = hardlinks\/sub\/b\.bin = other\/c\.bin\} != \{hardlinks\/a\.bin = hardlinks\/sub\/b\.bin\} \{other\/c\.bin\}$/],
  ],
  [
    'extra hardlink between separate files',
    async (c) => {
      await fsp.unlink(path.join(c, 'files/dup/dup-b.bin'));
      await fsp.link(path.join(c, 'files/dup-a.bin'), path.join(c, 'files/dup/dup-b.bin'));
      await restoreTime(c, 'files/dup');
    },
    [
      /^files\/dup-a\.bin: hardlink group \{files\/dup-a\.bin\} != \{files\/dup-a\.bin = files\/dup\/dup-b\.bin\}$/,
      /^files\/dup\/dup-b\.bin: hardlink group/,
      /^files\/dup\/dup-b\.bin: mtime /, // now dup-a's inode, with dup-a's mtime
    ],
  ],
  [
    'file missing',
    async (c) => {
      await fsp.unlink(path.join(c, 'names/.hidden'));
      await restoreTime(c, 'names');
    },
    [/^names\/\.hidden: missing in actual \(file\)$/],
  ],
  [
    'directory missing',
    async (c) => {
      await fsp.rm(path.join(c, 'deep/d01/d02'), { recursive: true });
      await restoreTime(c, 'deep/d01');
    },
    [/^deep\/d01\/d02: missing in actual \(dir \(with 29 entries below\)\)$/],
  ],
  [
    'extra file',
    async (c) => {
      await fsp.writeFile(path.join(c, 'names/extra file.txt'), 'x');
      await restoreTime(c, 'names');
    },
    [/^names\/extra file\.txt: extra in actual \(file\)$/],
  ],
  [
    'rdev changed',
    async (c) => {
      const f = path.join(c, 'special/chardev');
      await fsp.unlink(f);
      await runOk('mknod', ['-m', '0620', f, 'c', '240', '18']);
      await fsp.lchown(f, 0, 5);
      await restoreTime(c, 'special/chardev');
      await restoreTime(c, 'special');
    },
    [/^special\/chardev: rdev 240:17 != 240:18$/],
  ],
  [
    'type changed (fifo → file)',
    async (c) => {
      const f = path.join(c, 'special/fifo');
      await fsp.unlink(f);
      await fsp.writeFile(f, '');
      await restoreTime(c, 'special');
    },
    [/^special\/fifo: type fifo != file$/],
  ],
  [
    'root mode changed',
    async (c) => fsp.chmod(c, 0o700),
    [/^\.: mode 0755 != 0700$/],
  ],
];

for (const [name, mutate, patterns] of mutations) {
  test(`compareTrees detects: ${name}`, async () => {
    const copy = await freshCopy();
    await mutate(copy);
    const diffs = await compareTrees(base, copy);
    assert.equal(diffs.length, patterns.length, `diffs:\n${diffs.join('\n')}`);
    for (const re of patterns) {
      assert.equal(diffs.filter((d) => re.test(d)).length, 1, `${re} not matched once in:\n${diffs.join('\n')}`);
    }
    await fsp.rm(copy, { recursive: true });
  });
}

test('compareTrees options: ignore, ignoreRootAttrs, compareMtime, maxDiffs', async () => {
  const copy = await freshCopy();
  await fsp.chmod(copy, 0o700);
  await runOk('touch', ['-d', '@1', copy]);
  assert.equal((await compareTrees(base, copy)).length, 2);
  assert.deepEqual(await compareTrees(base, copy, { ignoreRootAttrs: true }), []);

  await fsp.rm(path.join(copy, 'wide'), { recursive: true });
  await fsp.writeFile(path.join(copy, 'files/4096'), 'changed');
  await runOk('touch', ['-d', '@1', path.join(copy, 'files/one-byte')]);
  const all = await compareTrees(base, copy, { ignoreRootAttrs: true });
  assert.equal(all.length, 4, all.join('\n')); // wide, 4096 size + mtime, one-byte mtime
  assert.deepEqual(
    await compareTrees(base, copy, {
      ignoreRootAttrs: true,
      compareMtime: false,
      ignore: (rel) => rel === 'wide' || rel.startsWith('files/4'),
    }),
    [],
  );
  // a directory ignored is not descended into (both ways)
  assert.deepEqual(await compareTrees(copy, base, { ignoreRootAttrs: true, ignore: (r) => r === 'wide' || r === 'files' }), []);
  const capped = await compareTrees(base, copy, { ignoreRootAttrs: true, maxDiffs: 1 });
  assert.equal(capped.length, 2);
  assert.match(capped[1]!, /and 3 more differences/);
  await fsp.rm(copy, { recursive: true });
});

test('withOverlay mounts the union read-only and unmounts afterwards', async (t) => {
  const dir = await tempDir(t);
  const bottom = path.join(dir, 'bottom');
  const top = path.join(dir, 'top');
  await fsp.mkdir(path.join(bottom, 'd'), { recursive: true });
  await fsp.mkdir(path.join(top, 'd'), { recursive: true });
  await fsp.writeFile(path.join(bottom, 'a.txt'), 'bottom');
  await fsp.writeFile(path.join(bottom, 'b.txt'), 'only bottom');
  await fsp.writeFile(path.join(bottom, 'd/x'), 'x');
  await fsp.writeFile(path.join(top, 'a.txt'), 'top');
  await fsp.writeFile(path.join(top, 'c.txt'), 'only top');
  await fsp.writeFile(path.join(top, 'd/y'), 'y');

  let seen = '';
  const result = await withOverlay([bottom, top], async (mnt) => {
    seen = mnt;
    assert.ok(fs.readFileSync('/proc/mounts', 'utf8').includes(` ${mnt} overlay `));
    assert.equal(await fsp.readFile(path.join(mnt, 'a.txt'), 'utf8'), 'top');
    assert.equal(await fsp.readFile(path.join(mnt, 'b.txt'), 'utf8'), 'only bottom');
    assert.equal(await fsp.readFile(path.join(mnt, 'c.txt'), 'utf8'), 'only top');
    assert.deepEqual((await fsp.readdir(path.join(mnt, 'd'))).sort(), ['x', 'y']);
    await assert.rejects(fsp.writeFile(path.join(mnt, 'new'), 'x'), { code: 'EROFS' });
    return 42;
  });
  assert.equal(result, 42);
  assertNotMounted(seen);
  assert.equal(fs.existsSync(seen), false, 'mount point removed');

  // single layer, and the callback throwing
  let seen2 = '';
  await assert.rejects(
    withOverlay([top], async (mnt) => {
      seen2 = mnt;
      assert.equal(await fsp.readFile(path.join(mnt, 'a.txt'), 'utf8'), 'top');
      throw new Error('boom');
    }),
    /boom/,
  );
  assertNotMounted(seen2);
  assert.equal(fs.existsSync(seen2), false);
});

/** A small source tree mkfs.erofs can take: xattrs, owners, modes, ns mtimes, all file types. */
async function smallTree(dir: string): Promise<void> {
  await fsp.mkdir(path.join(dir, 'sub'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'hello.txt'), 'hello\n');
  await fsp.writeFile(path.join(dir, 'sub/data.bin'), Buffer.alloc(100000, 7));
  await fsp.link(path.join(dir, 'hello.txt'), path.join(dir, 'sub/hello-link'));
  await fsp.symlink('../hello.txt', path.join(dir, 'sub/sym'));
  await runOk('mknod', [path.join(dir, 'sub/dev'), 'c', '240', '17']);
  await runOk('mkfifo', [path.join(dir, 'sub/fifo')]);
  await fsp.lchown(path.join(dir, 'sub/data.bin'), 1234, 100000);
  await fsp.chmod(path.join(dir, 'sub/data.bin'), 0o4750);
  await runOk('setfattr', ['-n', 'user.k', '-v', '0x00ff', path.join(dir, 'hello.txt')]);
  await runOk('setfattr', ['-h', '-n', 'trusted.s', '-v', 'sym', path.join(dir, 'sub/sym')]);
  await runOk('touch', ['-h', '-d', '@1600000000.123456789', path.join(dir, 'sub/sym')]);
  await runOk('touch', ['-d', '@1600000001.000000001', path.join(dir, 'hello.txt')]);
  await runOk('touch', ['-d', '@1600000002.5', path.join(dir, 'sub')]);
}

test('withLoopErofs mounts a mkfs.erofs image equal to its source and cleans up, also on throw', async (t) => {
  const dir = await tempDir(t);
  const src = path.join(dir, 'src');
  const img = path.join(dir, 'small.erofs');
  await smallTree(src);
  await runOk('mkfs.erofs', ['--quiet', img, src]);
  const fsck = await fsckErofs(img);
  assert.equal(fsck.code, 0, fsck.output);

  let seen = '';
  const diffs = await withLoopErofs(img, async (mnt) => {
    seen = mnt;
    assert.equal(loopDevicesBackedBy(img).length, 1, 'one loop device while mounted');
    assert.ok(fs.readFileSync('/proc/mounts', 'utf8').includes(` ${mnt} erofs ro`));
    // mkfs.erofs 1.5 keeps owners, modes, xattrs (also on symlinks) and mtime nanoseconds
    return compareTrees(src, mnt);
  });
  assert.deepEqual(diffs, []);
  assertNotMounted(seen);
  assert.deepEqual(loopDevicesBackedBy(img), [], 'loop device detached');
  assert.equal(fs.existsSync(seen), false);

  await assert.rejects(
    withLoopErofs(img, async (mnt) => {
      seen = mnt;
      // keep a file open while throwing: cleanup must still unmount and detach
      const fh = await fsp.open(path.join(mnt, 'hello.txt'));
      setTimeout(() => void fh.close(), 50);
      throw new Error('callback failed');
    }),
    /callback failed/,
  );
  assertNotMounted(seen);
  assert.deepEqual(loopDevicesBackedBy(img), []);
  assert.equal(fs.existsSync(seen), false);

  // a mount failure (not an EROFS image) still detaches the loop device
  const junk = path.join(dir, 'junk.img');
  await fsp.writeFile(junk, Buffer.alloc(65536));
  await assert.rejects(withLoopErofs(junk, async () => 1), /mount/);
  assert.deepEqual(loopDevicesBackedBy(junk), []);
});

test('withErofsDevice mounts a bootstrap with a separate blob device', async (t) => {
  const dir = await tempDir(t);
  const src = path.join(dir, 'src');
  await smallTree(src);
  const meta = path.join(dir, 'meta.erofs');
  const blob = path.join(dir, 'blob.img');
  await runOk('mkfs.erofs', ['--quiet', '--chunksize=4096', `--blobdev=${blob}`, meta, src]);
  const fsck = await fsckErofs(meta, { device: blob });
  assert.equal(fsck.code, 0, fsck.output);
  let seen = '';
  const diffs = await withErofsDevice(meta, blob, async (mnt) => {
    seen = mnt;
    assert.equal(loopDevicesBackedBy(meta).length + loopDevicesBackedBy(blob).length, 2);
    return compareTrees(src, mnt);
  });
  assert.deepEqual(diffs, []);
  assertNotMounted(seen);
  assert.deepEqual([...loopDevicesBackedBy(meta), ...loopDevicesBackedBy(blob)], []);
});

test('messy tree through mkfs.erofs 1.5 and the kernel compares equal (255-byte names excluded)', async (t) => {
  const dir = await tempDir(t);
  const img = path.join(dir, 'messy.erofs');
  // erofs-utils 1.5 fails on 255-byte names ("Could not format the device: No such file or directory")
  await runOk('mkfs.erofs', ['--quiet', '--exclude-regex=[^/]{255}', img, base]);
  const diffs = await withLoopErofs(img, (mnt) =>
    compareTrees(base, mnt, { ignore: (rel) => Buffer.byteLength(path.basename(rel)) === 255 }),
  );
  assert.deepEqual(diffs, []);
  assert.deepEqual(loopDevicesBackedBy(img), []);
});

test('tempDir cleanup unmounts what is mounted inside it', async () => {
  const hooks: Array<() => unknown> = [];
  const dir = await tempDir({ after: (fn) => hooks.push(fn) });
  const lower = path.join(dir, 'l');
  const lower2 = path.join(dir, 'l2');
  const mnt = path.join(dir, 'mnt');
  await fsp.mkdir(lower);
  await fsp.mkdir(lower2);
  await fsp.mkdir(mnt);
  await runOk('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower}:${lower2}`, mnt]);
  assert.ok(isMounted(mnt));
  assert.equal(hooks.length, 1);
  await hooks[0]!();
  assert.equal(isMounted(mnt), false);
  assert.equal(fs.existsSync(dir), false);
});

test('run collects output and exit codes; runCli spawns bin/<tool>', async () => {
  const r = await run('cat', [], { input: Buffer.from([1, 2, 3]) });
  assert.equal(r.code, 0);
  assert.deepEqual([...r.stdout], [1, 2, 3]);
  const f = await run('sh', ['-c', 'echo err >&2; exit 3']);
  assert.equal(f.code, 3);
  assert.equal(f.stderr, 'err\n');
  await assert.rejects(run('/nonexistent/program', []), { code: 'ENOENT' });
  await assert.rejects(runOk('false', []), /exit 1/);
  const cli = path.join(REPO_ROOT, 'bin', 'nydus-image');
  if (fs.existsSync(cli)) {
    const c = await runCli('nydus-image', ['--help']);
    assert.equal(typeof c.code, 'number');
  } else {
    await assert.rejects(runCli('nydus-image', ['--help']), { code: 'ENOENT' });
  }
});

test('nothing of ours is left mounted', () => {
  const leftovers = listMountPoints().filter((m) => /\/nydus-(erofs|ovl|test)-/.test(m));
  assert.deepEqual(leftovers, []);
});
