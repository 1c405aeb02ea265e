import assert from 'node:assert/strict';
import { type Stats, lstatSync, mkdirSync, readFileSync, readlinkSync, chownSync, symlinkSync, linkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { TarEntryType } from '../../src/tar/types.js';
import { byPath, collect, gnuTar, run, tempDir, whole, type CollectedEntry } from './helpers.js';

type Format = 'gnu' | 'pax' | 'ustar';

const LONG_DIR = 'd'.repeat(120);
const LONG_FILE = 'f'.repeat(255);
const DEEP = Array.from({ length: 12 }, (_, i) => `level-${i}-${'x'.repeat(20)}`).join('/');
const USTAR_DEEP = `${'p'.repeat(90)}/${'q'.repeat(60)}/${'n'.repeat(99)}`;
const LONG_TARGET = `../${'t'.repeat(150)}/target`;

/** Build the tree and return the paths to archive, in order (no recursion). */
function buildTree(root: string, format: Format): string[] {
  const paths: string[] = ['.'];
  const mk = (p: string): void => {
    mkdirSync(join(root, p), { recursive: true });
  };
  const file = (p: string, content: string | Uint8Array, mode = 0o644): void => {
    writeFileSync(join(root, p), content);
    chmodSync(join(root, p), mode);
  };
  mk('dir');
  paths.push('dir');
  file('dir/file.txt', 'hello world\n', 0o640);
  run('touch', ['-d', '@1600000000.123456789', join(root, 'dir/file.txt')]);
  file('dir/setuid', 'x', 0o4755);
  file('dir/sticky-dir-file', '', 0o1777);
  file('dir/empty', '');
  file('dir/ünïcødé.txt', 'utf-8 name');
  file('dir/block', new Uint8Array(512).fill(7));
  file('dir/owned', 'owned');
  chownSync(join(root, 'dir/owned'), 1234, 5678);
  paths.push('dir/file.txt', 'dir/setuid', 'dir/sticky-dir-file', 'dir/empty', 'dir/ünïcødé.txt', 'dir/block', 'dir/owned');
  linkSync(join(root, 'dir/file.txt'), join(root, 'hard'));
  symlinkSync('../some/where', join(root, 'sym'));
  run('mkfifo', [join(root, 'fifo')]);
  run('mknod', [join(root, 'chr'), 'c', '1', '3']);
  run('mknod', [join(root, 'blk'), 'b', '7', '200']);
  paths.push('hard', 'sym', 'fifo', 'chr', 'blk');
  mk(USTAR_DEEP.slice(0, USTAR_DEEP.lastIndexOf('/')));
  file(USTAR_DEEP, 'prefix+name');
  paths.push(USTAR_DEEP.slice(0, USTAR_DEEP.indexOf('/')), USTAR_DEEP.slice(0, USTAR_DEEP.lastIndexOf('/')), USTAR_DEEP);
  if (format !== 'ustar') {
    mk(LONG_DIR);
    file(`${LONG_DIR}/${LONG_FILE}`, 'long name');
    linkSync(join(root, LONG_DIR, LONG_FILE), join(root, 'hard-to-long'));
    symlinkSync(LONG_TARGET, join(root, 'long-sym'));
    mk(DEEP);
    file(`${DEEP}/deep.txt`, 'deep');
    file('dir/old', 'old');
    run('touch', ['-d', '@-1000', join(root, 'dir/old')]);
    file('dir/future', 'future');
    run('touch', ['-d', '@10000000000', join(root, 'dir/future')]);
    file('dir/bigid', 'big ids');
    chownSync(join(root, 'dir/bigid'), 3000000, 3000001);
    paths.push(LONG_DIR, `${LONG_DIR}/${LONG_FILE}`, 'hard-to-long', 'long-sym', DEEP, `${DEEP}/deep.txt`, 'dir/old', 'dir/future', 'dir/bigid');
  }
  return paths;
}

function typeOf(st: Stats): TarEntryType {
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  return 'file';
}

async function checkFormat(t: TestContext, format: Format): Promise<void> {
  const dir = tempDir(t);
  const root = join(dir, 'root');
  mkdirSync(root);
  const paths = buildTree(root, format);
  const data = gnuTar(root, join(dir, 'out.tar'), [`--format=${format}`, '--no-recursion'], paths);
  const entries = await collect(whole(data));
  const norm = (p: string): string => (p === '.' ? '' : p);
  assert.deepEqual(
    entries.map((e) => e.path),
    paths.map(norm),
  );
  const seenInode = new Map<number, string>();
  for (const p of paths) {
    const e: CollectedEntry = byPath(entries, norm(p));
    const st = lstatSync(join(root, p));
    const where = `${format} ${p}`;
    const firstLink = seenInode.get(st.ino);
    if (st.isFile() && st.nlink > 1 && firstLink !== undefined) {
      assert.equal(e.type, 'hardlink', where);
      assert.equal(e.linkname, firstLink, where);
      assert.equal(e.size, 0, where);
      continue;
    }
    if (st.isFile()) seenInode.set(st.ino, norm(p));
    assert.equal(e.type, typeOf(st), where);
    assert.equal(e.mode, st.mode & 0o7777, where);
    assert.equal(e.uid, st.uid, where);
    assert.equal(e.gid, st.gid, where);
    assert.equal(e.mtime, Math.floor(st.mtimeMs / 1000), where);
    assert.equal(e.sparse, false, where);
    if (e.type === 'file') {
      assert.equal(e.size, st.size, where);
      assert.deepEqual(Buffer.from(e.content), readFileSync(join(root, p)), where);
    } else {
      assert.equal(e.size, 0, where);
      assert.equal(e.content.length, 0, where);
    }
    assert.equal(e.linkname, e.type === 'symlink' ? readlinkSync(join(root, p)) : '', where);
    if (e.type === 'chardev' || e.type === 'blockdev') {
      assert.deepEqual([e.devmajor, e.devminor], [Math.floor(st.rdev / 256), st.rdev % 256], where);
    }
  }
  const file = byPath(entries, 'dir/file.txt');
  assert.equal(file.mtimeNsec, format === 'pax' ? 123456789 : 0);
  assert.equal(file.uname, 'root');
  assert.equal(byPath(entries, 'chr').devmajor, 1);
  assert.equal(byPath(entries, 'blk').devminor, 200);
  assert.equal(byPath(entries, 'dir/setuid').mode, 0o4755);
  assert.equal(byPath(entries, '').headerOffset, 0);
  const deep = byPath(entries, USTAR_DEEP);
  // ustar splits the long path into prefix + name; GNU uses an 'L' header, PAX a path record.
  if (format === 'ustar') assert.notEqual(data[deep.headerOffset + 345], 0);
  if (format !== 'ustar') {
    assert.equal(byPath(entries, 'dir/old').mtime, -1000);
    assert.equal(byPath(entries, 'dir/future').mtime, 10000000000);
    assert.equal(byPath(entries, 'dir/bigid').uid, 3000000);
    assert.equal(byPath(entries, 'hard-to-long').linkname, `${LONG_DIR}/${LONG_FILE}`);
    assert.equal(byPath(entries, 'long-sym').linkname, LONG_TARGET);
    // The long-name entry's headerOffset points at its first (long name / PAX) header.
    const long = byPath(entries, `${LONG_DIR}/${LONG_FILE}`);
    const hdr = data.subarray(long.headerOffset, long.headerOffset + 512);
    assert.equal(String.fromCharCode(hdr[156] ?? 0), format === 'gnu' ? 'L' : 'x');
  }
}

for (const format of ['gnu', 'pax', 'ustar'] as const) {
  test(`GNU tar --format=${format}: every entry type, long and deep names, links, devices`, async (t) => {
    await checkFormat(t, format);
  });
}

test('PAX xattrs from GNU tar --xattrs are binary safe, including empty values', async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'f');
  writeFileSync(f, 'hi\n');
  run('setfattr', ['-n', 'user.x', '-v', 'val', f]);
  run('setfattr', ['-n', 'user.e', f]);
  run('setfattr', ['-n', 'user.bin', '-v', '0x00ff0a3d', f]);
  const data = gnuTar(dir, join(dir, 'out.tar'), ['--format=pax', '--xattrs', "--xattrs-include=*"], ['f']);
  const [e] = await collect(whole(data));
  assert.ok(e);
  assert.equal(e.path, 'f');
  assert.deepEqual(
    Object.fromEntries([...e.xattrs].map(([k, v]) => [k, Buffer.from(v).toString('hex')])),
    { 'user.x': Buffer.from('val').toString('hex'), 'user.e': '', 'user.bin': '00ff0a3d' },
  );
  assert.equal(Buffer.from(e.content).toString(), 'hi\n');
});

test('GNU tar -P keeps "/" and ".." in names; the parser clamps them to the root', async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'a'));
  mkdirSync(join(dir, 'b'));
  writeFileSync(join(dir, 'b', 'secret'), 's');
  const data = gnuTar(join(dir, 'a'), join(dir, 'out.tar'), ['-P', '--format=gnu'], ['../b/secret', `${dir}/b/secret`]);
  const entries = await collect(whole(data));
  assert.deepEqual(
    entries.map((e) => e.path),
    ['b/secret', `${dir.slice(1)}/b/secret`],
  );
});
