/**
 * nydusd serves the same trees the kernel does: every build configuration, single-layer and
 * merged images, and the real Nydus fixtures, compared file by file through the FUSE mount.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { makeMessyTree } from '../helpers/make-tree.js';
import { compareTrees } from '../helpers/compare-tree.js';
import { runCli, tempDir, cleanupTempDir } from '../helpers/mounts.js';
import { nydusdConfig, startNydusd, apiMount, type NydusdHandle } from '../helpers/nydusd.js';
import { RafsImage } from '../../src/image/rafs-image.js';
import { fileSource } from '../../src/image/byte-source.js';
import { digest } from '../../src/util/digest.js';
import { toHex } from '../../src/util/bytes.js';

const FIX = path.resolve(import.meta.dirname, '../../../shared/fixtures/nydus');

async function nydusImage(args: string[]): Promise<void> {
  const r = await runCli('nydus-image', args);
  assert.equal(r.code, 0, `nydus-image ${args.join(' ')}: ${r.stderr}`);
}

function report(diffs: string[]): string {
  return diffs.slice(0, 30).join('\n');
}

describe('nydusd serves built images over FUSE exactly as the source', () => {
  let work: string;
  let d: NydusdHandle;
  const trees = new Map<number, string>();

  before(async () => {
    work = await tempDir(undefined, 'nydusd-tree-');
    d = await startNydusd({ dir: work });
  });
  after(async () => {
    await d?.stop();
    await cleanupTempDir(work);
  });

  const matrix: Array<{ name: string; compressor: string; chunk: number; digester: string; toc: boolean }> = [
    { name: 'zstd 1 MiB blake3', compressor: 'zstd', chunk: 0x100000, digester: 'blake3', toc: true },
    { name: 'lz4_block 4 KiB sha256', compressor: 'lz4_block', chunk: 0x1000, digester: 'sha256', toc: false },
    { name: 'none 16 MiB blake3', compressor: 'none', chunk: 0x1000000, digester: 'blake3', toc: true },
  ];
  for (const m of matrix) {
    test(`${m.name}: the mounted tree equals the source`, async () => {
      let src = trees.get(m.chunk);
      if (!src) {
        src = path.join(work, `src-${m.chunk}`);
        // One configuration carries the sparse 5 GiB file (one zero chunk, read 5120 times).
        await makeMessyTree(src, { chunkSize: m.chunk, sparse5G: m.chunk === 0x100000 });
        trees.set(m.chunk, src);
      }
      const out = path.join(work, `out-${m.chunk}-${m.compressor}`);
      await nydusImage(['create', '-t', 'dir-rafs', '--chunk-size', `0x${m.chunk.toString(16)}`, '--compressor', m.compressor, '--digester', m.digester,
        ...(m.toc ? ['--features', 'blob-toc'] : []), '-B', `${out}/boot`, '-D', `${out}/blobs`, src]);
      const mnt = path.join(work, `mnt-${m.chunk}-${m.compressor}`);
      const r = await apiMount(d, mnt, `${out}/boot`, nydusdConfig({ backend: { type: 'localfs', dir: `${out}/blobs` }, workDir: `${out}/cache` }));
      assert.equal(r.status, 204, JSON.stringify(r.body));
      try {
        const diffs = await compareTrees(src, mnt);
        assert.deepEqual(diffs, [], report(diffs));
      } finally {
        const u = await d.api('DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(mnt)}`);
        assert.equal(u.status, 204, JSON.stringify(u.body));
      }
    });
  }

  test('a merged 3-layer image serves the flattened tree', async () => {
    const layers = ['l1', 'l2', 'l3'].map((l) => path.join(work, l));
    for (const l of layers) fs.mkdirSync(l, { recursive: true });
    const [l1, l2, l3] = layers as [string, string, string];
    fs.mkdirSync(`${l1}/etc/app`, { recursive: true });
    fs.writeFileSync(`${l1}/etc/app/a.conf`, 'a1');
    fs.writeFileSync(`${l1}/etc/app/b.conf`, 'b1');
    fs.mkdirSync(`${l1}/opt/old`, { recursive: true });
    fs.writeFileSync(`${l1}/opt/old/x`, 'x');
    fs.writeFileSync(`${l1}/big`, Buffer.alloc(3 << 20, 7));
    fs.mkdirSync(`${l2}/etc/app`, { recursive: true });
    fs.writeFileSync(`${l2}/etc/app/.wh.b.conf`, '');
    fs.writeFileSync(`${l2}/etc/app/a.conf`, 'a2');
    fs.mkdirSync(`${l2}/opt/old`, { recursive: true });
    fs.writeFileSync(`${l2}/opt/old/.wh..wh..opq`, '');
    fs.writeFileSync(`${l2}/opt/old/y`, 'y');
    fs.mkdirSync(`${l3}/usr`, { recursive: true });
    fs.writeFileSync(`${l3}/usr/z`, 'z3');
    const boots: string[] = [];
    for (const [k, l] of layers.entries()) {
      const tar = `${l}.tar`;
      const r = await runCli('nydus-image', ['create', '-t', 'dir-rafs', '--whiteout-spec', 'none', '-B', `${l}.boot`, '-D', `${work}/mblobs`, l]);
      assert.equal(r.code, 0, r.stderr);
      void tar;
      boots.push(`${l}.boot`);
      void k;
    }
    await nydusImage(['merge', '-B', `${work}/merged.boot`, ...boots]);
    const mnt = path.join(work, 'mnt-merged');
    const r = await apiMount(d, mnt, `${work}/merged.boot`, nydusdConfig({ backend: { type: 'localfs', dir: `${work}/mblobs` }, workDir: `${work}/mcache` }));
    assert.equal(r.status, 204, JSON.stringify(r.body));
    try {
      assert.equal(fs.readFileSync(`${mnt}/etc/app/a.conf`, 'utf8'), 'a2');
      assert.equal(fs.existsSync(`${mnt}/etc/app/b.conf`), false);
      assert.deepEqual(fs.readdirSync(`${mnt}/opt/old`), ['y']);
      assert.equal(fs.readFileSync(`${mnt}/usr/z`, 'utf8'), 'z3');
      assert.equal(createHash('sha256').update(fs.readFileSync(`${mnt}/big`)).digest('hex'), createHash('sha256').update(Buffer.alloc(3 << 20, 7)).digest('hex'));
      assert.deepEqual(fs.readdirSync(mnt).sort(), ['big', 'etc', 'opt', 'usr']);
    } finally {
      await d.api('DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(mnt)}`);
    }
  });

  test('the real Nydus fixtures mount and serve bytes whose chunk digests equal the bootstrap\'s', async () => {
    const cases: Array<{ boot: string; blobDir: string }> = [{ boot: `${FIX}/rafs-v6-2.2.boot`, blobDir: `${FIX}/blobs` }];
    // The ToC blob carries its own bootstrap; its data is the same file, named by the id inside.
    const tocBlob = `${FIX}/toc/2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca`;
    const tocDir = path.join(work, 'tocblobs');
    fs.mkdirSync(tocDir, { recursive: true });
    const { readInlineBootstrap } = await import('../../src/blob/blob-toc.js');
    const inner = readInlineBootstrap(fileSource(tocBlob));
    fs.writeFileSync(`${work}/toc.boot`, inner);
    const innerImg = new RafsImage(fileSource(`${work}/toc.boot`));
    fs.copyFileSync(tocBlob, path.join(tocDir, innerImg.blobs[0]?.slot.blobId as string));
    innerImg.close();
    cases.push({ boot: `${work}/toc.boot`, blobDir: tocDir });
    for (const [k, c] of cases.entries()) {
      const img = new RafsImage(fileSource(c.boot));
      const mnt = path.join(work, `mnt-fixture-${k}`);
      const r = await apiMount(d, mnt, c.boot, nydusdConfig({ backend: { type: 'localfs', dir: c.blobDir }, workDir: `${work}/fcache-${k}` }));
      assert.equal(r.status, 204, JSON.stringify(r.body));
      try {
        const names = fs.readdirSync(mnt).sort();
        assert.ok(names.length >= 2, names.join(','));
        for (const n of names) {
          const data = fs.readFileSync(path.join(mnt, n));
          const i = img.resolve(`/${n}`);
          assert.ok(i);
          assert.equal(data.length, i.size);
          const got: string[] = [];
          for (let off = 0; off < data.length; off += img.ext.chunkSize) got.push(toHex(digest(img.digester, data.subarray(off, off + img.ext.chunkSize))));
          assert.deepEqual(got, img.chunkIndexes(i).map((c) => toHex(img.chunkRecord(c).digest)), n);
        }
      } finally {
        img.close();
        await d.api('DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(mnt)}`);
      }
    }
  });
});
