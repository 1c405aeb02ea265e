import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseTar } from '../../src/tar/parse-tar.js';
import { collect, gnuTar, run, tempDir, whole } from './helpers.js';

const FORMATS: Array<[string, string[]]> = [
  ['old GNU (type S)', ['--sparse', '--format=gnu']],
  ['PAX 0.0', ['--sparse', '--format=pax', '--sparse-version=0.0']],
  ['PAX 0.1', ['--sparse', '--format=pax', '--sparse-version=0.1']],
  ['PAX 1.0', ['--sparse', '--format=pax', '--sparse-version=1.0']],
];

/** A sparse file of `size` bytes with `text` written at each of `offsets`. */
function sparseFile(path: string, size: number, offsets: number[]): void {
  run('truncate', ['-s', String(size), path]);
  const fd = openSync(path, 'r+');
  try {
    for (const off of offsets) writeSync(fd, Buffer.from(`data@${off}`), 0, undefined, off);
  } finally {
    closeSync(fd);
  }
}

for (const [label, flags] of FORMATS) {
  test(`sparse files, ${label}: segments reassemble to the file, size is the logical size`, async (t) => {
    const dir = tempDir(t);
    // few runs (fit in the old GNU header), many runs (old GNU extension blocks, a multi-block
    // PAX 1.0 map), a leading data run, a trailing hole, data at the very end, an all-hole file.
    sparseFile(join(dir, 'few'), 10 * 1024 * 1024 + 123, [0, 1_000_000, 5_000_000]);
    sparseFile(join(dir, 'many'), 64 * 1024 * 100, Array.from({ length: 90 }, (_, i) => i * 65536 + 4096));
    sparseFile(join(dir, 'tail'), 3 * 1024 * 1024, [3 * 1024 * 1024 - 10]);
    sparseFile(join(dir, 'holes'), 1024 * 1024, []);
    const names = ['few', 'many', 'tail', 'holes'];
    const data = gnuTar(dir, join(dir, 'out.tar'), flags, names);
    const entries = await collect(whole(data));
    assert.deepEqual(
      entries.map((e) => e.path),
      names,
    );
    for (const e of entries) {
      const expected = readFileSync(join(dir, e.path));
      assert.equal(e.type, 'file', e.path);
      assert.equal(e.size, expected.length, e.path);
      assert.equal(e.content.length, expected.length, e.path);
      assert.ok(Buffer.from(e.content).equals(expected), `${e.path} content differs`);
    }
    const many = entries[1];
    assert.ok(many?.sparse, 'many is sparse');
    assert.ok(many.segments >= 90, `many has ${many.segments} segments`);
    assert.ok(entries[0]?.sparse);
  });
}

test('a 9 GiB sparse file (base-256 real size in old GNU, large PAX sizes) streams its segments', async (t) => {
  const dir = tempDir(t);
  const size = 9 * 1024 ** 3;
  sparseFile(join(dir, 'huge'), size, [4096, size - 100]);
  for (const [label, flags] of [FORMATS[0], FORMATS[3]] as Array<[string, string[]]>) {
    const data = gnuTar(dir, join(dir, 'out.tar'), flags, ['huge']);
    const segs: Array<[number, string]> = [];
    let n = 0;
    for await (const e of parseTar(whole(data))) {
      n++;
      assert.equal(e.size, size, label);
      assert.equal(e.sparse, true, label);
      for await (const s of e.body()) {
        const text = Buffer.from(s.data).toString('latin1');
        for (const m of text.matchAll(/data@[0-9]+/g)) segs.push([s.offset + (m.index ?? 0), m[0]]);
      }
    }
    assert.equal(n, 1);
    assert.deepEqual(segs, [
      [4096, 'data@4096'],
      [size - 100, `data@${size - 100}`],
    ], label);
  }
});

test('sparse segments hash like the file when holes are hashed as zeros', async (t) => {
  const dir = tempDir(t);
  sparseFile(join(dir, 'f'), 8 * 1024 * 1024, [100, 3_000_000, 8 * 1024 * 1024 - 9]);
  const data = gnuTar(dir, join(dir, 'out.tar'), ['--sparse', '--format=pax'], ['f']);
  for await (const e of parseTar(whole(data))) {
    const h = createHash('sha256');
    let pos = 0;
    for await (const s of e.body()) {
      h.update(new Uint8Array(s.offset - pos));
      h.update(s.data);
      pos = s.offset + s.data.length;
    }
    h.update(new Uint8Array(e.size - pos));
    assert.equal(h.digest('hex'), createHash('sha256').update(readFileSync(join(dir, 'f'))).digest('hex'));
  }
});
