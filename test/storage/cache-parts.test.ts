import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { openSync, closeSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openChunkMap, CHUNK_MAP_ALL_READY, CHUNK_MAP_HEADER_SIZE } from '../../src/storage/cache/chunk-map.js';
import { planFetches, spanOf } from '../../src/storage/cache/fetch-plan.js';
import { createRateLimiter } from '../../src/storage/cache/rate-limiter.js';
import { PrefetchQueue } from '../../src/storage/cache/prefetch-queue.js';
import { SyncCoalescer } from '../../src/storage/cache/file-io.js';
import { nullLogger } from '../../src/util/logger.js';
import type { ChunkRecord } from '../../src/format/v6/chunk-record.js';

const dir = mkdtempSync(join(tmpdir(), 'nydus-cache-parts-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let k = 0;
const fresh = (): string => join(dir, `m${k++}.chunk_map`);

describe('chunk map', () => {
  test('openChunkMap() writes nydusd\'s header and a zero bitmap', async () => {
    const p = fresh();
    const m = openChunkMap(p, 20, { logger: nullLogger });
    assert.equal(m.readyCount, 0);
    await m.close();
    const b = readFileSync(p);
    assert.equal(b.length, CHUNK_MAP_HEADER_SIZE + 3);
    assert.deepEqual([...b.subarray(0, 16)], [0x50, 0x41, 0x4d, 0x42, 1, 0, 0, 0, 0x50, 0x41, 0x4d, 0x43, 0, 0, 0, 0]);
    assert.ok(b.subarray(16).every((x) => x === 0));
  });

  test('only durable bits reach the file, most significant bit first', async () => {
    const p = fresh();
    const m = openChunkMap(p, 20, { logger: nullLogger });
    m.markReady([1, 2]);
    m.persist([0, 9, 19]);
    assert.ok(m.isReady(1) && m.isReady(0) && m.isReady(19) && !m.isReady(3));
    assert.equal(m.readyCount, 5);
    await m.close();
    const b = readFileSync(p);
    assert.deepEqual([...b.subarray(CHUNK_MAP_HEADER_SIZE)], [0x80, 0x40, 0x10]);
    const again = openChunkMap(p, 20, { logger: nullLogger });
    assert.deepEqual([0, 1, 2, 9, 19].map((i) => again.isReady(i)), [true, false, false, true, true]);
    assert.equal(again.readyCount, 3);
    assert.ok(!again.isReady(20) && !again.isReady(-1));
    await again.close();
  });

  test('all_ready is written once every chunk is durable, and trusted on open', async () => {
    const p = fresh();
    const m = openChunkMap(p, 10, { logger: nullLogger });
    m.persist([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await m.close();
    assert.equal(readFileSync(p).readUInt32LE(12), CHUNK_MAP_ALL_READY);
    const again = openChunkMap(p, 10, { logger: nullLogger });
    assert.equal(again.readyCount, 10);
    await again.close();
  });

  test('a wrong size, a bad header or reset start empty; stray bits past the count are ignored', async () => {
    const p = fresh();
    const m = openChunkMap(p, 12, { logger: nullLogger });
    m.persist([0]);
    await m.close();
    // Stray bit for index 12..15 in the last byte.
    const fd = openSync(p, 'r+');
    writeSync(fd, new Uint8Array([0x0f]), 0, 1, CHUNK_MAP_HEADER_SIZE + 1);
    closeSync(fd);
    const m2 = openChunkMap(p, 12, { logger: nullLogger });
    assert.equal(m2.readyCount, 1);
    await m2.close();
    const m3 = openChunkMap(p, 12, { logger: nullLogger, reset: true });
    assert.equal(m3.readyCount, 0);
    await m3.close();
    const warned: string[] = [];
    const logger = { ...nullLogger, warn: (msg: string) => void warned.push(msg) };
    writeFileSync(p, 'x'.repeat(CHUNK_MAP_HEADER_SIZE + 2));
    const m4 = openChunkMap(p, 12, { logger });
    assert.equal(m4.readyCount, 0);
    await m4.close();
    assert.equal(statSync(p).size, CHUNK_MAP_HEADER_SIZE + 2);
    assert.deepEqual(warned, ['chunk map has a bad header, starting empty']);
    const m5 = openChunkMap(p, 100, { logger });
    assert.equal(m5.readyCount, 0);
    await m5.close();
    assert.equal(warned[1], 'chunk map has the wrong size, starting empty');
  });
});

function recs(sizes: readonly number[]): ChunkRecord[] {
  let off = 1000;
  return sizes.map((s, index) => {
    const r: ChunkRecord = { digest: new Uint8Array(32), blobIndex: 0, flags: 1, compressedSize: s, uncompressedSize: 4096, compressedOffset: off, uncompressedOffset: index * 4096, fileOffset: 0, index, crc32: 0 };
    off += s;
    return r;
  });
}

describe('planFetches()', () => {
  const all = recs([100, 200, 300, 400, 500, 600]);
  const at = (i: number): ChunkRecord => all[i] as ChunkRecord;
  const ids = (groups: ChunkRecord[][]): number[][] => groups.map((g) => g.map((r) => r.index));

  test('merges contiguous requested chunks up to the limit, in offset order', () => {
    assert.deepEqual(ids(planFetches([at(2), at(0), at(1)], { limit: 600, canFetch: () => true })), [[0, 1, 2]]);
    assert.deepEqual(ids(planFetches([at(2), at(0), at(1)], { limit: 599, canFetch: () => true })), [[0, 1], [2]]);
    assert.deepEqual(ids(planFetches([at(0), at(2)], { limit: 10_000, canFetch: () => true })), [[0], [2]]);
    assert.deepEqual(ids(planFetches([at(0), at(0), at(1)], { limit: 0, canFetch: () => true })), [[0], [1]]);
  });

  test('extends forward with fetchable following chunks within the limit', () => {
    const chunkAt = (i: number): ChunkRecord | undefined => all[i];
    assert.deepEqual(ids(planFetches([at(0)], { limit: 1000, chunkAt, canFetch: () => true })), [[0, 1, 2, 3]]);
    assert.deepEqual(ids(planFetches([at(0)], { limit: 1000, chunkAt, canFetch: (i) => i !== 2 })), [[0, 1]]);
    // The extension absorbs a requested chunk further on.
    assert.deepEqual(ids(planFetches([at(0), at(3)], { limit: 1000, chunkAt, canFetch: () => true })), [[0, 1, 2, 3]]);
    assert.deepEqual(ids(planFetches([at(4)], { limit: 100, chunkAt, canFetch: () => true })), [[4]]);
    assert.deepEqual(ids(planFetches([at(5)], { limit: 1 << 20, chunkAt, canFetch: () => true })), [[5]]);
    assert.equal(spanOf([at(1), at(2)]), 500);
  });

  test('fills gaps of up to fillGap bytes between wanted chunks, never past the last one', () => {
    const chunkAt = (i: number): ChunkRecord | undefined => all[i];
    // 0 (100) … 3 starts 600 after 0's end: the gap is 1+2 = 500 bytes.
    assert.deepEqual(ids(planFetches([at(0), at(3)], { limit: 10_000, canFetch: () => true, fillGap: { bytes: 500, chunkAt } })), [[0, 1, 2, 3]]);
    assert.deepEqual(ids(planFetches([at(0), at(3)], { limit: 10_000, canFetch: () => true, fillGap: { bytes: 499, chunkAt } })), [[0], [3]]);
    assert.deepEqual(ids(planFetches([at(0), at(3)], { limit: 10_000, canFetch: (i) => i !== 2, fillGap: { bytes: 500, chunkAt } })), [[0], [3]], 'a chunk that may not be fetched keeps the gap');
    assert.deepEqual(ids(planFetches([at(0), at(3)], { limit: 900, canFetch: () => true, fillGap: { bytes: 500, chunkAt } })), [[0], [3]], 'the limit counts the filled bytes');
    assert.deepEqual(ids(planFetches([at(0), at(1)], { limit: 10_000, canFetch: () => true, fillGap: { bytes: 10_000, chunkAt } })), [[0, 1]], 'nothing after the last wanted chunk');
  });

  test('stops at a gap in the blob', () => {
    const gap = recs([100, 100, 100]);
    (gap[2] as ChunkRecord).compressedOffset += 1;
    assert.deepEqual(ids(planFetches([gap[0] as ChunkRecord], { limit: 1000, chunkAt: (i) => gap[i], canFetch: () => true })), [[0, 1]]);
  });
});

test('createRateLimiter() spaces requests at the rate', async () => {
  let now = 0;
  const slept: number[] = [];
  const lim = createRateLimiter(1000, { now: () => now, sleep: async (ms) => { slept.push(ms); now += ms; } });
  await lim.take(500);
  await lim.take(1000);
  await lim.take(10);
  assert.deepEqual(slept, [500, 1000]);
  now += 5000;
  await lim.take(10);
  assert.equal(slept.length, 2);
  const free = createRateLimiter(0);
  await free.take(1e12);
});

test('PrefetchQueue runs at most `threads` jobs and drops waiting ones on close', async () => {
  const q = new PrefetchQueue(2);
  let active = 0;
  let max = 0;
  let ran = 0;
  const job = async (): Promise<void> => {
    active++;
    max = Math.max(max, active);
    await new Promise((r) => setTimeout(r, 2));
    active--;
    ran++;
  };
  await q.submit(Array.from({ length: 10 }, () => job));
  assert.equal(ran, 10);
  assert.equal(max, 2);
  await q.submit([async () => { throw new Error('swallowed'); }]);
  const p = q.submit(Array.from({ length: 10 }, () => job));
  assert.equal(q.running, 2);
  q.close();
  await p;
  assert.equal(ran, 12);
  await q.submit([job]);
  assert.equal(ran, 12);
});

test('SyncCoalescer shares syncs between concurrent callers', async () => {
  const p = join(dir, 'sync');
  writeFileSync(p, 'x');
  const fd = openSync(p, 'r+');
  try {
    const s = new SyncCoalescer(fd);
    const a = s.sync();
    const b = s.sync();
    const c = s.sync();
    assert.notEqual(a, b);
    assert.equal(b, c);
    await Promise.all([a, b, c]);
    await s.sync();
  } finally {
    closeSync(fd);
  }
});

test('PrefetchQueue runs low-priority jobs after the others, on at most half the threads', async () => {
  const q = new PrefetchQueue(4);
  const order: string[] = [];
  let lowActive = 0;
  let lowMax = 0;
  const job = (name: string, low: boolean) => async (): Promise<void> => {
    if (low) lowMax = Math.max(lowMax, ++lowActive);
    order.push(name);
    await new Promise((r) => setTimeout(r, 2));
    if (low) lowActive--;
  };
  const lows = q.submit(Array.from({ length: 8 }, (_, k) => job(`low${k}`, true)), true);
  const highs = q.submit(Array.from({ length: 4 }, (_, k) => job(`high${k}`, false)));
  await Promise.all([lows, highs]);
  assert.equal(lowMax, 2, 'low-priority jobs use at most half of the 4 threads');
  // Two low jobs started at once (half the threads); every high job started before the third low one.
  const third = order.indexOf('low2');
  for (let k = 0; k < 4; k++) assert.ok(order.indexOf(`high${k}`) < third, order.join(' '));
});
