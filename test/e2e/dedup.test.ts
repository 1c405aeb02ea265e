/**
 * Chunk deduplication: the same 10 MiB of random data stored 5 times under different names (separate
 * inodes, not hardlinks) becomes 10 unique 1 MiB chunks referenced 50 times, the blob holds the data
 * once, and the kernel reads all 5 files back correctly from the `export --block` image.
 *
 * Needs root, loop devices and EROFS in the kernel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { compareTrees } from '../helpers/compare-tree.js';
import { tempDir, withLoopErofs } from '../helpers/mounts.js';
import { diffReport, inspectBlobs, nydusOk, statFigures } from './e2e-util.js';

const MiB = 1024 * 1024;
const NAMES = ['one.bin', 'sub/two.bin', 'sub/deeper/three.bin', 'other/four copy.bin', 'other/五.bin'];

test('5 copies of a 10 MiB random file dedup to 10 chunks, one copy in the blob, and read back right', async (t) => {
  const dir = await tempDir(t);
  const src = path.join(dir, 'src');
  const data = randomBytes(10 * MiB);
  const digest = createHash('sha256').update(data).digest('hex');
  for (const [k, rel] of NAMES.entries()) {
    const p = path.join(src, rel);
    await fsp.mkdir(path.dirname(p), { recursive: true });
    await fsp.writeFile(p, data);
    await fsp.utimes(p, 1700000000 + k, 1700000000 + k);
  }
  const inos = await Promise.all(NAMES.map(async (rel) => (await fsp.stat(path.join(src, rel))).ino));
  assert.equal(new Set(inos).size, NAMES.length, 'the copies are separate inodes');

  const boot = path.join(dir, 'boot');
  const blobDir = path.join(dir, 'blobs');
  await fsp.mkdir(blobDir);
  await nydusOk(['create', '-t', 'dir-rafs', '-B', boot, '-D', blobDir, '--chunk-size', '0x100000', src]);
  await nydusOk(['check', '-B', boot, '-D', blobDir, '-q']);

  const figures = await statFigures(boot, path.join(dir, 'stat.json'));
  assert.equal(figures.files, 5);
  assert.equal(figures.file_bytes, 50 * MiB);
  assert.equal(figures.unique_chunks, 10);
  assert.equal(figures.chunk_refs, 50);
  assert.equal(figures.unique_bytes, 10 * MiB);
  assert.equal(figures.dedup_ratio, 5);

  const [blob] = await inspectBlobs(boot);
  assert.ok(blob);
  assert.equal(blob.chunk_count, 10);
  assert.equal(blob.uncompressed_size, 10 * MiB);
  // Random data does not compress: the chunks are stored raw, once. Allow 1 % for the chunk-info
  // table and headers; 5× would be 50 MiB.
  const blobSize = (await fsp.stat(path.join(blobDir, blob.blob_id))).size;
  assert.ok(blobSize >= 10 * MiB && blobSize <= 10.1 * MiB, `blob is ${blobSize} bytes for 10 MiB of unique data`);
  assert.equal(blob.compressed_size, blobSize);

  const image = path.join(dir, 'disk.img');
  await nydusOk(['export', '--block', '-B', boot, '-D', blobDir, '-O', image]);
  await withLoopErofs(image, async (mnt) => {
    for (const rel of NAMES) {
      const got = createHash('sha256').update(await fsp.readFile(path.join(mnt, rel))).digest('hex');
      assert.equal(got, digest, `${rel} read back through the kernel`);
    }
    const diffs = await compareTrees(src, mnt);
    assert.deepEqual(diffs, [], diffReport('source vs. kernel mount', diffs));
  });
});
