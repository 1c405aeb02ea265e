/**
 * A 3-layer image with whiteouts and opaque directories, judged by overlayfs:
 * three layer directories in OCI form (`.wh.NAME` files, `.wh..wh..opq` markers) are packed as OCI
 * layer tars (GNU tar, pax, gzip), built with `create -t tar-rafs --whiteout-spec none` (as nydusify
 * does), merged bottom first with `merge`, exported with `export --block` and mounted by the kernel.
 * The referee is overlayfs over the same three layers converted to overlayfs form (`.wh.X` → 0:0
 * character device X, `.wh..wh..opq` → xattr trusted.overlay.opaque=y), mounted read-only.
 *
 * The merged bootstrap is also checked by fsck.erofs 1.5 and mounted with the three raw blobs (cut
 * from the export image) as EROFS extra devices.
 *
 * Needs root, loop devices, EROFS and overlayfs in the kernel, setfattr, mknod, gzip, erofs-utils.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import xattr from '@napi-rs/xattr';
import { compareTrees } from '../helpers/compare-tree.js';
import { cleanupTempDir, run, runOk, tempDir, withErofsDevice, withLoopErofs, withOverlay } from '../helpers/mounts.js';
import { cutRawBlobs, diffReport, inspectBlobs, nydusOk, packLayer } from './e2e-util.js';

/** Attributes of a layer entry; mtime is "sec.nnnnnnnnn" (set with `touch -h -d @…`). */
interface Attrs {
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: string;
  xattrs?: Record<string, string>;
}

/** One entry of a layer directory in OCI form. Paths are relative, "." is the layer root. */
type Spec =
  | ({ kind: 'dir'; path: string } & Attrs)
  | ({ kind: 'file'; path: string; data: string } & Attrs)
  | ({ kind: 'symlink'; path: string; target: string } & Attrs)
  | ({ kind: 'fifo'; path: string } & Attrs)
  | ({ kind: 'chr'; path: string; major: number; minor: number } & Attrs)
  /** A hardlink to the earlier entry `target` of the same layer. */
  | { kind: 'link'; path: string; target: string }
  /** OCI whiteout: the empty file `.wh.<name>` next to where `path` was. */
  | { kind: 'whiteout'; path: string }
  /** OCI opaque marker: the empty file `<path>/.wh..wh..opq`. */
  | { kind: 'opaque'; path: string };

const WH = '.wh.';
const OPQ = '.wh..wh..opq';

