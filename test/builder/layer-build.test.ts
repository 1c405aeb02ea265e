/**
 * buildLayer: a tar layer built on a worker thread, fed from this one, gives exactly what `create`
 * gives in place; a failing source or a corrupt layer fails it with that error and leaves no output.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { makeMessyTree } from '../helpers/make-tree.js';
import { cleanupTempDir, tempDir } from '../helpers/mounts.js';
import { packLayer } from '../e2e/e2e-util.js';
import { buildLayer, type LayerBuildOptions } from '../../src/builder/layer-build.js';
import { create } from '../../src/builder/create.js';
import { openLayer } from '../../src/tar/open-layer.js';
import { FormatError, NydusError } from '../../src/util/errors.js';

let work = '';
let gz: Buffer;

before(async () => {
  work = await tempDir(undefined, 'nydus-layer-build-');
  const src = path.join(work, 'src');
  await makeMessyTree(src);
  const tar = path.join(work, 'layer.tar');
  await packLayer(src, tar);
  gz = gzipSync(fs.readFileSync(tar));
});
after(async () => { await cleanupTempDir(work); });

/** `data` in pieces of 1, 7, 4093, 65536 … bytes, as a network stream would come. */
async function* pieces(data: Uint8Array, failAt?: number): AsyncGenerator<Uint8Array> {
  const sizes = [1, 7, 4093, 65536, 300_000];
  let at = 0;
  for (let k = 0; at < data.length; k++) {
    if (failAt !== undefined && at >= failAt) throw new NydusError('ERR_TEST_SOURCE', 'the source broke off');
    const n = sizes[k % sizes.length] as number;
    yield data.subarray(at, at + n);
    at += n;
  }
}

function options(dir: string): LayerBuildOptions {
  return { bootstrap: path.join(dir, 'boot'), blobDir: path.join(dir, 'blobs'), chunkSize: 0x10000, compressor: 'zstd', digester: 'blake3', whiteoutSpec: 'none', prefetch: [], blobInlineMeta: true, blobToc: true };
}

test('a layer built on a worker thread equals the same build in place, byte for byte', async () => {
  const a = path.join(work, 'a');
  const b = path.join(work, 'b');
  const onThread = await buildLayer(openLayer(pieces(gz)), options(a));
  const inPlace = await create({ ...options(b), type: 'tar-rafs', source: pieces(gz) });
  assert.ok(onThread.blobId && onThread.blobId === inPlace.blobId, `${onThread.blobId} vs ${inPlace.blobId}`);
  assert.deepEqual(fs.readFileSync(path.join(a, 'boot')), fs.readFileSync(path.join(b, 'boot')));
  assert.equal(onThread.files, inPlace.files);
  assert.deepEqual(onThread.stats, inPlace.stats);
});

test('a source that fails half-way fails the build with its own error and leaves no output', async () => {
  const dir = path.join(work, 'fail');
  await assert.rejects(buildLayer(openLayer(pieces(gz, Math.floor(gz.length / 2))), options(dir)),
    (e: unknown) => e instanceof NydusError && e.code === 'ERR_TEST_SOURCE' && /broke off/.test(e.message));
  assert.equal(fs.existsSync(path.join(dir, 'boot')), false);
  assert.deepEqual(fs.existsSync(path.join(dir, 'blobs')) ? fs.readdirSync(path.join(dir, 'blobs')) : [], []);
});

test('a corrupt layer fails with the builder\'s error, its code and class kept across the thread', async () => {
  const dir = path.join(work, 'corrupt');
  const bad = Buffer.alloc(8192, 0x41);
  await assert.rejects(buildLayer(pieces(bad), options(dir)), (e: unknown) => {
    assert.ok(e instanceof FormatError, String(e));
    assert.equal(e.code, 'ERR_TAR_HEADER');
    assert.match(e.message, /offset 0/);
    return true;
  });
  assert.equal(fs.existsSync(path.join(dir, 'boot')), false);
});
