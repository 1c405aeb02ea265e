import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createBackend } from '../../src/storage/create-backend.js';
import { createBlobCacheManager } from '../../src/storage/cache/create-blob-cache.js';
import type { BlobCacheManager, BlobCacheOptions, CachedBlob } from '../../src/storage/blob-cache.js';
import type { ChunkRecord } from '../../src/format/v6/chunk-record.js';
import { CHUNK_FLAG_COMPRESSED } from '../../src/format/v6/chunk-record.js';
import { NydusError } from '../../src/util/errors.js';
import { buildFixture, joinChunks, SpyBackend, type Fixture } from './cache-fixture.js';

let fx: Fixture;
let n = 0;
const opened: { close(): Promise<void> }[] = [];

before(async () => {
  fx = await buildFixture();
});
after(async () => {
  for (const o of opened) await o.close();
  rmSync(fx.root, { recursive: true, force: true });
});

function options(over: Omit<Partial<BlobCacheOptions>, 'prefetch'> & { prefetch?: Partial<BlobCacheOptions['prefetch']> } = {}): BlobCacheOptions {
  return {
    workDir: over.workDir ?? join(fx.root, `cache-${n++}`),
    validate: over.validate ?? true,
    amplifyIo: over.amplifyIo ?? 1 << 20,
    prefetch: { threads: 4, mergingSize: 1 << 20, bandwidthRate: 0, ...over.prefetch },
  };
}

/** A fresh manager, a localfs backend (spied), and the cached fixture blob. */
function setup(over: Parameters<typeof options>[0] = {}, blobDir = fx.blobDir, deps: Parameters<typeof createBlobCacheManager>[1] = {}): { m: BlobCacheManager; spy: SpyBackend; blob: CachedBlob; opts: BlobCacheOptions } {
  const opts = options(over);
  const m = createBlobCacheManager(opts, deps);
  const spy = new SpyBackend(createBackend({ type: 'localfs', config: { dir: blobDir } }));
  opened.push(m, spy);
  return { m, spy, blob: m.open(fx.info, spy), opts };
}

function rec(i: number): ChunkRecord {
  const r = fx.records[i];
  if (!r) throw new Error(`no chunk ${i}`);
  return r;
}

function bytesOf(recs: readonly ChunkRecord[]): number {
  return recs.reduce((a, r) => a + r.compressedSize, 0);
}