const LOWER: Spec[] = [
  { kind: 'dir', path: '.', mode: 0o755, mtime: '1600000000.100000001' },
  { kind: 'dir', path: 'a', mtime: '1600000001.000000011' },
  { kind: 'file', path: 'a/keep.txt', data: 'keep\n' },
  { kind: 'file', path: 'a/del.txt', data: 'deleted by the middle layer\n' },
  { kind: 'file', path: 'a/keep2.txt', data: 'deleted by the upper layer\n' },
  { kind: 'dir', path: 'a/sub', mtime: '1600000002.000000022' },
  { kind: 'file', path: 'a/sub/x.txt', data: 'x\n', uid: 1234, gid: 5678 },
  { kind: 'dir', path: 'gone' },
  { kind: 'file', path: 'gone/f1', data: 'f1\n' },
  { kind: 'dir', path: 'gone/deep' },
  { kind: 'file', path: 'gone/deep/f2', data: 'f2\n' },
  { kind: 'dir', path: 'opq', mode: 0o755 },
  { kind: 'file', path: 'opq/old1', data: 'hidden by the opaque marker\n' },
  { kind: 'dir', path: 'opq/olddir' },
  { kind: 'file', path: 'opq/olddir/f', data: 'hidden too\n' },
  { kind: 'file', path: 'mod.txt', data: 'version 1\n', xattrs: { 'user.version': '1' } },
  { kind: 'dir', path: 'modedir', mode: 0o755 },
  { kind: 'file', path: 'modedir/f', data: 'in a dir whose mode changes\n' },
  { kind: 'file', path: 'readd.txt', data: 'original\n' },
  { kind: 'dir', path: 'redir' },
  { kind: 'file', path: 'redir/inner', data: 'must not come back\n' },
  { kind: 'dir', path: 'dir2file' },
  { kind: 'file', path: 'dir2file/child', data: 'replaced by a file\n' },
  { kind: 'file', path: 'file2dir', data: 'replaced by a dir\n' },
  { kind: 'dir', path: 'lk' },
  { kind: 'file', path: 'lk/a', data: 'hardlinked in the lower layer\n', xattrs: { 'trusted.lk': 'shared' } },
  { kind: 'link', path: 'lk/b', target: 'lk/a' },
  { kind: 'symlink', path: 'sym', target: 'a/keep.txt', uid: 4321, gid: 8765 },
  { kind: 'fifo', path: 'fifo', mode: 0o640 },
  { kind: 'chr', path: 'chardev', major: 240, minor: 17, mode: 0o600 },
  { kind: 'file', path: 'setuid', data: 'suid\n', mode: 0o4755 },
  { kind: 'dir', path: 'xd', xattrs: { 'user.x': 'lower', 'trusted.t': 'lower' } },
  { kind: 'file', path: 'xd/l.txt', data: 'l\n' },
  { kind: 'dir', path: 'lk2' },
  { kind: 'file', path: 'lk2/a', data: 'pair split by the middle layer\n' },
  { kind: 'link', path: 'lk2/b', target: 'lk2/a' },
  { kind: 'dir', path: 'hx' },
  { kind: 'dir', path: 'hy' },
  { kind: 'file', path: 'hx/a', data: 'linked across dirs\n' },
  { kind: 'link', path: 'hy/b', target: 'hx/a' },
  { kind: 'symlink', path: 'sym2file', target: 'a/keep.txt' },
  { kind: 'file', path: 'file2sym', data: 'becomes a symlink\n' },
];

const MIDDLE: Spec[] = [
  { kind: 'dir', path: '.', mode: 0o755, mtime: '1600100000.200000002' },
  { kind: 'dir', path: 'a', mtime: '1600100001.000000033' },
  { kind: 'whiteout', path: 'a/del.txt' },
  { kind: 'whiteout', path: 'gone' },
  { kind: 'dir', path: 'opq', mode: 0o750, uid: 1000, gid: 1000 },
  { kind: 'opaque', path: 'opq' },
  { kind: 'file', path: 'opq/new1', data: 'new in the opaque dir\n' },
  { kind: 'file', path: 'mod.txt', data: 'version 2, modified\n', uid: 1000, xattrs: { 'user.version': '2', 'security.sec': 'label' } },
  { kind: 'dir', path: 'modedir', mode: 0o700, uid: 1234, gid: 5678, mtime: '1600100005.500000000' },
  { kind: 'whiteout', path: 'readd.txt' },
  { kind: 'whiteout', path: 'redir' },
  { kind: 'dir', path: 'lk' },
  { kind: 'whiteout', path: 'lk/b' },
  { kind: 'dir', path: 'newdir', xattrs: { 'trusted.newdir': 'middle' } },
  { kind: 'file', path: 'newdir/n.txt', data: 'hidden by the upper opaque marker\n' },
  { kind: 'dir', path: 'xd', mode: 0o700 },
  { kind: 'file', path: 'xd/m.txt', data: 'm\n' },
  { kind: 'dir', path: 'lk2' },
  { kind: 'file', path: 'lk2/b', data: 'new b, no longer linked to a\n' },
  { kind: 'whiteout', path: 'hy' },
];

