import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openLayer } from '../../src/tar/open-layer.js';
import { parseTar } from '../../src/tar/parse-tar.js';
import { run, tempDir } from './helpers.js';

const SIZE = 64 * 1024 * 1024;
const CHUNK = 256 * 1024;

test('a 64 MiB file streams through in input-sized segments (plain and zstd)', async (t) => {
  const dir = tempDir(t);
  const content = randomBytes(SIZE);
  const expected = createHash('sha256').update(content).digest('hex');
  writeFileSync(join(dir, 'big'), content);
  writeFileSync(join(dir, 'small'), 'after the big one');
  run('tar', ['-cf', 'plain.tar', 'big', 'small'], dir);
  run('tar', ['--zstd', '-cf', 'layer.tar.zst', 'big', 'small'], dir);

  for (const name of ['plain.tar', 'layer.tar.zst']) {
    const start = performance.now();
    const h = createHash('sha256');
    let maxSegment = 0;
    let next = 0;
    const paths: string[] = [];
    const source = createReadStream(join(dir, name), { highWaterMark: CHUNK });
    for await (const e of parseTar(openLayer(source))) {
      paths.push(e.path);
      if (e.path !== 'big') continue;
      assert.equal(e.size, SIZE);
      for await (const s of e.body()) {
        assert.equal(s.offset, next);
        next += s.data.length;
        maxSegment = Math.max(maxSegment, s.data.length);
        h.update(s.data);
      }
    }
    const seconds = (performance.now() - start) / 1000;
    assert.deepEqual(paths, ['big', 'small']);
    assert.equal(next, SIZE);
    assert.equal(h.digest('hex'), expected, name);
    // Segments are views of input (or decompressor output) chunks, never an assembled body.
    assert.ok(maxSegment <= CHUNK, `largest segment ${maxSegment}`);
    t.diagnostic(`${name}: ${(SIZE / 1e6 / seconds).toFixed(0)} MB/s including sha256`);
  }
});

test('plain tar parsing throughput without hashing', async (t) => {
  const dir = tempDir(t);
  run('truncate', ['-s', String(SIZE), join(dir, 'zeros')]);
  run('tar', ['-cf', 'plain.tar', 'zeros'], dir);
  const start = performance.now();
  let bytes = 0;
  for await (const e of parseTar(createReadStream(join(dir, 'plain.tar'), { highWaterMark: 1024 * 1024 }))) {
    for await (const s of e.body()) bytes += s.data.length;
  }
  const seconds = (performance.now() - start) / 1000;
  assert.equal(bytes, SIZE);
  t.diagnostic(`plain tar: ${(SIZE / 1e6 / seconds).toFixed(0)} MB/s`);
});
