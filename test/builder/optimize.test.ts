/**
 * nydus-image optimize: the new bootstrap's prefetch table is the list, one new blob holds the
 * listed files' chunks in list order and the listed files point into it, the other files keep
 * their blobs; check --blob-dir, unpack, nydusd and the kernel's EROFS all read the original
 * tree; a path the image lacks is skipped with one warning; a garbage list or a missing blob
 * fails with a clear error and writes nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { prngBytes } from '../helpers/make-tree.js';
import { compareTrees } from '../helpers/compare-tree.js';
import { cleanupTempDir, runCliText, tempDir, withLoopErofs } from '../helpers/mounts.js';
import { nydusdConfig, startNydusd } from '../helpers/nydusd.js';
import { RafsImage } from '../../src/image/rafs-image.js';
import { fileSource } from '../../src/image/byte-source.js';
import { blobDirReader, optimize } from '../../src/builder/optimize.js';
import { hasCode } from '../../src/util/errors.js';

let work = '';
let full = '';
let blobs = '';
let merged = '';
const LIST = ['/app/main.js', '/usr/bin/tool', '/nope/missing', '/usr/lib/big.bin', '/app/dup.bin', '/usr/lib/lib1.so', '/usr/share/empty', '/usr/share'];
const PRESENT = LIST.filter((p) => p !== '/nope/missing');
const FILES_WITH_DATA = ['/app/main.js', '/usr/bin/tool', '/usr/lib/big.bin', '/app/dup.bin', '/usr/lib/lib1.so'];

async function nydusImage(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCliText('nydus-image', args, input === undefined ? {} : { input });
}

before(async () => {
  work = await tempDir(undefined, 'nydus-optimize-');
  const l1 = path.join(work, 'l1');
  const l2 = path.join(work, 'l2');
  for (const d of ['usr/lib', 'usr/bin', 'usr/share']) fs.mkdirSync(path.join(l1, d), { recursive: true });
  fs.mkdirSync(path.join(l2, 'app'), { recursive: true });
  fs.writeFileSync(path.join(l1, 'usr/lib/big.bin'), prngBytes('big', 3_500_000));
  fs.writeFileSync(path.join(l1, 'usr/lib/lib1.so'), prngBytes('lib1', 200_000));
  fs.writeFileSync(path.join(l1, 'usr/bin/tool'), prngBytes('tool', 300_000));
  fs.linkSync(path.join(l1, 'usr/bin/tool'), path.join(l1, 'usr/bin/tool2'));
  fs.writeFileSync(path.join(l1, 'usr/share/empty'), '');
  fs.symlinkSync('../lib/lib1.so', path.join(l1, 'usr/share/link'));
  fs.writeFileSync(path.join(l2, 'app/main.js'), prngBytes('main', 50_000));
  fs.writeFileSync(path.join(l2, 'app/dup.bin'), prngBytes('lib1', 200_000));
  fs.writeFileSync(path.join(l2, 'app/data.bin'), prngBytes('data', 2_000_000));
  full = path.join(work, 'full');
  fs.mkdirSync(full);
  execFileSync('cp', ['-a', `${l1}/.`, `${l2}/.`, full]);
  blobs = path.join(work, 'blobs');
  for (const [name, dir] of [['l1', l1], ['l2', l2]] as const) {
    const r = await nydusImage(['create', '--bootstrap', path.join(work, `${name}.boot`), '--blob-dir', blobs, '--features', 'blob-toc', dir]);
    assert.equal(r.code, 0, r.stderr);
  }
  merged = path.join(work, 'merged.boot');
  const m = await nydusImage(['merge', '--bootstrap', merged, path.join(work, 'l1.boot'), path.join(work, 'l2.boot')]);
  assert.equal(m.code, 0, m.stderr);
});
after(async () => { await cleanupTempDir(work); });

describe('nydus-image optimize', () => {
  test('optimize: prefetch table = list, one new blob with the listed data in list order, the tree unchanged', async () => {
    const out = path.join(work, 'opt.boot');
    const listFile = path.join(work, 'list.txt');
    fs.writeFileSync(listFile, `${LIST.join('\n')}\n`);
    const r = await nydusImage(['optimize', '--bootstrap', merged, '--blob-dir', blobs, '--prefetch-files', listFile, '--output-bootstrap', out]);
    assert.equal(r.code, 0, r.stderr);
    const warnings = r.stderr.split('\n').filter((l) => l.includes('warning'));
    assert.equal(warnings.length, 1, r.stderr);
    assert.match(warnings[0] as string, /\/nope\/missing/);

    const before = new RafsImage(fileSource(merged));
    const image = new RafsImage(fileSource(out));
    try {
      // Old blobs keep their entries; one new blob, named by its sha256, last.
      assert.equal(image.blobs.length, before.blobs.length + 1);
      before.blobs.forEach((b, k) => assert.equal(image.blobs[k]?.slot.blobId, b.slot.blobId));
      const nb = image.blobs[image.blobs.length - 1];
      assert.ok(nb);
      const blobFile = path.join(blobs, nb.slot.blobId);
      assert.equal(createHash('sha256').update(fs.readFileSync(blobFile)).digest('hex'), nb.slot.blobId);

      // The prefetch table is the list (missing path skipped), in list order.
      const nid = (p: string): number => (image.resolve(p) ?? assert.fail(`${p} missing`)).nid;
      assert.deepEqual(image.prefetchNids(), PRESENT.map(nid));

      // Listed files' chunks are in the new blob, contiguous from 0 in list order (shared content once).
      const seen = new Set<number>();
      let next = 0;
      for (const p of FILES_WITH_DATA) {
        const ino = image.resolve(p) ?? assert.fail(p);
        for (const c of image.chunkIndexes(ino)) {
          assert.equal(c.blobIndex, nb.index, `${p} points into the new blob`);
          const rec = image.chunkRecord(c);
          if (seen.has(rec.index)) continue;
          seen.add(rec.index);
          assert.equal(rec.compressedOffset, next, `${p}: chunk ${rec.index} follows the one before`);
          next += rec.compressedSize;
        }
      }
      assert.equal(seen.size, nb.entry.chunkCount, 'the new blob holds only the listed chunks');
      // lib1.so has the content of dup.bin, listed earlier: it shares that copy.
      const dup = image.chunkRecord(image.chunkIndexes(image.resolve('/app/dup.bin') ?? assert.fail())[0] ?? assert.fail());
      const lib = image.chunkRecord(image.chunkIndexes(image.resolve('/usr/lib/lib1.so') ?? assert.fail())[0] ?? assert.fail());
      assert.equal(lib.compressedOffset, dup.compressedOffset);
      // An unlisted file keeps its old blob and chunks.
      const oldData = before.chunkIndexes(before.resolve('/app/data.bin') ?? assert.fail());
      assert.deepEqual(image.chunkIndexes(image.resolve('/app/data.bin') ?? assert.fail()), oldData);
    } finally {
      image.close();
      before.close();
    }

    const chk = await nydusImage(['check', '-q', '--bootstrap', out, '--blob-dir', blobs]);
    assert.equal(chk.code, 0, chk.stderr);
    // unpack writes the same tar from both bootstraps.
    const t1 = path.join(work, 'a.tar');
    const t2 = path.join(work, 'b.tar');
    assert.equal((await nydusImage(['unpack', '--bootstrap', merged, '--blob-dir', blobs, '--output', t1])).code, 0);
    assert.equal((await nydusImage(['unpack', '--bootstrap', out, '--blob-dir', blobs, '--output', t2])).code, 0);
    assert.ok(fs.readFileSync(t1).equals(fs.readFileSync(t2)), 'unpack of the optimized image equals that of the original');
    // nydusd (localfs backend) serves the original tree.
    const mnt = path.join(work, 'mnt');
    const d = await startNydusd({ dir: work, bootstrap: out, mountpoint: mnt, config: nydusdConfig({ backend: { type: 'localfs', dir: blobs }, workDir: path.join(work, 'cache') }) });
    try {
      const diffs = await compareTrees(full, mnt, { ignoreRootAttrs: true });
      assert.deepEqual(diffs, [], diffs.slice(0, 20).join('\n'));
    } finally {
      await d.stop();
    }
    // The kernel's EROFS reads the block export.
    const disk = path.join(work, 'disk.img');
    const ex = await nydusImage(['export', '--block', '--bootstrap', out, '--blob-dir', blobs, '--output', disk]);
    assert.equal(ex.code, 0, ex.stderr);
    await withLoopErofs(disk, async (m) => {
      const diffs = await compareTrees(full, m, { ignoreRootAttrs: true });
      assert.deepEqual(diffs, [], diffs.slice(0, 20).join('\n'));
    });
  });

  test('optimize(): reads only the listed files\' chunks, contiguous ones in one read, through the callback', async () => {
    const outDir = path.join(work, 'cb-blobs');
    const reader = blobDirReader(blobs);
    const reads: Array<[string, number, number]> = [];
    try {
      const r = await optimize({
        bootstrap: merged, outputBootstrap: path.join(work, 'cb.boot'), outputBlobDir: outDir, prefetch: ['/usr/lib/big.bin', '/app/main.js'],
        readBlob: async (b, off, len) => { reads.push([b.slot.blobId, off, len]); return reader.read(b, off, len); },
      });
      const image = new RafsImage(fileSource(merged));
      try {
        const want = new Map<string, number>();
        for (const p of ['/usr/lib/big.bin', '/app/main.js']) {
          for (const c of image.chunkIndexes(image.resolve(p) ?? assert.fail())) {
            const rec = image.chunkRecord(c);
            want.set(`${c.blobIndex}:${rec.index}`, rec.compressedSize);
          }
        }
        const total = [...want.values()].reduce((a, b) => a + b, 0);
        assert.equal(r.bytesRead, total);
        assert.equal(reads.reduce((a, x) => a + x[2], 0), total);
        // big.bin's 4 chunks are contiguous in its blob: one read; main.js: another.
        assert.equal(reads.length, 2, JSON.stringify(reads));
      } finally {
        image.close();
      }
      assert.deepEqual(fs.readdirSync(outDir), [r.blobId]);
    } finally {
      reader.close();
    }
  });

  test('optimize: a garbage list or a missing blob fails clearly and writes nothing', async () => {
    const out = path.join(work, 'bad.boot');
    const outDir = path.join(work, 'bad-blobs');
    const garbage = await nydusImage(['optimize', '--bootstrap', merged, '--blob-dir', blobs, '--prefetch-files', '-', '--output-bootstrap', out, '--output-blob-dir', outDir], '/app/main.js\nusr/bin/tool\n');
    assert.notEqual(garbage.code, 0);
    assert.match(garbage.stderr, /line 2 "usr\/bin\/tool" is not an absolute path/);
    const binary = path.join(work, 'binary.list');
    fs.writeFileSync(binary, Buffer.from([0x2f, 0xff, 0xfe, 0x00, 0x0a]));
    const bin = await nydusImage(['optimize', '--bootstrap', merged, '--blob-dir', blobs, '--prefetch-files', binary, '--output-bootstrap', out, '--output-blob-dir', outDir]);
    assert.notEqual(bin.code, 0);
    assert.match(bin.stderr, /binary\.list: it is not UTF-8 text/);
    // A blob dir lacking the second layer's blob.
    const partial = path.join(work, 'partial-blobs');
    fs.mkdirSync(partial);
    const l1 = new RafsImage(fileSource(path.join(work, 'l1.boot')));
    const l1Blob = l1.blobs[0]?.slot.blobId ?? assert.fail();
    l1.close();
    fs.copyFileSync(path.join(blobs, l1Blob), path.join(partial, l1Blob));
    const miss = await nydusImage(['optimize', '--bootstrap', merged, '--blob-dir', partial, '--prefetch-files', '-', '--output-bootstrap', out, '--output-blob-dir', outDir], '/usr/bin/tool\n/app/main.js\n');
    assert.notEqual(miss.code, 0);
    assert.match(miss.stderr, /Cannot read blob [0-9a-f]{64} \(blob table entry 1\): .*partial-blobs\/[0-9a-f]{64} does not exist/);
    assert.equal(fs.existsSync(out), false, 'no bootstrap');
    assert.equal(fs.existsSync(outDir), false, 'no blob directory');
    assert.deepEqual(fs.readdirSync(work).filter((f) => f.includes('.tmp-')), [], 'no temporary files');
    // The library says the same with a code.
    const reader = blobDirReader(partial);
    try {
      await assert.rejects(optimize({ bootstrap: merged, outputBootstrap: out, outputBlobDir: outDir, prefetch: ['/app/main.js'], readBlob: reader.read }), (e) => hasCode(e, 'ERR_BLOB_MISSING'));
    } finally {
      reader.close();
    }
    assert.equal(fs.existsSync(out), false);
  });
});