const UPPER: Spec[] = [
  { kind: 'dir', path: '.', mode: 0o755, mtime: '1600200000.300000003' },
  { kind: 'file', path: 'readd.txt', data: 're-added\n', mode: 0o600 },
  { kind: 'dir', path: 'redir', mode: 0o711 },
  { kind: 'file', path: 'redir/fresh', data: 'fresh\n' },
  { kind: 'file', path: 'dir2file', data: 'was a directory\n' },
  { kind: 'dir', path: 'file2dir' },
  { kind: 'file', path: 'file2dir/x', data: 'was a file\n' },
  { kind: 'dir', path: 'hl' },
  { kind: 'file', path: 'hl/h1', data: 'upper hardlink pair\n', uid: 2000, gid: 2001, xattrs: { 'user.hl': 'pair' } },
  { kind: 'link', path: 'hl/h2', target: 'hl/h1' },
  { kind: 'dir', path: 'opq' },
  { kind: 'file', path: 'opq/new2', data: 'added above the opaque dir\n' },
  { kind: 'dir', path: 'a', mtime: '1600200001.000000044' },
  { kind: 'whiteout', path: 'a/keep2.txt' },
  { kind: 'dir', path: 'a/sub' },
  { kind: 'file', path: 'a/sub/y.txt', data: 'y\n' },
  { kind: 'dir', path: 'a/sub/deeper' },
  { kind: 'file', path: 'a/sub/deeper/new.txt', data: 'deeper\n' },
  { kind: 'whiteout', path: 'never-existed' },
  { kind: 'dir', path: 'newdir', mode: 0o755 },
  { kind: 'opaque', path: 'newdir' },
  { kind: 'file', path: 'newdir/only.txt', data: 'only this one\n' },
  { kind: 'file', path: 'sym2file', data: 'was a symlink\n' },
  { kind: 'symlink', path: 'file2sym', target: 'mod.txt' },
];

/** Where a spec's file lives in OCI form. */
function ociPath(s: Spec): string {
  if (s.kind === 'whiteout') return path.join(path.dirname(s.path), WH + path.basename(s.path));
  if (s.kind === 'opaque') return path.join(s.path, OPQ);
  return s.path;
}

/** Creates the layer `specs` in OCI form at `root` with exact attributes; directory mtimes last,
 * deepest first, the root at the very end. `layerNo` spreads the default mtimes. */
async function materialize(root: string, specs: readonly Spec[], layerNo: number): Promise<void> {
  await fsp.mkdir(root);
  const abs = (rel: string) => path.join(root, rel);
  const timed: Array<{ rel: string; mtime: string; dir: boolean }> = [];
  let n = 0;
  for (const s of specs) {
    n++;
    const rel = ociPath(s);
    const p = abs(rel);
    switch (s.kind) {
      case 'dir':
        if (rel !== '.') await fsp.mkdir(p);
        break;
      case 'file':
        await fsp.writeFile(p, s.data);
        break;
      case 'symlink':
        await fsp.symlink(s.target, p);
        break;
      case 'fifo':
        await runOk('mkfifo', [p]);
        break;
      case 'chr':
        await runOk('mknod', [p, 'c', String(s.major), String(s.minor)]);
        break;
      case 'link':
        await fsp.link(abs(s.target), p);
        continue; // shares the target's inode and attributes
      case 'whiteout':
      case 'opaque':
        await fsp.writeFile(p, '');
        break;
    }
    const a: Attrs = s.kind === 'whiteout' || s.kind === 'opaque' ? {} : s;
    if (a.uid !== undefined || a.gid !== undefined) await fsp.lchown(p, a.uid ?? 0, a.gid ?? 0);
    if (s.kind !== 'symlink') {
      const mode = a.mode ?? (s.kind === 'dir' ? 0o755 : 0o644);
      await fsp.chmod(p, mode);
    }
    for (const [name, value] of Object.entries(a.xattrs ?? {})) await runOk('setfattr', ['-h', '-n', name, '-v', value, p]);
    const mtime = a.mtime ?? `${1500000000 + layerNo * 100000 + n * 17}.${String(n * 123457 + layerNo).padStart(9, '0')}`;
    timed.push({ rel, mtime, dir: s.kind === 'dir' });
  }
  const depth = (rel: string) => (rel === '.' ? -1 : rel.split('/').length);
  const order = [...timed.filter((x) => !x.dir), ...timed.filter((x) => x.dir).sort((x, y) => depth(y.rel) - depth(x.rel))];
  for (const x of order) await runOk('touch', ['-h', '-d', `@${x.mtime}`, abs(x.rel)]);
}

