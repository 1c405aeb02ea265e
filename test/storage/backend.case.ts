/**
 * Conformance suite every BlobBackend passes (like hono's common.case.test.ts): each backend's
 * test calls `runBackendConformance` with a factory serving the given blobs.
 * @module
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BackendError } from '../../src/util/errors.js';
import type { BlobBackend } from '../../src/storage/blob-backend.js';

/** What a backend factory returns. */
export interface BackendUnderTest {
  backend: BlobBackend;
  /** Close the backend's server, remove its files. */
  cleanup: () => Promise<void>;
}

/** Deterministic bytes (xorshift32). */
export function pseudoRandom(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** The blobs the suite serves. */
export function conformanceBlobs(): Map<string, Uint8Array> {
  return new Map([
    ['a'.repeat(64), pseudoRandom(300_001, 1)],
    ['0123456789abcdef'.repeat(4), pseudoRandom(4096, 2)],
    ['one-byte', new Uint8Array([0x5a])],
    ['empty', new Uint8Array(0)],
  ]);
}

const MISSING = 'f'.repeat(64);

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof BackendError, `expected a BackendError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

/** Run the suite against `makeBackend`. */
export function runBackendConformance(name: string, makeBackend: (blobs: Map<string, Uint8Array>) => Promise<BackendUnderTest>): void {
  describe(`${name}: BlobBackend conformance`, () => {
    const blobs = conformanceBlobs();
    const big = blobs.get('a'.repeat(64)) as Uint8Array;
    const bigId = 'a'.repeat(64);
    let b: BlobBackend;
    let cleanup: () => Promise<void>;

    before(async () => {
      ({ backend: b, cleanup } = await makeBackend(blobs));
    });
    after(async () => {
      await b.close();
      await cleanup();
    });

    test('blobSize() gives every blob its size', async () => {
      for (const [id, data] of blobs) assert.equal(await b.blobSize(id), data.length, id);
    });

    test('read() returns exact ranges: start, middle, end, one byte, whole', async () => {
      const cases: [number, number][] = [[0, 4096], [123_457, 65_536], [big.length - 1000, 1000], [0, 1], [big.length - 1, 1], [77_777, 1], [0, big.length]];
      for (const [off, len] of cases) {
        const got = await b.read(bigId, off, len);
        assert.equal(got.length, len, `${off}+${len}`);
        assert.ok(Buffer.from(got).equals(Buffer.from(big.subarray(off, off + len))), `bytes of ${off}+${len}`);
      }
      const small = await b.read('one-byte', 0, 1);
      assert.deepEqual([...small], [0x5a]);
      const whole4k = await b.read('0123456789abcdef'.repeat(4), 0, 4096);
      assert.ok(Buffer.from(whole4k).equals(Buffer.from(blobs.get('0123456789abcdef'.repeat(4)) as Uint8Array)));
    });

    test('read() of zero bytes returns an empty array', async () => {
      assert.equal((await b.read(bigId, 10, 0)).length, 0);
    });

    test('read() past the end rejects with ERR_OUT_OF_RANGE', async () => {
      await rejectsWith(b.read(bigId, big.length - 10, 11), 'ERR_OUT_OF_RANGE');
      await rejectsWith(b.read(bigId, big.length, 1), 'ERR_OUT_OF_RANGE');
      await rejectsWith(b.read(bigId, big.length + 4096, 10), 'ERR_OUT_OF_RANGE');
      await rejectsWith(b.read('one-byte', 0, 2), 'ERR_OUT_OF_RANGE');
      await rejectsWith(b.read('empty', 0, 1), 'ERR_OUT_OF_RANGE');
    });

    test('errors carry errno EIO', async () => {
      await assert.rejects(b.read(bigId, big.length, 1), (e: unknown) => (e as BackendError).errno === 5);
      await assert.rejects(b.read(MISSING, 0, 1), (e: unknown) => (e as BackendError).errno === 5);
    });

    test('a missing blob rejects with ERR_BLOB_NOT_FOUND, for read() and blobSize()', async () => {
      await rejectsWith(b.read(MISSING, 0, 10), 'ERR_BLOB_NOT_FOUND');
      await rejectsWith(b.blobSize(MISSING), 'ERR_BLOB_NOT_FOUND');
    });

    test('an id that is not a plain name rejects with ERR_BAD_BLOB_ID', async () => {
      await rejectsWith(b.read('../etc/passwd', 0, 1), 'ERR_BAD_BLOB_ID');
      await rejectsWith(b.read('a/b', 0, 1), 'ERR_BAD_BLOB_ID');
    });

    test('bad arguments throw RangeError', () => {
      assert.throws(() => void b.read(bigId, -1, 10), RangeError);
      assert.throws(() => void b.read(bigId, 0, 1.5), RangeError);
      assert.throws(() => void b.read(bigId, Number.MAX_SAFE_INTEGER, 10), RangeError);
    });

    test('an aborted signal rejects with ERR_ABORTED', async () => {
      const ac = new AbortController();
      ac.abort();
      await rejectsWith(b.read(bigId, 0, 10, ac.signal), 'ERR_ABORTED');
    });

    test('64 concurrent reads all return the right bytes', async () => {
      const reqs = Array.from({ length: 64 }, (_, i) => {
        const off = (i * 4099) % (big.length - 8192);
        const len = 1 + ((i * 997) % 8192);
        return { off, len };
      });
      const got = await Promise.all(reqs.map((r) => b.read(bigId, r.off, r.len)));
      got.forEach((g, i) => {
        const r = reqs[i] as { off: number; len: number };
        assert.ok(Buffer.from(g).equals(Buffer.from(big.subarray(r.off, r.off + r.len))), `read ${i}`);
      });
    });

    test('metrics count reads, bytes, errors and latencies', async () => {
      const m = b.metrics;
      const before = { ...m, latencyCounts: [...m.latencyCounts] };
      await b.read(bigId, 0, 100);
      await b.read(bigId, 1000, 2000);
      await assert.rejects(b.read(MISSING, 0, 1));
      assert.equal(m.readCount, before.readCount + 2);
      assert.equal(m.readBytes, before.readBytes + 2100);
      assert.equal(m.readErrors, before.readErrors + 1);
      assert.ok(m.readLatencyMsTotal >= before.readLatencyMsTotal);
      assert.equal(m.latencyCounts.reduce((a, x) => a + x, 0), m.readCount);
      assert.equal(m.latencyCounts.length, m.latencyBucketsMs.length + 1);
    });

    test('after close(), reads reject with ERR_CLOSED', async () => {
      const { backend: other, cleanup: cleanOther } = await makeBackend(new Map([['x1', new Uint8Array([1, 2, 3])]]));
      try {
        assert.deepEqual([...(await other.read('x1', 1, 2))], [2, 3]);
        await other.close();
        await other.close();
        await rejectsWith(other.read('x1', 0, 1), 'ERR_CLOSED');
      } finally {
        await cleanOther();
      }
    });
  });
}