describe('blob cache', () => {
  test('the fixture has many chunks, compressed and raw', () => {
    assert.ok(fx.records.length >= 30, `${fx.records.length} chunks`);
    assert.ok(fx.records.some((r) => (r.flags & CHUNK_FLAG_COMPRESSED) !== 0));
    assert.ok(fx.records.some((r) => (r.flags & CHUNK_FLAG_COMPRESSED) === 0));
    fx.records.forEach((r, i) => assert.equal(r.index, i));
  });

  test('readChunks() returns the bytes of the source files', async () => {
    const { m, blob } = setup();
    for (const f of fx.files) {
      const parts = await blob.readChunks(f.recs);
      assert.ok(Buffer.from(joinChunks(parts, f.data.length)).equals(Buffer.from(f.data)), f.path);
    }
    // Every chunk is in some file: now all are cached.
    for (let i = 0; i < fx.info.chunkCount; i++) assert.ok(blob.isReady(i), `chunk ${i}`);
    assert.equal(m.metrics.errors, 0);
    assert.equal(m.metrics.inflight, 0);
  });

  test('open() gives one CachedBlob per blob id', () => {
    const { m, spy, blob } = setup();
    assert.equal(m.open({ ...fx.info }, spy), blob);
    assert.throws(() => m.open({ ...fx.info, chunkCount: fx.info.chunkCount + 1 }, spy), { code: 'ERR_BLOB_MISMATCH' });
    assert.throws(() => m.open({ ...fx.info, blobId: '../x' }, spy), { code: 'ERR_BAD_BLOB_ID' });
  });

  test('release() closes a blob after its last open; a new open finds its chunks again', async () => {
    const { m, spy, blob } = setup();
    const f = fx.files[0];
    assert.ok(f);
    await blob.readChunks(f.recs);
    const again = m.open({ ...fx.info }, spy);
    assert.equal(again, blob);
    await m.release(blob);
    assert.equal((await blob.readChunks(f.recs)).length, f.recs.length, 'still open: one open is left');
    await m.release(again);
    await assert.rejects(blob.readChunks(f.recs), { code: 'ERR_CLOSED' });
    const reads = spy.reads.length;
    const reopened = m.open({ ...fx.info }, spy);
    assert.notEqual(reopened, blob);
    assert.ok(f.recs.every((r) => reopened.isReady(r.index)));
    assert.ok(Buffer.from(joinChunks(await reopened.readChunks(f.recs), f.data.length)).equals(Buffer.from(f.data)));
    assert.equal(spy.reads.length, reads, 'served from the cache files');
    await m.release(blob);
    assert.ok(reopened.isReady(f.recs[0]!.index), 'releasing an object already closed does nothing');
  });

  test('32 concurrent readers of a missing chunk cause one backend read', async () => {
    const { m, spy, blob } = setup({ amplifyIo: 0 });
    const r = rec(5);
    const got = await Promise.all(Array.from({ length: 32 }, () => blob.readChunks([r])));
    assert.equal(spy.reads.length, 1);
    assert.equal(spy.metrics.readCount, 1);
    const first = got[0]?.[0] as Uint8Array;
    assert.equal(first.length, r.uncompressedSize);
    for (const g of got) assert.ok(Buffer.from(g[0] as Uint8Array).equals(Buffer.from(first)));
    assert.equal(m.metrics.misses, 32);
    assert.equal(m.metrics.hits, 0);
  });

  test('a read of one small chunk brings its following chunks in the same request', async () => {
    const small = fx.files.find((f) => f.path === '/a-small.txt');
    assert.ok(small && small.recs.length === 1);
    const r = small.recs[0] as ChunkRecord;
    assert.ok(r.index + 3 < fx.records.length);
    const { spy, blob } = setup({ amplifyIo: 1 << 20 });
    const [data] = await blob.readChunks([r]);
    assert.ok(Buffer.from(data as Uint8Array).equals(Buffer.from(small.data)));
    assert.equal(spy.reads.length, 1);
    // The whole rest of the blob fits in 1 MiB: it all came along.
    const rest = fx.records.slice(r.index);
    assert.deepEqual(spy.reads[0], { offset: r.compressedOffset, length: bytesOf(rest) });
    for (const x of rest) assert.ok(blob.isReady(x.index), `chunk ${x.index}`);
    for (const x of fx.records.slice(0, r.index)) assert.ok(!blob.isReady(x.index), `chunk ${x.index} is before`);
  });

  test('with amplifyIo 0 only the requested chunk is fetched', async () => {
    const r = rec(0);
    const { spy, blob } = setup({ amplifyIo: 0 });
    await blob.readChunks([r]);
    assert.deepEqual(spy.reads, [{ offset: r.compressedOffset, length: r.compressedSize }]);
    assert.ok(blob.isReady(0));
    assert.ok(!blob.isReady(1));
  });

  test('amplification stops at the amplifyIo limit; adjacent requested chunks share a request', async () => {
    const { spy, blob } = setup({ amplifyIo: rec(10).compressedSize + rec(11).compressedSize });
    await blob.readChunks([rec(10)]);
    assert.deepEqual(spy.reads, [{ offset: rec(10).compressedOffset, length: bytesOf([rec(10), rec(11)]) }]);
    assert.ok(blob.isReady(11) && !blob.isReady(12));
    const { spy: spy2, blob: blob2 } = setup({ amplifyIo: bytesOf([rec(20), rec(21), rec(22)]) });
    const parts = await blob2.readChunks([rec(22), rec(20), rec(21)]);
    assert.deepEqual(parts.map((p) => p.length), [rec(22), rec(20), rec(21)].map((r) => r.uncompressedSize));
    assert.deepEqual(spy2.reads, [{ offset: rec(20).compressedOffset, length: bytesOf([rec(20), rec(21), rec(22)]) }]);
  });

  test('extension forward stops at a chunk already cached', async () => {
    const workDir = join(fx.root, `stop-${n++}`);
    const first = createBlobCacheManager(options({ workDir, amplifyIo: 0 }));
    const b1 = first.open(fx.info, createBackend({ type: 'localfs', config: { dir: fx.blobDir } }));
    await b1.readChunks([rec(4)]);
    await first.close();
    const { spy, blob } = setup({ workDir, amplifyIo: 1 << 20 });
    assert.ok(blob.isReady(4));
    await blob.readChunks([rec(2)]);
    assert.deepEqual(spy.reads, [{ offset: rec(2).compressedOffset, length: bytesOf([rec(2), rec(3)]) }]);
    assert.ok(blob.isReady(3) && !blob.isReady(5));
  });

  test('cached chunks are served with no backend read', async () => {
    const { m, spy, blob } = setup();
    const f = fx.files.find((x) => x.path === '/c-medium.txt');
    assert.ok(f);
    await blob.readChunks(f.recs);
    const reads = spy.reads.length;
    const hits = m.metrics.hits;
    const again = await blob.readChunks(f.recs);
    assert.equal(spy.reads.length, reads);
    assert.equal(m.metrics.hits, hits + f.recs.length);
    assert.ok(Buffer.from(joinChunks(again, f.data.length)).equals(Buffer.from(f.data)));
  });

  test('the cache survives a restart: a new manager on the work dir reads nothing from the backend', async () => {
    const first = setup({ amplifyIo: 0 });
    const some = [rec(0), rec(3), rec(7), rec(8), rec(9), rec(fx.records.length - 1)];
    await first.blob.readChunks(some);
    await first.m.close();
    const mapPath = join(first.opts.workDir, `${fx.blobId}.chunk_map`);
    const map = readFileSync(mapPath);
    assert.equal(map.length, 4096 + Math.ceil(fx.info.chunkCount / 8));
    assert.equal(map.readUInt32LE(0), 0x424d4150);
    assert.equal(map.readUInt32LE(8), 0x434d4150);
    assert.equal(map[4096], 0b10010001);
    assert.equal(statSync(join(first.opts.workDir, `${fx.blobId}.blob.data`)).size, fx.info.uncompressedSize);

    const second = setup({ workDir: first.opts.workDir, amplifyIo: 1 << 20 });
    for (const r of some) assert.ok(second.blob.isReady(r.index));
    assert.ok(!second.blob.isReady(1));
    const got = await second.blob.readChunks(some);
    assert.equal(second.spy.reads.length, 0);
    assert.equal(second.m.metrics.hits, some.length);
    const f = fx.files.find((x) => x.recs.some((r) => r.index === 0));
    assert.ok(f);
    assert.ok(Buffer.from(got[0] as Uint8Array).equals(Buffer.from(f.data.subarray(0, (got[0] as Uint8Array).length))));
  });

  test('a wrong-sized chunk map or data file resets the cache instead of trusting it', async () => {
    const first = setup({ amplifyIo: 0 });
    await first.blob.readChunks([rec(0), rec(1)]);
    await first.m.close();
    writeFileSync(join(first.opts.workDir, `${fx.blobId}.blob.data`), 'short');
    const second = setup({ workDir: first.opts.workDir });
    assert.ok(!second.blob.isReady(0));
    await second.m.close();
    writeFileSync(join(first.opts.workDir, `${fx.blobId}.chunk_map`), 'garbage');
    const third = setup({ workDir: first.opts.workDir });
    assert.ok(!third.blob.isReady(0));
    const [d] = await third.blob.readChunks([rec(0)]);
    assert.equal(d?.length, rec(0).uncompressedSize);
  });

  test('a corrupt chunk fails with EIO, is not cached, and other chunks still work', async () => {
    const dir = join(fx.root, `corrupt-${n++}`);
    mkdirSync(dir);
    copyFileSync(fx.blobPath, join(dir, fx.blobId));
    const raw = fx.records.find((r) => (r.flags & CHUNK_FLAG_COMPRESSED) === 0) as ChunkRecord;
    const zst = fx.records.find((r) => (r.flags & CHUNK_FLAG_COMPRESSED) !== 0 && r.index > raw.index + 1) as ChunkRecord;
    const bytes = readFileSync(join(dir, fx.blobId));
    for (const r of [raw, zst]) {
      const at = r.compressedOffset + (r.compressedSize >> 1);
      bytes[at] = (bytes[at] as number) ^ 0xff;
    }
    writeFileSync(join(dir, fx.blobId), bytes);
    const { m, spy, blob } = setup({ amplifyIo: 1 << 20, validate: true }, dir);
    for (const r of [raw, zst]) {
      await assert.rejects(blob.readChunks([r]), (e: unknown) => e instanceof NydusError && e.errno === 5);
      assert.ok(!blob.isReady(r.index));
    }
    assert.ok(m.metrics.errors >= 2);
    // Neighbours fetched with the bad chunk are fine (their write to the cache file may finish
    // just after the bad chunk's rejection).
    for (let k = 0; k < 200 && !blob.isReady(raw.index + 1); k++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(blob.isReady(raw.index + 1));
    const good = rec(raw.index + 1);
    assert.equal((await blob.readChunks([good]))[0]?.length, good.uncompressedSize);
    // A later read tries the backend again.
    const reads = spy.reads.length;
    await assert.rejects(blob.readChunks([raw]), { errno: 5 });
    assert.equal(spy.reads.length, reads + 1);
  });

  test('a backend failure is EIO; a later read tries again', async () => {
    const { m, spy, blob } = setup({ amplifyIo: 0 });
    spy.failNext = 1;
    await assert.rejects(blob.readChunks([rec(3)]), (e: unknown) => e instanceof NydusError && e.errno === 5 && /chunk 3 of blob/.test(e.message));
    assert.ok(!blob.isReady(3));
    assert.equal(m.metrics.errors, 1);
    const [d] = await blob.readChunks([rec(3)]);
    assert.equal(d?.length, rec(3).uncompressedSize);
    assert.ok(blob.isReady(3));
  });

  test('readChunks() rejects records that do not fit the blob, and aborted reads', async () => {
    const { blob } = setup();
    await assert.rejects(blob.readChunks([{ ...rec(0), index: fx.info.chunkCount }]), { code: 'ERR_BAD_CHUNK' });
    await assert.rejects(blob.readChunks([{ ...rec(0), uncompressedOffset: fx.info.uncompressedSize }]), { code: 'ERR_BAD_CHUNK' });
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(blob.readChunks([rec(0)], ac.signal), { code: 'ERR_ABORTED', errno: 4 });
  });

  test('prefetch() fills the cache and counts bytes and chunks', async () => {
    const { m, spy, blob } = setup({ prefetch: { threads: 2, mergingSize: 64 * 1024 } });
    await blob.prefetch(fx.records);
    for (let i = 0; i < fx.info.chunkCount; i++) assert.ok(blob.isReady(i), `chunk ${i}`);
    assert.equal(m.metrics.prefetchChunks, fx.info.chunkCount);
    assert.equal(m.metrics.prefetchBytes, bytesOf(fx.records));
    for (const r of spy.reads) assert.ok(r.length <= 64 * 1024, `request of ${r.length}`);
    const reads = spy.reads.length;
    for (const f of fx.files) {
      const parts = await blob.readChunks(f.recs);
      assert.ok(Buffer.from(joinChunks(parts, f.data.length)).equals(Buffer.from(f.data)), f.path);
    }
    assert.equal(spy.reads.length, reads);
    // Prefetching cached chunks does nothing.
    await blob.prefetch(fx.records);
    assert.equal(spy.reads.length, reads);
  });

  test('prefetch() runs at most `threads` backend requests at once', async () => {
    for (const threads of [1, 3]) {
      const { spy, blob } = setup({ prefetch: { threads, mergingSize: 0 } });
      spy.delayMs = 3;
      await blob.prefetch(fx.records.slice(0, 12));
      assert.equal(spy.reads.length, 12);
      assert.equal(spy.maxActive, threads);
    }
  });

  test('prefetch() keeps to bandwidthRate', async () => {
    let now = 0;
    const slept: number[] = [];
    const clock = { now: () => now, sleep: async (ms: number) => { slept.push(ms); now += ms; } };
    const rate = 50_000;
    const { spy, blob } = setup({ prefetch: { threads: 1, mergingSize: 16 * 1024, bandwidthRate: rate } }, fx.blobDir, { clock });
    await blob.prefetch(fx.records);
    const lengths = spy.reads.map((r) => r.length);
    assert.ok(lengths.length > 3);
    const total = lengths.reduce((a, x) => a + x, 0);
    // Every request but the last waited for its bytes at `rate`.
    assert.ok(Math.abs(now - ((total - (lengths[lengths.length - 1] as number)) * 1000) / rate) < 1e-6, `virtual time ${now}`);
    assert.equal(slept.length, lengths.length - 1);
  });

  test('foreground reads never queue behind prefetch and join a prefetch in flight', async () => {
    const { m, spy, blob } = setup({ amplifyIo: 0, prefetch: { threads: 1, mergingSize: 0 } });
    spy.gated = true;
    let prefetchDone = false;
    const pf = blob.prefetch(fx.records).then(() => { prefetchDone = true; });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(spy.pending, [{ offset: rec(0).compressedOffset, length: rec(0).compressedSize }]);
    assert.equal(m.metrics.inflight, 1);
    // Chunk 0 is being prefetched: a reader joins it.
    const join0 = blob.readChunks([rec(0)]);
    // The last chunk is queued for prefetch, not in flight: the reader fetches it itself, now.
    const last = rec(fx.records.length - 1);
    const readLast = blob.readChunks([last]);
    await new Promise((r) => setImmediate(r));
    assert.equal(spy.pending.length, 2);
    spy.release(last.compressedOffset);
    const [d] = await readLast;
    assert.equal(d?.length, last.uncompressedSize);
    assert.equal(prefetchDone, false);
    spy.openGate();
    const [d0] = await join0;
    assert.equal(d0?.length, rec(0).uncompressedSize);
    await pf;
    // One read per chunk: nothing was fetched twice.
    assert.equal(spy.reads.length, fx.records.length);
    assert.equal(m.metrics.prefetchChunks, fx.records.length - 1);
    assert.equal(m.metrics.inflight, 0);
  });

  test('close() waits for fetches in flight and later reads are refused', async () => {
    const { m, spy, blob } = setup({ amplifyIo: 0 });
    spy.delayMs = 20;
    const p = blob.readChunks([rec(1)]);
    const pf = blob.prefetch(fx.records);
    await m.close();
    assert.equal((await p)[0]?.length, rec(1).uncompressedSize);
    await pf;
    await assert.rejects(blob.readChunks([rec(2)]), { code: 'ERR_CLOSED' });
    assert.throws(() => m.open(fx.info, spy), { code: 'ERR_CLOSED' });
  });

  test('a second opener\'s backend is used when the first one is closed', async () => {
    const { m, spy, blob } = setup({ amplifyIo: 0 });
    const other = new SpyBackend(createBackend({ type: 'localfs', config: { dir: fx.blobDir } }));
    opened.push(other);
    assert.equal(m.open(fx.info, other), blob);
    await other.close();
    const [d] = await blob.readChunks([rec(6)]);
    assert.equal(d?.length, rec(6).uncompressedSize);
    assert.equal(spy.reads.length, 1);
  });
});

test('createBlobCacheManager() rejects bad options', () => {
  const base = { workDir: '/tmp/x', validate: true, amplifyIo: 0, prefetch: { threads: 1, mergingSize: 0, bandwidthRate: 0 } };
  assert.throws(() => createBlobCacheManager({ ...base, workDir: '' }), TypeError);
  assert.throws(() => createBlobCacheManager({ ...base, amplifyIo: -1 }), /amplifyIo/);
  assert.throws(() => createBlobCacheManager({ ...base, prefetch: { ...base.prefetch, threads: 0 } }), /prefetch\.threads/);
  assert.throws(() => createBlobCacheManager({ ...base, prefetch: { ...base.prefetch, bandwidthRate: -5 } }), /bandwidthRate/);
});