/** Converts a copy of the OCI-form layer `oci` to overlayfs form at `ovl`: `.wh.X` → character
 * device 0:0 named X, `.wh..wh..opq` → trusted.overlay.opaque=y on its directory. Directory mtimes
 * touched by the conversion are restored from `oci`. */
async function toOverlayForm(oci: string, ovl: string): Promise<void> {
  await runOk('cp', ['-a', oci, ovl]);
  const changed = new Set<string>();
  const walk = async (rel: string): Promise<void> => {
    for (const d of await fsp.readdir(path.join(ovl, rel), { withFileTypes: true })) {
      const r = rel === '.' ? d.name : `${rel}/${d.name}`;
      if (d.name === OPQ) {
        await fsp.unlink(path.join(ovl, r));
        await runOk('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path.join(ovl, rel)]);
        changed.add(rel);
      } else if (d.name.startsWith(WH)) {
        await fsp.unlink(path.join(ovl, r));
        await runOk('mknod', [path.join(ovl, rel, d.name.slice(WH.length)), 'c', '0', '0']);
        changed.add(rel);
      } else if (d.isDirectory()) {
        await walk(r);
      }
    }
  };
  await walk('.');
  for (const rel of changed) await runOk('touch', ['-h', '-r', path.join(oci, rel), path.join(ovl, rel)]);
}

let work = '';
const ovlLayers: string[] = [];
let merged = '';
let blobDir = '';
let image = '';

before(async () => {
  work = await tempDir();
  blobDir = path.join(work, 'blobs');
  await fsp.mkdir(blobDir);
  const boots: string[] = [];
  const layers: Array<[string, Spec[]]> = [
    ['lower', LOWER],
    ['middle', MIDDLE],
    ['upper', UPPER],
  ];
  for (const [k, [name, specs]] of layers.entries()) {
    const oci = path.join(work, `${name}-oci`);
    await materialize(oci, specs, k + 1);
    const ovl = path.join(work, `${name}-ovl`);
    await toOverlayForm(oci, ovl);
    ovlLayers.push(ovl);
    const tarFile = path.join(work, `${name}.tar`);
    await packLayer(oci, tarFile);
    await runOk('gzip', ['-n', tarFile]);
    const boot = path.join(work, `${name}.boot`);
    await nydusOk(['create', '-t', 'tar-rafs', '--whiteout-spec', 'none', '-B', boot, '-D', blobDir, `${tarFile}.gz`]);
    boots.push(boot);
  }
  merged = path.join(work, 'merged.boot');
  await nydusOk(['merge', '-B', merged, ...boots]);
  image = path.join(work, 'disk.img');
  await nydusOk(['export', '--block', '-B', merged, '-D', blobDir, '-O', image]);
});

after(async () => {
  if (work) await cleanupTempDir(work);
});

test('the merged bootstrap passes check with its blobs, and lists the 3 layer blobs', async () => {
  await nydusOk(['check', '-B', merged, '-D', blobDir, '-q']);
  const blobs = await inspectBlobs(merged);
  assert.equal(blobs.length, 3, JSON.stringify(blobs, null, 1));
  assert.deepEqual(blobs.map((b) => b.index), [0, 1, 2]);
  assert.equal(new Set(blobs.map((b) => b.blob_id)).size, 3);
  const files = (await fsp.readdir(blobDir)).sort();
  assert.deepEqual([...blobs.map((b) => b.blob_id)].sort(), files);
});

/** What the union must look like, whoever builds it (guards the referee as much as the image). */
async function assertUnionShape(root: string): Promise<void> {
  const ls = async (rel: string) => (await fsp.readdir(path.join(root, rel))).sort();
  const exists = async (rel: string) => fsp.lstat(path.join(root, rel)).then(() => true, () => false);
  const read = (rel: string) => fsp.readFile(path.join(root, rel), 'utf8');
  assert.deepEqual(await ls('.'), [
    'a', 'chardev', 'dir2file', 'fifo', 'file2dir', 'file2sym', 'hl', 'hx', 'lk', 'lk2', 'mod.txt', 'modedir', 'newdir',
    'opq', 'readd.txt', 'redir', 'setuid', 'sym', 'sym2file', 'xd',
  ]);
  assert.deepEqual(await ls('a'), ['keep.txt', 'sub']);
  assert.deepEqual(await ls('a/sub'), ['deeper', 'x.txt', 'y.txt']);
  assert.deepEqual(await ls('opq'), ['new1', 'new2']);
  assert.deepEqual(await ls('redir'), ['fresh']);
  assert.deepEqual(await ls('newdir'), ['only.txt']);
  assert.deepEqual(await ls('lk'), ['a']);
  assert.deepEqual(await ls('modedir'), ['f']);
  assert.deepEqual(await ls('file2dir'), ['x']);
  assert.deepEqual(await ls('xd'), ['l.txt', 'm.txt']);
  assert.deepEqual(xattr.listAttributesSync(path.join(root, 'xd')), [], 'xd: the middle layer has no xattrs on it');
  assert.deepEqual(await ls('hx'), ['a']);
  assert.notEqual((await fsp.stat(path.join(root, 'lk2/a'))).ino, (await fsp.stat(path.join(root, 'lk2/b'))).ino);
  assert.equal(await read('lk2/a'), 'pair split by the middle layer\n');
  assert.equal(await read('sym2file'), 'was a symlink\n');
  assert.equal(await fsp.readlink(path.join(root, 'file2sym')), 'mod.txt');
  assert.equal(await exists('gone'), false);
  assert.equal(await read('readd.txt'), 're-added\n');
  assert.equal(await read('mod.txt'), 'version 2, modified\n');
  assert.equal(await read('dir2file'), 'was a directory\n');
  assert.equal((await fsp.stat(path.join(root, 'modedir'))).mode & 0o7777, 0o700);
  const h1 = await fsp.stat(path.join(root, 'hl/h1'));
  assert.equal((await fsp.stat(path.join(root, 'hl/h2'))).ino, h1.ino);
  for (const rel of ['.wh.gone', 'a/.wh.del.txt', `opq/${OPQ}`, '.wh.never-existed']) assert.equal(await exists(rel), false, rel);
}

test('overlayfs over the converted layers has the expected shape (the referee is sane)', async () => {
  await withOverlay(ovlLayers, (mnt) => assertUnionShape(mnt));
});

test('the kernel mount of the merged export has the expected shape', async () => {
  await withLoopErofs(image, (mnt) => assertUnionShape(mnt));
});

test('overlayfs and the kernel mount of the merged export are the same tree', async () => {
  const diffs = await withOverlay(ovlLayers, (ovl) => withLoopErofs(image, (erofs) => compareTrees(ovl, erofs)));
  assert.deepEqual(diffs, [], diffReport('overlayfs vs. merged image', diffs));
});

test('fsck.erofs 1.5 and the kernel accept the merged bootstrap with the 3 raw blobs as devices', async (t) => {
  const dir = await tempDir(t);
  const blobs = await inspectBlobs(merged);
  const raws = await cutRawBlobs(image, blobs, dir);
  const devices = raws.map((r) => `--device=${r}`);
  // fsckErofs takes one device; the merged image has three (device ids 1..3 in the chunk indexes)
  for (const extra of [[], ['--extract']]) {
    const r = await run('fsck.erofs', [...extra, ...devices, merged]);
    assert.equal(r.code, 0, `fsck.erofs ${[...extra, ...devices].join(' ')}: ${r.stdout.toString('utf8')}${r.stderr}`);
  }
  const diffs = await withOverlay(ovlLayers, (ovl) => withErofsDevice(merged, raws, (erofs) => compareTrees(ovl, erofs)));
  assert.deepEqual(diffs, [], diffReport('overlayfs vs. merged bootstrap + 3 blob devices', diffs));
});
