import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { chunked, collect, gnuTar, randomSplits, run, summary, tempDir, whole } from './helpers.js';

/** A small tree exercising long names, links, xattrs and sparse maps. */
function buildArchive(t: TestContext, flags: string[]): Uint8Array {
  const dir = tempDir(t);
  const root = join(dir, 'root');
  const long = `${'a'.repeat(150)}/${'b'.repeat(200)}`;
  mkdirSync(join(root, long), { recursive: true });
  writeFileSync(join(root, long, 'file'), 'long name content\n'.repeat(100));
  writeFileSync(join(root, 'small'), 'x');
  writeFileSync(join(root, 'exact-block'), new Uint8Array(1024).fill(0x41));
  run('setfattr', ['-n', 'user.note', '-v', 'hello', join(root, 'small')]);
  run('ln', ['-s', `${'t'.repeat(120)}/target`, join(root, 'sym')]);
  run('ln', [join(root, 'small'), join(root, 'hard')]);
  run('truncate', ['-s', String(3 * 1024 * 1024), join(root, 'sparse')]);
  const fd = openSync(join(root, 'sparse'), 'r+');
  for (let i = 0; i < 12; i++) writeSync(fd, Buffer.from(`chunk ${i}`), 0, undefined, i * 98304 + 17);
  closeSync(fd);
  return gnuTar(root, join(dir, 'out.tar'), ['--sparse', ...flags], ['.']);
}

const ARCHIVES: Array<[string, string[]]> = [
  ['gnu', ['--format=gnu']],
  ['pax 1.0', ['--format=pax', '--sparse-version=1.0', '--xattrs', '--xattrs-include=*']],
  ['pax 0.0', ['--format=pax', '--sparse-version=0.0']],
];

for (const [label, flags] of ARCHIVES) {
  test(`${label}: one-byte chunks and random splits parse like a single chunk`, async (t) => {
    const data = buildArchive(t, flags);
    const expected = (await collect(whole(data))).map(summary);
    assert.ok(expected.length >= 8, `${expected.length} entries`);
    assert.ok(expected.some((e) => e['sparse'] === true));
    assert.deepEqual((await collect(chunked(data, 1))).map(summary), expected, '1-byte chunks');
    for (const size of [7, 511, 512, 513, 4096]) {
      assert.deepEqual((await collect(chunked(data, size))).map(summary), expected, `${size}-byte chunks`);
    }
    for (let seed = 1; seed <= 12; seed++) {
      const max = seed % 2 === 0 ? 64 : 3000;
      assert.deepEqual((await collect(randomSplits(data, seed, max))).map(summary), expected, `random splits, seed ${seed}`);
    }
  });
}
