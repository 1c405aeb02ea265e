/**
 * Round trips through `nydus-image unpack`, judged by GNU tar:
 * - directory → create → unpack (tar) → GNU tar extract → equals the directory;
 * - OCI layer tar made by GNU tar (plain, gzip, zstd) → create -t tar-rafs (and -t targz-rafs) →
 *   unpack → extract → equals the original layer extracted with the same flags;
 * - a tar-rafs build → export --block → kernel mount → equals that reference too.
 *
 * Sockets cannot be stored in a tar archive: GNU tar leaves them out of the layer ("socket
 * ignored") and `unpack` skips them (it says so), so the socket of the messy tree is the one
 * expected difference between the directory and anything that went through a tar.
 *
 * Needs root (GNU tar restores owners, set-id modes and trusted.* xattrs), gzip, zstd, loop
 * devices and EROFS in the kernel.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeMessyTree } from '../helpers/make-tree.js';
import { compareTrees } from '../helpers/compare-tree.js';
import { cleanupTempDir, runOk, tempDir, withLoopErofs } from '../helpers/mounts.js';
import { diffReport, extractTar, nydusOk, packLayer } from './e2e-util.js';
import { RafsImage } from '../../src/image/rafs-image.js';
import { fileSource } from '../../src/image/byte-source.js';
import { S_IFMT, S_IFREG } from '../../src/format/v6/constants.js';

/** The one entry of the messy tree a tar cannot carry. */
const SOCKET = 'special/socket';
const ONLY_SOCKET_MISSING = [`${SOCKET}: missing in actual (socket)`];

let work = '';
let src = '';
/** The layer tar extracted by GNU tar: what every tar-rafs round trip must reproduce. */
let reference = '';
const layers: Record<'tar' | 'gzip' | 'zstd', string> = { tar: '', gzip: '', zstd: '' };

before(async () => {
  work = await tempDir();
  src = path.join(work, 'src');
  await makeMessyTree(src);
  layers.tar = path.join(work, 'layer.tar');
  await packLayer(src, layers.tar);
  await runOk('gzip', ['-k', '-n', layers.tar]);
  layers.gzip = `${layers.tar}.gz`;
  await runOk('zstd', ['-q', '-k', layers.tar, '-o', `${layers.tar}.zst`]);
  layers.zstd = `${layers.tar}.zst`;
  reference = path.join(work, 'reference');
  await extractTar(layers.tar, reference);
});

after(async () => {
  if (work) await cleanupTempDir(work);
});

test('GNU tar keeps everything of the messy tree but the socket (sanity of the reference)', async () => {
  assert.deepEqual(await compareTrees(src, reference), ONLY_SOCKET_MISSING);
});

test('directory → create → unpack → GNU tar extract equals the directory (but the socket)', async (t) => {
  const dir = await tempDir(t);
  const boot = path.join(dir, 'boot');
  const blobs = path.join(dir, 'blobs');
  await fsp.mkdir(blobs);
  await nydusOk(['create', '-t', 'dir-rafs', '-B', boot, '-D', blobs, src]);
  const tarFile = path.join(dir, 'unpacked.tar');
  const r = await nydusOk(['unpack', '-B', boot, '-D', blobs, '-o', tarFile]);
  assert.match(r.stdout.toString('utf8') + r.stderr, /1 sockets? skipped/);
  const out = path.join(dir, 'out');
  await extractTar(tarFile, out);
  const diffs = await compareTrees(src, out);
  assert.deepEqual(diffs, ONLY_SOCKET_MISSING, diffReport('directory vs. extracted unpack', diffs));
});

/** `nydus-image unpack` of `boot` to a tar, extracted under `dir`, equals the tree `reference`. */
async function assertUnpackEquals(boot: string, blobs: string, dir: string, reference: string): Promise<void> {
  const tarFile = path.join(dir, 'unpacked.tar');
  await nydusOk(['unpack', '-B', boot, '-D', blobs, '-o', tarFile]);
  const out = path.join(dir, 'out');
  await extractTar(tarFile, out);
  const diffs = await compareTrees(reference, out);
  assert.deepEqual(diffs, [], diffReport('extracted layer vs. extracted unpack', diffs));
}

