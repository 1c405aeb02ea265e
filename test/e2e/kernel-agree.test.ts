/**
 * The Linux kernel agrees with us: the messy tree (every file type incl. sockets, UTF-8 and
 * 255-byte names, deep dirs, chunk-size ±1 files, hardlink groups, xattrs in several namespaces incl.
 * POSIX ACLs, set-id/sticky modes, odd owners, ns mtimes, and in one build the 5 GiB sparse file)
 * is built with `nydus-image create` in a matrix of compressors, chunk sizes, digesters and blob
 * layouts, checked with `nydus-image check`, exported with `export --block` and mounted by the
 * kernel's EROFS driver through a loop device; the mounted tree must equal the source, root
 * attributes included. The bootstrap is also checked by erofs-utils 1.5's fsck.erofs and mounted
 * with the raw blob (cut from the export image) as an extra EROFS device.
 *
 * Needs root, loop devices, EROFS in the kernel, erofs-utils (fsck.erofs 1.5), setfattr.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { makeMessyTree } from '../helpers/make-tree.js';
import { compareTrees } from '../helpers/compare-tree.js';
import { fsckErofs, run, tempDir, withErofsDevice, withLoopErofs } from '../helpers/mounts.js';
import { cutRawBlobs, diffReport, inspectBlobs, nydusOk } from './e2e-util.js';

const MiB = 1024 * 1024;

/** One build of the matrix. */
interface Build {
  name: string;
  chunkSize: number;
  compressor: 'zstd' | 'lz4_block' | 'none';
  digester: 'blake3' | 'sha256';
  /** Extra `create` arguments. */
  extra: string[];
  /** Add the 5 GiB sparse file (dedups to one zero chunk per chunk size). */
  sparse5G: boolean;
}

const BUILDS: Build[] = [
  {
    name: 'zstd, 1 MiB chunks, blake3, with the 5 GiB sparse file',
    chunkSize: MiB,
    compressor: 'zstd',
    digester: 'blake3',
    extra: [],
    sparse5G: true,
  },
  { name: 'lz4_block, 4 KiB chunks, sha256', chunkSize: 4096, compressor: 'lz4_block', digester: 'sha256', extra: [], sparse5G: false },
  { name: 'none, 16 MiB chunks, blake3', chunkSize: 16 * MiB, compressor: 'none', digester: 'blake3', extra: [], sparse5G: false },
  {
    name: 'zstd, 1 MiB chunks, blake3, --features blob-toc --blob-inline-meta',
    chunkSize: MiB,
    compressor: 'zstd',
    digester: 'blake3',
    extra: ['--features', 'blob-toc', '--blob-inline-meta'],
    sparse5G: false,
  },
];

/**
 * Differences that come from erofs-utils 1.5's `fsck.erofs --extract`, not from the image
 * (fsck/main.c at tag v1.5): it never writes xattrs, extracts every name of a hardlinked inode as a
 * separate file, and in erofsfsck_set_attributes calls chmod before lchown, so the kernel clears
 * set-user-ID/set-group-ID of the extracted regular files again. The kernel mount and our own check
 * compare those attributes; only this extraction comparison leaves them out.
 */
function isFsckExtractLimitation(line: string): boolean {
  if (/: xattr \S+ missing in actual$/.test(line)) return true;
  if (/: hardlink group \{.*\} != /.test(line)) return true;
  const m = /: mode ([0-7]{4}) != ([0-7]{4})$/.exec(line);
  if (m) {
    const want = parseInt(m[1]!, 8);
    const got = parseInt(m[2]!, 8);
    return (want & 0o6000) !== 0 && (want & ~0o6000) === got;
  }
  return false;
}

for (const b of BUILDS) {
  test(`kernel agrees: ${b.name}`, async (t) => {
    const dir = await tempDir(t);
    const src = path.join(dir, 'src');
    await makeMessyTree(src, { chunkSize: b.chunkSize, sparse5G: b.sparse5G });
    const boot = path.join(dir, 'boot');
    const blobDir = path.join(dir, 'blobs');
    await fsp.mkdir(blobDir);
    await nydusOk([
      'create', '-t', 'dir-rafs', '-B', boot, '-D', blobDir,
      '--chunk-size', `0x${b.chunkSize.toString(16)}`, '--compressor', b.compressor, '--digester', b.digester,
      ...b.extra, src,
    ]);
    await nydusOk(['check', '-B', boot, '-D', blobDir, '-q']);

    const blobs = await inspectBlobs(boot);
    assert.equal(blobs.length, 1, JSON.stringify(blobs));
    const blob = blobs[0]!;
    assert.equal(blob.compressor, b.compressor);
    assert.equal(blob.digester, b.digester);
    if (b.extra.includes('blob-toc')) assert.ok(blob.toc.size > 0, `blob-toc build has no ToC: ${JSON.stringify(blob.toc)}`);
    else assert.equal(blob.toc.size, 0);

    const image = path.join(dir, 'disk.img');
    await nydusOk(['export', '--block', '-B', boot, '-D', blobDir, '-O', image]);

    await t.test('the kernel mounts the export --block image (loop device) and sees the source tree', async () => {
      const diffs = await withLoopErofs(image, (mnt) => compareTrees(src, mnt));
      assert.deepEqual(diffs, [], diffReport('source vs. kernel mount of the export image', diffs));
    });

    const [raw] = await cutRawBlobs(image, blobs, dir);
    assert.ok(raw);
    assert.equal((await fsp.stat(raw)).size, blob.uncompressed_size, 'device slot blocks × 4096 = blob uncompressed size');

    await t.test('fsck.erofs 1.5 accepts the bootstrap with the raw blob as its device', async () => {
      const plain = await fsckErofs(boot, { device: raw });
      assert.equal(plain.code, 0, `fsck.erofs --device: ${plain.output}`);
      // Without --extract, fsck 1.5 only maps the chunks; bare --extract also reads every one.
      const decoded = await run('fsck.erofs', ['--extract', `--device=${raw}`, boot]);
      assert.equal(decoded.code, 0, `fsck.erofs --extract --device: ${decoded.stdout.toString('utf8')}${decoded.stderr}`);
      if (b.sparse5G) return; // extracting would write the 5 GiB file out in full
      const out = path.join(dir, 'fsck-extract');
      const extracted = await fsckErofs(boot, { device: raw, extract: out });
      assert.equal(extracted.code, 0, `fsck.erofs --extract=DIR: ${extracted.output}`);
      const diffs = (await compareTrees(src, out)).filter((d) => !isFsckExtractLimitation(d));
      assert.deepEqual(diffs, [], diffReport('source vs. fsck.erofs extraction', diffs));
    });

    await t.test('the kernel mounts the bootstrap with the raw blob as an extra device', async () => {
      const diffs = await withErofsDevice(boot, raw, (mnt) => compareTrees(src, mnt));
      assert.deepEqual(diffs, [], diffReport('source vs. kernel mount of bootstrap + blob device', diffs));
    });
  });
}
