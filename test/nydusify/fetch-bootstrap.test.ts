/**
 * fetchBootstrap: the bootstrap of a Nydus bootstrap layer is written whole or not at all: a layer
 * that breaks off inside image/image.boot leaves no file (and no temporary) behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { fetchBootstrap } from '../../src/nydusify/image-parts.js';
import type { ImageStore } from '../../src/nydusify/image-store.js';
import { run, tempDir, cleanupTempDir } from '../helpers/mounts.js';

/** A store whose only blob is `bytes`, streamed in 4 KiB pieces. */
function storeOf(bytes: Uint8Array): ImageStore {
  const no = (): never => { throw new Error('not in this test'); };
  return {
    name: 'test store',
    getManifest: no, hasBlob: no, putBlobFile: no, putBlob: no, putManifest: no,
    async *blobStream() {
      for (let o = 0; o < bytes.length; o += 4096) yield bytes.subarray(o, o + 4096);
    },
  };
}

test('a whole layer gives the bootstrap; one cut inside image/image.boot leaves nothing', async () => {
  const dir = await tempDir(undefined, 'fetch-boot-');
  try {
    const boot = Buffer.alloc(300_000);
    for (let i = 0; i < boot.length; i++) boot[i] = (i * 7919) % 251;
    fs.mkdirSync(path.join(dir, 'src/image'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'src/image/image.boot'), boot);
    const tar = await run('tar', ['-cf', '-', '-C', path.join(dir, 'src'), 'image/image.boot']);
    assert.equal(tar.code, 0);
    const layer = gzipSync(tar.stdout);
    const desc = { mediaType: '', digest: 'sha256:' + '0'.repeat(64), size: layer.length };

    const out = path.join(dir, 'out/image.boot');
    fs.mkdirSync(path.dirname(out));
    await fetchBootstrap(storeOf(layer), desc, out);
    assert.deepEqual(fs.readFileSync(out), boot);

    const cut = path.join(dir, 'cut/image.boot');
    fs.mkdirSync(path.dirname(cut));
    await assert.rejects(fetchBootstrap(storeOf(layer.subarray(0, Math.floor(layer.length / 2))), desc, cut));
    assert.deepEqual(fs.readdirSync(path.dirname(cut)), [], 'no bootstrap and no temporary file');
  } finally {
    await cleanupTempDir(dir);
  }
});
