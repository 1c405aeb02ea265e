import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { detectLayerCompression, openLayer } from '../../src/tar/open-layer.js';
import { chunked, collect, gnuTar, run, summary, tempDir, whole } from './helpers.js';

async function drain(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of source) parts.push(c);
  return Buffer.concat(parts);
}

test('detectLayerCompression recognises gzip and zstd magic, anything else is plain', () => {
  assert.equal(detectLayerCompression(Uint8Array.from([0x1f, 0x8b, 8, 0])), 'gzip');
  assert.equal(detectLayerCompression(Uint8Array.from([0x1f, 0x8b])), 'gzip');
  assert.equal(detectLayerCompression(Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd, 0])), 'zstd');
  assert.equal(detectLayerCompression(Uint8Array.from([0x28, 0xb5, 0x2f])), 'none');
  assert.equal(detectLayerCompression(new TextEncoder().encode('file.txt')), 'none');
  assert.equal(detectLayerCompression(new Uint8Array(0)), 'none');
});

test('gzip, zstd and plain layers from GNU tar parse to the same entries', async (t) => {
  const dir = tempDir(t);
  const root = join(dir, 'root');
  run('mkdir', ['-p', join(root, 'sub')]);
  writeFileSync(join(root, 'sub', 'a.bin'), randomBytes(300000));
  writeFileSync(join(root, 'b.txt'), 'b'.repeat(100000));
  const plain = gnuTar(root, join(dir, 'l.tar'), ['--format=pax'], ['.']);
  const gz = gnuTar(root, join(dir, 'l.tgz'), ['--format=pax', '-z'], ['.']);
  const zst = gnuTar(root, join(dir, 'l.tzst'), ['--format=pax', '--zstd'], ['.']);
  assert.equal(detectLayerCompression(gz), 'gzip');
  assert.equal(detectLayerCompression(zst), 'zstd');
  const expected = (await collect(whole(plain))).map(summary);
  assert.equal(expected.length, 4);
  for (const [label, data] of [
    ['plain', plain],
    ['gzip', gz],
    ['zstd', zst],
  ] as const) {
    assert.deepEqual((await collect(openLayer(whole(data)))).map(summary), expected, label);
    assert.deepEqual((await collect(openLayer(chunked(data, 1000)))).map(summary), expected, `${label}, 1000-byte chunks`);
  }
  // One-byte chunks through the sniffing and the decompressor.
  assert.deepEqual((await collect(openLayer(chunked(gz, 1)))).map(summary), expected, 'gzip, 1-byte chunks');
  const zstPlain = run('zstd', ['-dc', join(dir, 'l.tzst')]);
  assert.ok((await drain(openLayer(chunked(zst, 1)))).equals(zstPlain), 'zstd, 1-byte chunks');
});

test('multi-member gzip and multi-frame zstd decode to the concatenation', async (t) => {
  const dir = tempDir(t);
  const a = randomBytes(100000);
  const b = Buffer.from('second part '.repeat(5000));
  const gz = Buffer.concat([gzipSync(a), gzipSync(b)]);
  assert.ok((await drain(openLayer(chunked(gz, 777)))).equals(Buffer.concat([a, b])));
  writeFileSync(join(dir, 'a'), a);
  writeFileSync(join(dir, 'b'), b);
  run('zstd', ['-q', '-f', 'a', 'b'], dir);
  const zst = Buffer.concat([readFileSync(join(dir, 'a.zst')), readFileSync(join(dir, 'b.zst'))]);
  assert.ok((await drain(openLayer(chunked(zst, 777)))).equals(Buffer.concat([a, b])));
});

test('plain input passes through untouched, including empty and tiny inputs', async () => {
  const data = randomBytes(5000);
  data[0] = 0x00;
  const out = await drain(openLayer(chunked(data, 1)));
  assert.ok(out.equals(data));
  assert.equal((await drain(openLayer(whole(new Uint8Array(0))))).length, 0);
  assert.deepEqual([...(await drain(openLayer(chunked(Uint8Array.from([0x1f, 0x00, 0x28]), 1))))], [0x1f, 0x00, 0x28]);
});

test('decompression is pulled on demand (backpressure) and stopping early closes the source', async () => {
  const raw = randomBytes(16 * 1024 * 1024);
  const gz = gzipSync(raw, { level: 1 });
  let pulled = 0;
  let closed = false;
  async function* source(): AsyncGenerator<Uint8Array> {
    try {
      for (let i = 0; i < gz.length; i += 65536) {
        const c = gz.subarray(i, i + 65536);
        pulled += c.length;
        yield c;
      }
    } finally {
      closed = true;
    }
  }
  let got = 0;
  for await (const chunk of openLayer(source())) {
    got += chunk.length;
    if (got > 1024 * 1024) {
      await new Promise((r) => setTimeout(r, 100));
      break;
    }
  }
  assert.ok(pulled < 4 * 1024 * 1024, `pulled ${pulled} of ${gz.length} compressed bytes to produce ${got}`);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(closed, true, 'source closed');
});
