/**
 * Access traces: nydusd records the files each mount reads, in first-access order with byte
 * ranges, for the fusedev and the erofs driver alike (erofs: blob ranges mapped back to files
 * through the bootstrap); `nydusctl trace` prints them as a prefetch list.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { prngBytes } from '../helpers/make-tree.js';
import { runCliText } from '../helpers/mounts.js';
import { imageWithDaemon, nydusdConfig, withApiMount } from '../helpers/nydusd.js';
import { AccessTrace, mergeRanges } from '../../src/rafs/access-trace.js';

const KiB = 1024;

/** Reads in a known order: [path, offset, length | undefined = whole file]. */
const SEQUENCE: Array<[string, number, number | undefined]> = [
  ['/etc/conf', 0, undefined],
  ['/small/s07', 0, undefined],
  ['/big/b2', 0, 200 * KiB],
  ['/small/s13', 0, undefined],
  ['/big/b1', 0, undefined],
  ['/small/s07', 0, undefined],
  ['/deep/a/b/c/leaf.txt', 0, undefined],
];
const EXPECTED = ['/etc/conf', '/small/s07', '/big/b2', '/small/s13', '/big/b1', '/deep/a/b/c/leaf.txt'];

function makeTree(root: string): void {
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/conf'), 'key=value\n');
  fs.mkdirSync(path.join(root, 'small'));
  for (let i = 0; i < 20; i++) {
    const n = `s${String(i).padStart(2, '0')}`;
    fs.writeFileSync(path.join(root, 'small', n), prngBytes(n, 3000 + i * 100));
  }
  fs.mkdirSync(path.join(root, 'big'));
  fs.writeFileSync(path.join(root, 'big/b1'), prngBytes('b1', 3 * 1024 * KiB + 123));
  fs.writeFileSync(path.join(root, 'big/b2'), prngBytes('b2', 6 * 1024 * KiB));
  fs.mkdirSync(path.join(root, 'deep/a/b/c'), { recursive: true });
  fs.writeFileSync(path.join(root, 'deep/a/b/c/leaf.txt'), 'leaf\n');
}

function readAs(mnt: string, p: string, offset: number, length: number | undefined, src: string): void {
  const fd = fs.openSync(path.join(mnt, p), 'r');
  try {
    const size = length ?? fs.fstatSync(fd).size;
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = fs.readSync(fd, buf, got, Math.min(128 * KiB, size - got), offset + got);
      if (n === 0) break;
      got += n;
    }
    const want = fs.readFileSync(path.join(src, p)).subarray(offset, offset + size);
    assert.ok(buf.subarray(0, got).equals(want), `${p}: bytes read equal the source`);
  } finally {
    fs.closeSync(fd);
  }
}

describe('AccessTrace', () => {
  test('entries() gives files in first-access order with merged ranges; sequential reads extend one event', async () => {
    const t = new AccessTrace({ capacity: 16 });
    t.file(5, 0, 4096);
    t.file(5, 4096, 4096);
    t.file(9, 100, 10);
    t.file(5, 65536, 10);
    t.blob(0, 0, 8192);
    assert.equal(t.recorded, 4, 'the second read of nid 5 continued the first');
    const e = await t.entries({
      pathsOf: async (nids) => new Map(nids.map((n) => [n, `/f${n}`])),
      blobRange: (b, o, l) => [{ nid: 11, path: '/from-blob', offset: o, length: l }],
    });
    assert.deepEqual(e.map((x) => x.path), ['/f5', '/f9', '/from-blob']);
    assert.deepEqual(e[0]?.ranges, [[0, 8192], [65536, 10]]);
    assert.equal(e[0]?.bytes, 8202);
  });

  test('the ring keeps the newest events; since filters by time', async () => {
    const t = new AccessTrace({ capacity: 4 });
    for (let i = 0; i < 10; i++) t.file(i, 0, 1);
    const names = { pathsOf: async (nids: readonly number[]) => new Map(nids.map((n) => [n, `/f${n}`])) };
    assert.deepEqual((await t.entries(names)).map((x) => x.nid), [6, 7, 8, 9]);
    assert.deepEqual(await t.entries(names, t.now() + 1000), []);
  });

  test('the ring grows as events come and keeps every one up to its capacity', async () => {
    const t = new AccessTrace({ capacity: 5000 });
    for (let i = 0; i < 3000; i++) t.file(i, 0, 1);
    const names = { pathsOf: async (nids: readonly number[]) => new Map(nids.map((n) => [n, `/f${n}`])) };
    const e = await t.entries(names);
    assert.equal(e.length, 3000);
    assert.deepEqual(e.map((x) => x.nid), Array.from({ length: 3000 }, (_, i) => i));
    for (let i = 3000; i < 6000; i++) t.file(i, 0, 1);
    assert.equal((await t.entries(names))[0]?.nid, 1000, 'the oldest 1000 were overwritten');
  });

  test('mergeRanges() merges overlaps and caps the count', () => {
    assert.deepEqual(mergeRanges([[10, 5], [0, 5], [5, 5], [100, 1]], 10), [[0, 15], [100, 1]]);
    assert.deepEqual(mergeRanges([[0, 1], [10, 1], [20, 1]], 2), [[0, 1], [10, 11]]);
  });
});