const TAR_BUILDS: Array<{ name: string; type: 'tar-rafs' | 'targz-rafs'; layer: keyof typeof layers }> = [
  { name: 'tar-rafs, plain tar', type: 'tar-rafs', layer: 'tar' },
  { name: 'tar-rafs, tar+gzip', type: 'tar-rafs', layer: 'gzip' },
  { name: 'tar-rafs, tar+zstd', type: 'tar-rafs', layer: 'zstd' },
  { name: 'targz-rafs alias, tar+gzip', type: 'targz-rafs', layer: 'gzip' },
];

for (const tb of TAR_BUILDS) {
  test(`OCI layer → create -t ${tb.name} → unpack → GNU tar extract equals the extracted layer`, async (t) => {
    const dir = await tempDir(t);
    const boot = path.join(dir, 'boot');
    const blobs = path.join(dir, 'blobs');
    await fsp.mkdir(blobs);
    await nydusOk(['create', '-t', tb.type, '-B', boot, '-D', blobs, layers[tb.layer]]);
    await nydusOk(['check', '-B', boot, '-D', blobs, '-q']);
    await assertUnpackEquals(boot, blobs, dir, reference);
  });
}

test('OCI layer (tar+gzip) → create -t tar-rafs → export --block → kernel mount equals the extracted layer', async (t) => {
  const dir = await tempDir(t);
  const boot = path.join(dir, 'boot');
  const blobs = path.join(dir, 'blobs');
  await fsp.mkdir(blobs);
  await nydusOk(['create', '-t', 'tar-rafs', '-B', boot, '-D', blobs, layers.gzip]);
  const image = path.join(dir, 'disk.img');
  await nydusOk(['export', '--block', '-B', boot, '-D', blobs, '-O', image]);
  const diffs = await withLoopErofs(image, (mnt) => compareTrees(reference, mnt));
  assert.deepEqual(diffs, [], diffReport('extracted layer vs. kernel mount', diffs));
});

test('tar-rafs with a prefetch list: a listed file with the data of an earlier unlisted one gets its own copy in the prefetch run', async (t) => {
  const dir = await tempDir(t);
  const tree = path.join(dir, 'tree');
  const data = randomBytes(200 * 1024);
  await fsp.mkdir(path.join(tree, 'a'), { recursive: true });
  await fsp.mkdir(path.join(tree, 'b'));
  await fsp.mkdir(path.join(tree, 'c'));
  await fsp.writeFile(path.join(tree, 'a/first'), data);
  await fsp.writeFile(path.join(tree, 'b/second'), data);
  await fsp.writeFile(path.join(tree, 'c/other'), randomBytes(100 * 1024));
  const layer = path.join(dir, 'layer.tar');
  // In this order: the unlisted copy is written before the listed one arrives.
  await runOk('tar', ['--format=pax', '-cf', layer, '-C', tree, '--no-recursion', '.', '--recursion', './a', './b', './c']);
  const boot = path.join(dir, 'boot');
  const blobs = path.join(dir, 'blobs');
  await fsp.mkdir(blobs);
  await nydusOk(['create', '-t', 'tar-rafs', '--chunk-size', '0x10000', '--prefetch-policy', 'fs', '-B', boot, '-D', blobs, layer], { input: '/b/second\n' });
  await nydusOk(['check', '-B', boot, '-D', blobs, '-q']);
  const img = new RafsImage(fileSource(boot));
  try {
    const chunksOf = (p: string): number[] => {
      const ino = img.resolve(p);
      assert.ok(ino, p);
      return img.chunkIndexes(ino).map((c) => c.chunkIndex);
    };
    const first = chunksOf('/a/first');
    const second = chunksOf('/b/second');
    const other = chunksOf('/c/other');
    assert.equal(second.length, 4);
    assert.ok(Math.min(...second) > Math.max(...first, ...other), `the listed file's chunks ${second.join(',')} all come after the others (${[...first, ...other].join(',')})`);
    assert.deepEqual(second, [...second].sort((x, y) => x - y), 'in file order');
    assert.equal(Math.max(...second) - Math.min(...second), second.length - 1, 'one contiguous run');
  } finally {
    img.close();
  }
  const ref = path.join(dir, 'ref');
  await extractTar(layer, ref);
  await assertUnpackEquals(boot, blobs, dir, ref);
});

