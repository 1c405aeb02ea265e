import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openLayer } from '../../src/tar/open-layer.js';
import { parseTar } from '../../src/tar/parse-tar.js';
import { NydusError } from '../../src/util/errors.js';
import { collect, gnuTar, prng, run, tempDir, whole } from './helpers.js';
import { concat, fileEntry, header, metaEntry, paxBody } from './tar-builder.js';

/** Assert that `p` rejects with a project error of `code`, and return it. */
async function rejectsWith(p: Promise<unknown>, code: string): Promise<NydusError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof NydusError, `expected a NydusError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

/** a.txt (1000 bytes) then dir/b/c.txt (3000 bytes), as GNU tar writes them. */
function twoFiles(dir: string): Uint8Array {
  writeFileSync(join(dir, 'a.txt'), 'a'.repeat(1000));
  run('mkdir', ['-p', join(dir, 'dir/b')]);
  writeFileSync(join(dir, 'dir/b/c.txt'), 'c'.repeat(3000));
  return gnuTar(dir, join(dir, 'out.tar'), ['--format=gnu'], ['a.txt', 'dir/b/c.txt']);
}

test('EOF in a body: ERR_TRUNCATED naming the entry, its header offset and how far the body got', async (t) => {
  const data = twoFiles(tempDir(t));
  // c.txt's header is at 1536 (a.txt: 512 header + 1024 data); its body starts at 2048.
  const cut = data.subarray(0, 2048 + 300);
  const e = await rejectsWith(collect(whole(cut)), 'ERR_TRUNCATED');
  assert.equal(e.path, 'dir/b/c.txt');
  assert.equal(e.offset, 1536);
  assert.equal(e.message, 'Cannot read tar entry "dir/b/c.txt" at offset 1536: the archive ends 300 bytes into a 3000-byte body');
  // The same when the body is skipped rather than read.
  const skipped = (async () => {
    for await (const _ of parseTar(whole(cut))) {
      // do not read bodies
    }
  })();
  const e2 = await rejectsWith(skipped, 'ERR_TRUNCATED');
  assert.equal(e2.message, e.message);
});

test('EOF in a header: ERR_TRUNCATED with the offset of the header', async (t) => {
  const data = twoFiles(tempDir(t));
  const e = await rejectsWith(collect(whole(data.subarray(0, 1536 + 200))), 'ERR_TRUNCATED');
  assert.equal(e.offset, 1536);
  assert.equal(e.path, 'dir/b/c.txt');
  assert.match(e.message, /^Cannot read tar entry "dir\/b\/c.txt" at offset 1536: the archive ends 200 bytes into a 512-byte header$/);
  const e2 = await rejectsWith(collect(whole(data.subarray(0, 1536 + 50))), 'ERR_TRUNCATED');
  assert.equal(e2.message, 'Cannot read tar header at offset 1536: the archive ends 50 bytes into a 512-byte header');
});

test('EOF after a long-name header: ERR_TRUNCATED naming the long name and its offset', async (t) => {
  const dir = tempDir(t);
  const name = 'n'.repeat(150);
  writeFileSync(join(dir, name), 'x');
  const data = gnuTar(dir, join(dir, 'out.tar'), ['--format=gnu'], [name]);
  // 'L' header + its 1 block of name; cut in the real header.
  const e = await rejectsWith(collect(whole(data.subarray(0, 1024 + 100))), 'ERR_TRUNCATED');
  assert.equal(e.path, name);
  assert.equal(e.offset, 0);
  const e2 = await rejectsWith(collect(whole(data.subarray(0, 1024))), 'ERR_TRUNCATED');
  assert.equal(e2.offset, 0);
  assert.match(e2.message, /after its extended headers/);
});

test('EOF right after a complete entry (no end-of-archive blocks) is accepted', async (t) => {
  const data = twoFiles(tempDir(t));
  const entries = await collect(whole(data.subarray(0, 1536 + 512 + 3072)));
  assert.deepEqual(
    entries.map((e) => [e.path, e.content.length]),
    [
      ['a.txt', 1000],
      ['dir/b/c.txt', 3000],
    ],
  );
  // EOF inside the padding after the last body: accepted with a warning.
  const warnings: string[] = [];
  const e2 = await collect(whole(data.subarray(0, 1536 + 512 + 3000)), { onWarn: (code) => warnings.push(code) });
  assert.equal(e2.length, 2);
  assert.deepEqual(warnings, ['TAR_TRUNCATED_PADDING']);
});

test('a corrupted header: ERR_TAR_CHECKSUM at its offset', async (t) => {
  const data = twoFiles(tempDir(t)).slice();
  data[1536 + 10] = 0x41;
  const e = await rejectsWith(collect(whole(data)), 'ERR_TAR_CHECKSUM');
  assert.equal(e.offset, 1536);
  assert.match(e.message, /^Cannot read tar header at offset 1536: /);
});

test('garbage input is rejected at offset 0', async () => {
  const rnd = prng(42);
  const garbage = Uint8Array.from({ length: 10000 }, () => Math.floor(rnd() * 256));
  const e = await rejectsWith(collect(whole(garbage)), 'ERR_TAR_HEADER');
  assert.equal(e.offset, 0);
  const text = new TextEncoder().encode('{"this": "is not a tar archive"}\n'.repeat(100));
  const e2 = await rejectsWith(collect(whole(text)), 'ERR_TAR_HEADER');
  assert.equal(e2.offset, 0);
  const e3 = await rejectsWith(collect(whole(text.subarray(0, 100))), 'ERR_TAR_HEADER');
  assert.equal(e3.offset, 0);
  // A plausible checksum field but wrong sum.
  const bad = header({ name: 'x', checksumDelta: 1 });
  const e4 = await rejectsWith(collect(whole(bad)), 'ERR_TAR_CHECKSUM');
  assert.equal(e4.offset, 0);
});

test('a truncated or corrupt .tar.gz / .tar.zst fails through openLayer', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'f'), new Uint8Array(200000).map((_, i) => (i * 7919) % 251));
  run('tar', ['-czf', 'out.tgz', 'f'], dir);
  run('tar', ['--zstd', '-cf', 'out.tzst', 'f'], dir);
  for (const [name, magicLen] of [
    ['out.tgz', 2],
    ['out.tzst', 4],
  ] as const) {
    const full = new Uint8Array((await import('node:fs')).readFileSync(join(dir, name)));
    const half = full.subarray(0, Math.floor(full.length / 2));
    const e = await rejectsWith(collect(openLayer(whole(half))), 'ERR_TRUNCATED');
    assert.equal(e.offset, half.length, e.message);
    const corrupt = full.slice();
    corrupt.fill(0xff, magicLen, magicLen + 20);
    const e2 = await rejectsWith(collect(openLayer(whole(corrupt))), 'ERR_DECOMPRESS');
    assert.ok(e2.offset !== undefined && e2.offset <= full.length, e2.message);
    assert.match(e2.message, /^Cannot decompress (gzip|zstd) layer: /);
  }
});

test('metadata headers larger than maxMetaEntrySize are refused', async () => {
  const pax = metaEntry('x', paxBody([['path', 'p'.repeat(5000)]]));
  const data = concat([pax, fileEntry('x', 'data'), new Uint8Array(1024)]);
  const e = await rejectsWith(collect(whole(data), { maxMetaEntrySize: 4096 }), 'ERR_TAR_LIMIT');
  assert.equal(e.offset, 0);
  const [ok] = await collect(whole(data));
  assert.equal(ok?.path, 'p'.repeat(5000));
  // Many small headers for one entry count together.
  const many = Array.from({ length: 10 }, (_, i) => metaEntry('x', paxBody([[`SCHILY.xattr.user.k${i}`, 'v'.repeat(500)]])));
  const e2 = await rejectsWith(collect(whole(concat([...many, fileEntry('x', 'data'), new Uint8Array(1024)])), { maxMetaEntrySize: 4096 }), 'ERR_TAR_LIMIT');
  assert.match(e2.message, /add up to more than the 4096-byte limit/);
});

test('a malformed PAX record is ERR_TAR_PAX', async () => {
  const body = new TextEncoder().encode('99 path=x\n');
  const data = concat([metaEntry('x', body), fileEntry('x', 'data'), new Uint8Array(1024)]);
  const e = await rejectsWith(collect(whole(data)), 'ERR_TAR_PAX');
  assert.equal(e.offset, 0);
  const bad = concat([metaEntry('x', paxBody([['uid', 'abc']])), fileEntry('x', 'data'), new Uint8Array(1024)]);
  await rejectsWith(collect(whole(bad)), 'ERR_TAR_PAX');
});

test('an inconsistent sparse map is ERR_TAR_SPARSE', async () => {
  const records: Array<[string, string]> = [
    ['GNU.sparse.size', '100'],
    ['GNU.sparse.map', '0,10,5,10'],
  ];
  const data = concat([metaEntry('x', paxBody(records)), fileEntry('s', 'x'.repeat(20)), new Uint8Array(1024)]);
  const e = await rejectsWith(collect(whole(data)), 'ERR_TAR_SPARSE');
  assert.equal(e.path, 's');
  const short = concat([metaEntry('x', paxBody([['GNU.sparse.size', '100'], ['GNU.sparse.map', '0,10,50,10']])), fileEntry('s', 'x'.repeat(5)), new Uint8Array(1024)]);
  await rejectsWith(collect(whole(short)), 'ERR_TAR_SPARSE');
});

test('body() after the parser moved on, or twice, is ERR_TAR_BODY', async () => {
  const data = concat([fileEntry('a', 'aaa'), fileEntry('b', 'bbb'), new Uint8Array(1024)]);
  const it = parseTar(whole(data));
  const first = await it.next();
  assert.ok(first.done !== true);
  first.value.body();
  assert.throws(() => first.value.body(), (e: unknown) => e instanceof NydusError && e.code === 'ERR_TAR_BODY');
  const second = await it.next();
  assert.ok(second.done !== true);
  assert.throws(() => first.value.body(), (e: unknown) => e instanceof NydusError && e.code === 'ERR_TAR_BODY');
  const chunks: string[] = [];
  for await (const s of second.value.body()) chunks.push(Buffer.from(s.data).toString());
  assert.deepEqual(chunks, ['bbb']);
  assert.equal((await it.next()).done, true);
});

test('a body iterator abandoned half-way is skipped correctly', async () => {
  const big = new Uint8Array(10000).fill(0x61);
  const data = concat([fileEntry('a', big), fileEntry('b', 'bbb'), new Uint8Array(1024)]);
  const seen: string[] = [];
  for await (const e of parseTar(async function* () {
    for (let i = 0; i < data.length; i += 1000) yield data.subarray(i, i + 1000);
  }())) {
    seen.push(e.path);
    for await (const s of e.body()) {
      assert.ok(s.data.length > 0);
      break;
    }
  }
  assert.deepEqual(seen, ['a', 'b']);
});

test('errors from the source pass through unchanged, and an early stop closes the source', async () => {
  const boom = new Error('network down');
  async function* failing(): AsyncGenerator<Uint8Array> {
    yield fileEntry('a', 'x'.repeat(600)).subarray(0, 700);
    throw boom;
  }
  await assert.rejects(collect(failing()), (e) => e === boom);
  await assert.rejects(collect(openLayer(failing())), (e) => e === boom);

  let closed = false;
  async function* endless(): AsyncGenerator<Uint8Array> {
    try {
      for (;;) yield fileEntry('a', 'aaa');
    } finally {
      closed = true;
    }
  }
  for await (const e of parseTar(endless())) {
    assert.equal(e.path, 'a');
    break;
  }
  assert.equal(closed, true);
});
