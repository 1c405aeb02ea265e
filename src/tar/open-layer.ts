/**
 * Opening an OCI layer blob as a tar stream: sniffs gzip / zstd magic and decompresses in a
 * streaming fashion, with backpressure and error propagation.
 * @module
 */
import { Readable, type Transform, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DecompressStream } from 'zstd-napi';
import { FormatError } from '../util/errors.js';

/** Compression of a layer blob, as detected from its first bytes. */
export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** Largest piece handed to the decompressor at once (bounds the error offset's imprecision). */
const SLICE = 64 * 1024;

/** Input chunks smaller than this are gathered before being handed to the decompressor. */
const MIN_FEED = 16 * 1024;

/**
 * Detect the compression of a layer from its first bytes (at least 4 for zstd):
 * gzip `1f 8b`, zstd `28 b5 2f fd`, else 'none' (a plain tar).
 */
export function detectLayerCompression(first: Uint8Array): LayerCompression {
  if (first[0] === 0x1f && first[1] === 0x8b) return 'gzip';
  if (first[0] === 0x28 && first[1] === 0xb5 && first[2] === 0x2f && first[3] === 0xfd) return 'zstd';
  return 'none';
}

/**
 * Turn a layer blob into its tar stream: gzip (multi-member) and zstd blobs are decompressed,
 * anything else is passed through unchanged. A corrupt or truncated compressed stream throws
 * FormatError 'ERR_DECOMPRESS' or 'ERR_TRUNCATED' with the compressed offset it was detected
 * at; errors from `source` pass through unchanged.
 */
export function openLayer(source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  return decodeLayer(source);
}

async function* decodeLayer(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let headLen = 0;
  let ended = false;
  try {
    while (headLen < 4) {
      // Four bytes tell the compression (and hold a gzip header's method byte).
      const r = await it.next();
      if (r.done === true) {
        ended = true;
        break;
      }
      if (r.value.length === 0) continue;
      head.push(r.value);
      headLen += r.value.length;
    }
  } catch (e) {
    // The source failed: nothing to close.
    throw e;
  }
  const prefix = new Uint8Array(Math.min(headLen, 4));
  let filled = 0;
  for (const c of head) {
    if (filled === prefix.length) break;
    const take = Math.min(c.length, prefix.length - filled);
    prefix.set(c.subarray(0, take), filled);
    filled += take;
  }
  const input = replay(head, it, ended);
  const kind = detectLayerCompression(prefix);
  if (kind === 'gzip' && prefix.length >= 3 && prefix[2] !== 8) {
    await input.return(undefined);
    throw new FormatError('ERR_DECOMPRESS', `Cannot decompress gzip layer: the gzip header at offset 0 names compression method ${prefix[2]}, not deflate (8)`, { offset: 0 });
  }
  if (kind === 'none') yield* input;
  else yield* decompress(kind, input);
}

/** The already-read `head` chunks, then the rest of `it`; closes `it` when stopped early. */
async function* replay(head: Uint8Array[], it: AsyncIterator<Uint8Array>, ended: boolean): AsyncGenerator<Uint8Array> {
  let finished = ended;
  try {
    for (const c of head) yield c;
    while (!finished) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await it.next();
      } catch (e) {
        finished = true;
        throw e;
      }
      if (r.done === true) {
        finished = true;
        break;
      }
      yield r.value;
    }
  } finally {
    if (!finished) await it.return?.();
  }
}

async function* decompress(kind: 'gzip' | 'zstd', input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let fed = 0;
  let sourceError: { error: unknown } | undefined;
  // Feeds the decompressor pieces of SLICE bytes at most; tiny chunks are coalesced (copied)
  // up to MIN_FEED bytes, as every write costs a round trip to the decompressor.
  async function* counted(): AsyncGenerator<Buffer> {
    let small: Uint8Array[] = [];
    let smallLen = 0;
    try {
      for await (const c of input) {
        if (smallLen + c.length < MIN_FEED) {
          small.push(c);
          smallLen += c.length;
          continue;
        }
        const whole = smallLen === 0 ? c : Buffer.concat([...small, c]);
        small = [];
        smallLen = 0;
        for (let at = 0; at < whole.length; at += SLICE) {
          const end = Math.min(whole.length, at + SLICE);
          fed += end - at;
          yield Buffer.from(whole.buffer, whole.byteOffset + at, end - at);
        }
      }
      if (smallLen > 0) {
        fed += smallLen;
        yield Buffer.concat(small);
      }
    } catch (error) {
      sourceError = { error };
      throw error;
    }
  }
  const transform: Transform = kind === 'gzip' ? createGunzip() : new DecompressStream();
  const out = pipeline(Readable.from(counted(), { objectMode: false, highWaterMark: SLICE }), transform, () => undefined);
  try {
    for await (const chunk of out) yield chunk as Buffer;
  } catch (e) {
    if (sourceError !== undefined && e === sourceError.error) throw e;
    throw decompressError(kind, e, fed);
  }
}

function decompressError(kind: 'gzip' | 'zstd', e: unknown, fed: number): FormatError {
  const msg = e instanceof Error ? e.message : String(e);
  const truncated = /unexpected end of file|ended in middle/i.test(msg);
  if (truncated) {
    return new FormatError('ERR_TRUNCATED', `Cannot decompress ${kind} layer: the compressed stream ends early, at offset ${fed} (${msg})`, {
      offset: fed,
      cause: e,
    });
  }
  return new FormatError('ERR_DECOMPRESS', `Cannot decompress ${kind} layer: the data is corrupt at or before compressed offset ${fed} (${msg})`, {
    offset: fed,
    cause: e,
  });
}