test('tar-rafs with a prefetch list: the listed files\' chunks come last in the blob, together, and the image still round trips', async (t) => {
  const dir = await tempDir(t);
  const boot = path.join(dir, 'boot');
  const blobs = path.join(dir, 'blobs');
  await fsp.mkdir(blobs);
  // Every second regular file of the extracted layer, plus one whole directory.
  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await fsp.readdir(path.join(reference, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) files.push(r);
    }
  };
  await walk('');
  files.sort();
  // Listed in an order unlike the tar's (reversed), as a start-up trace would be.
  const listed = files.filter((_, k) => k % 2 === 1).reverse();
  const someDir = files.find((f) => f.includes('/'))?.split('/')[0] as string;
  const input = [...listed.map((f) => `/${f}`), `/${someDir}`].join('\n') + '\n';
  await nydusOk(['create', '-t', 'tar-rafs', '--prefetch-policy', 'fs', '-B', boot, '-D', blobs, layers.gzip], { input });
  await nydusOk(['check', '-B', boot, '-D', blobs, '-q']);

  const img = new RafsImage(fileSource(boot));
  const covered = (f: string): boolean => listed.includes(f) || f.startsWith(`${someDir}/`);
  try {
    const listedChunks = new Set<number>();
    const otherChunks = new Set<number>();
    for (const f of files) {
      const ino = img.resolve(`/${f}`);
      assert.ok(ino, f);
      if ((ino.mode & S_IFMT) !== S_IFREG || ino.size === 0) continue;
      for (const c of img.chunkIndexes(ino)) (covered(f) ? listedChunks : otherChunks).add(c.chunkIndex);
    }
    // Every chunk of a listed file is in the run, also one whose data an unlisted file holds too
    // (an unlisted file before it keeps its own copy; one after it shares the run's).
    const onlyListed = [...listedChunks].filter((c) => !otherChunks.has(c));
    const onlyOther = [...otherChunks].filter((c) => !listedChunks.has(c));
    assert.ok(onlyListed.length > 0 && onlyOther.length > 0);
    assert.ok(Math.min(...listedChunks) > Math.max(...onlyOther), `prefetch chunks ${[...listedChunks].join(',')} all after the others (up to ${Math.max(...onlyOther)})`);
    // In the run, files come in the order of the list (the order the workload opens them); a file
    // whose data an earlier listed file already holds (dedup) points back to it.
    const seen = new Set<number>();
    let last = -1;
    let placed = 0;
    for (const f of listed) {
      const ino = img.resolve(`/${f}`);
      if (!ino || (ino.mode & S_IFMT) !== S_IFREG || ino.size === 0) continue;
      const cs = img.chunkIndexes(ino).map((c) => c.chunkIndex).filter((c) => onlyListed.includes(c));
      const fresh = cs.filter((c) => !seen.has(c));
      for (const c of cs) seen.add(c);
      if (fresh.length === 0) continue;
      assert.ok(Math.min(...fresh) > last, `${f}: its chunks ${fresh.join(',')} come after those of the files listed before it (${last})`);
      last = Math.max(...fresh);
      placed++;
    }
    assert.ok(placed > 3);
    let prevC = -1;
    let prevU = -1;
    for (let i = 0; ; i++) {
      const r = img.chunkRecordByIndex(0, i);
      if (!r) break;
      assert.ok(r.compressedOffset > prevC && r.uncompressedOffset > prevU, `chunk ${i}: offsets increase with the index`);
      prevC = r.compressedOffset;
      prevU = r.uncompressedOffset;
    }
  } finally {
    img.close();
  }
  await assertUnpackEquals(boot, blobs, dir, reference);
  const leftovers = (await fsp.readdir(blobs)).filter((n) => n.includes('spool'));
  assert.deepEqual(leftovers, [], 'no spool file left');
});