describe('nydusd access traces (fusedev and erofs)', () => {
  const f = imageWithDaemon('nydusd-trace-test-', makeTree);

  for (const driver of ['fusedev', 'erofs'] as const) {
    test(`${driver}: the trace of a known read sequence equals it, and nydusctl trace prints it as a prefetch list`, async () => {
      const { work, src, d } = f;
      const mnt = path.join(work, `mnt-${driver}`);
      const cfg = nydusdConfig({
        backend: { type: 'localfs', dir: f.blobs }, workDir: `${work}/cache-${driver}`, amplifyIo: 0,
        extra: { fs_driver: driver, cold_read: { background_stream: false, sibling_files: false } },
      });
      await withApiMount(d, mnt, f.boot, cfg, async (q) => {
        for (const [p, off, len] of SEQUENCE) readAs(mnt, p, off, len, src);
        const t = await d.api('GET', `/api/v1/metrics/trace${q}`);
        assert.equal(t.status, 200, JSON.stringify(t.body));
        const entries = t.body as Array<{ path: string; bytes: number; first_access_ms: number; ranges: Array<[number, number]> }>;
        const paths = entries.map((e) => e.path);
        const shown = `trace: ${JSON.stringify(entries.map((e) => [e.path, e.ranges]))}`;
        if (driver === 'fusedev') {
          assert.deepEqual(paths, EXPECTED, shown);
        } else {
          // The erofs driver sees blob reads, and the kernel reads ahead in the blob file: the
          // small files packed next to the ones read may show up too, as they were fetched.
          assert.deepEqual(paths.filter((p) => EXPECTED.includes(p)), EXPECTED, shown);
          assert.deepEqual(paths.filter((p) => !EXPECTED.includes(p) && !p.startsWith('/small/')), [], shown);
        }
        const times = entries.map((e) => e.first_access_ms);
        assert.deepEqual([...times].sort((a, b) => a - b), times, 'first-access times increase');
        const b1 = entries.find((e) => e.path === '/big/b1');
        assert.equal(b1?.bytes, fs.statSync(path.join(src, 'big/b1')).size, 'the whole of b1 was read');
        const b2 = entries.find((e) => e.path === '/big/b2');
        assert.ok(b2 && b2.bytes >= 200 * KiB && b2.bytes < 6 * 1024 * KiB, `b2: only its start was read (${b2?.bytes} bytes)`);
        assert.equal(b2?.ranges[0]?.[0], 0);
        const ctl = await runCliText('nydusctl', ['--sock', d.sock, 'trace', '--mountpoint', mnt]);
        assert.equal(ctl.code, 0, ctl.stderr);
        assert.deepEqual(ctl.stdout.trim().split('\n').filter((p) => EXPECTED.includes(p)), EXPECTED);
        const later = await runCliText('nydusctl', ['--sock', d.sock, 'trace', '--mountpoint', mnt, '--since', String(Date.now() + 60_000)]);
        assert.equal(later.code, 0, later.stderr);
        assert.equal(later.stdout.trim(), '', 'nothing was read after a moment in the future');
      });
    });
  }

  test('a trace of a mountpoint that is not mounted, or a bad since, is a clear 4xx', async () => {
    const r = await f.d.api('GET', `/api/v1/metrics/trace?id=${encodeURIComponent('/nowhere')}`);
    assert.equal(r.status, 404);
    const bad = await f.d.api('GET', '/api/v1/metrics/trace?since_unix_ms=yesterday');
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /since_unix_ms/);
  });
});
