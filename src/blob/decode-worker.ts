/**
 * Worker thread of the chunk decoder: decodes each run of chunks it is sent into one buffer and
 * sends that buffer back (transferred).
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { NydusError } from '../util/errors.js';
import { decodeChunk, type DecodableChunk } from './chunk-reader.js';
import { DIGEST_SIZE, META_FIELDS, type DecodeReply, type DecodeRequest } from './decode-protocol.js';

function decodeRun(m: DecodeRequest): DecodeReply {
  const n = m.meta.length / META_FIELDS;
  let total = 0;
  for (let i = 0; i < n; i++) total += m.meta[i * META_FIELDS + 4] as number;
  // Every byte is written below (a failed chunk's bytes are never used): no need to zero them.
  const slab = Buffer.allocUnsafeSlow(total);
  const errors: DecodeReply['errors'] = [];
  const codec = { compressor: m.compressor, digester: m.digester, validate: m.validate };
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const f = i * META_FIELDS;
    const chunk: DecodableChunk = {
      index: m.meta[f] as number,
      flags: m.meta[f + 1] as number,
      compressedOffset: m.meta[f + 2] as number,
      compressedSize: m.meta[f + 3] as number,
      uncompressedSize: m.meta[f + 4] as number,
      digest: m.digests.subarray(i * DIGEST_SIZE, (i + 1) * DIGEST_SIZE),
    };
    const off = chunk.compressedOffset - m.base;
    const dst = slab.subarray(pos, pos + chunk.uncompressedSize);
    try {
      const out = decodeChunk(m.raw.subarray(off, off + chunk.compressedSize), chunk, codec, m.where, dst);
      if (out !== dst) dst.set(out);
    } catch (e) {
      const err = e instanceof NydusError ? e : undefined;
      errors.push({ i, code: err?.code ?? 'ERR_CHUNK_DECODE', message: err ? err.message : `Cannot decode chunk ${chunk.index} of ${m.where}: ${(e as Error).message}`, ...(err?.offset === undefined ? {} : { offset: err.offset }) });
    }
    pos += chunk.uncompressedSize;
  }
  return { id: m.id, slab, errors };
}

parentPort?.on('message', (m: DecodeRequest) => {
  const reply = decodeRun(m);
  parentPort?.postMessage(reply, [reply.slab.buffer as ArrayBuffer]);
});
