/**
 * The chunk decoder: a run decoded on a worker thread gives the same bytes as decoding in place,
 * for zstd, lz4 and stored chunks; a corrupt or wrong-digest chunk in the middle of a run fails
 * alone, as an EIO FormatError naming the chunk; a buffer that is all of its ArrayBuffer moves to
 * the thread, a view into a larger one is copied and left intact.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createChunkDecoder, type DecodeResult } from '../../src/blob/chunk-decoder.js';
import type { DecodableChunk } from '../../src/blob/chunk-reader.js';
import { compressChunk, type Compressor } from '../../src/util/compress.js';
import { digest } from '../../src/util/digest.js';
import { CHUNK_FLAG_COMPRESSED } from '../../src/format/v6/chunk-record.js';
import { NydusError } from '../../src/util/errors.js';

const workers = createChunkDecoder({ threads: 2, inlineBelow: 0 });
const inline = createChunkDecoder({ threads: 0 });
after(() => workers.close());

/** `n` chunks of mixed compressibility, stored back to back from compressed offset `base`. */
function makeRun(algo: Compressor, n: number, base: number): { raw: Uint8Array; chunks: DecodableChunk[]; plain: Uint8Array[] } {
  const parts: Uint8Array[] = [];
  const chunks: DecodableChunk[] = [];
  const plain: Uint8Array[] = [];
  let off = base;
  for (let i = 0; i < n; i++) {
    const size = 1000 + ((i * 7919) % 60000);
    const data = i % 3 === 0 ? randomBytes(size) : Buffer.alloc(size, `chunk ${i} `);
    const c = compressChunk(algo, data);
    parts.push(c.data);
    plain.push(data);
    chunks.push({ index: 100 + i, flags: c.compressed ? CHUNK_FLAG_COMPRESSED : 0, compressedOffset: off, compressedSize: c.data.length, uncompressedSize: size, digest: digest('blake3', data) });
    off += c.data.length;
  }
  return { raw: Buffer.concat(parts), chunks, plain };
}

function datas(r: DecodeResult[]): Uint8Array[] {
  return r.map((x, i) => {
    assert.ok(x instanceof Uint8Array, `chunk ${i}: ${(x as Error).message}`);
    return x;
  });
}

for (const algo of ['zstd', 'lz4_block', 'none'] as const) {
  test(`${algo}: a run decoded on a worker thread equals the source and the in-place decode`, async () => {
    const { raw, chunks, plain } = makeRun(algo, 40, 12345);
    const codec = { compressor: algo, digester: 'blake3' as const, validate: true };
    const a = datas(await inline.decode(raw, 12345, chunks, codec, 'blob x'));
    const b = datas(await workers.decode(new Uint8Array(raw), 12345, chunks, codec, 'blob x'));
    a.forEach((d, i) => assert.deepEqual(Buffer.from(d), Buffer.from(plain[i] as Uint8Array), `in place, chunk ${i}`));
    b.forEach((d, i) => assert.deepEqual(Buffer.from(d), Buffer.from(plain[i] as Uint8Array), `worker, chunk ${i}`));
  });
}

test('a corrupt chunk and a wrong digest fail alone, as EIO errors naming the chunk; the rest decode', async () => {
  const { raw, chunks, plain } = makeRun('zstd', 12, 0);
  const bad = chunks[4] as DecodableChunk;
  raw.fill(0x55, bad.compressedOffset + 4, bad.compressedOffset + Math.min(40, bad.compressedSize));
  const wrong = chunks[7] as DecodableChunk;
  chunks[7] = { ...wrong, digest: new Uint8Array(32) };
  const codec = { compressor: 'zstd' as const, digester: 'blake3' as const, validate: true };
  for (const d of [workers, inline]) {
    const r = await d.decode(new Uint8Array(raw), 0, chunks, codec, 'blob y');
    r.forEach((x, i) => {
      if (i === 4 || i === 7) {
        assert.ok(x instanceof NydusError, `chunk ${i} must fail`);
        assert.equal(x.errno, 5);
        assert.match(x.message, new RegExp(`chunk ${(chunks[i] as DecodableChunk).index} of blob y`));
      } else {
        assert.deepEqual(Buffer.from(x as Uint8Array), Buffer.from(plain[i] as Uint8Array), `chunk ${i}`);
      }
    });
    assert.match((r[7] as Error).message, /blake3 0{64} differs|differs from the stored/);
  }
});

test('a whole buffer moves to the thread; a view into a larger buffer is copied and stays usable', async () => {
  const { raw, chunks } = makeRun('zstd', 10, 0);
  const codec = { compressor: 'zstd' as const, digester: 'blake3' as const, validate: true };
  const whole = new Uint8Array(raw);
  await workers.decode(whole, 0, chunks, codec, 'blob z');
  assert.equal(whole.byteLength, 0, 'transferred (detached)');
  const big = new Uint8Array(raw.length + 100);
  big.set(raw, 50);
  const view = big.subarray(50, 50 + raw.length);
  datas(await workers.decode(view, 0, chunks, codec, 'blob z'));
  assert.equal(view.byteLength, raw.length, 'the view is intact');
  assert.deepEqual(Buffer.from(view), Buffer.from(raw));
});
