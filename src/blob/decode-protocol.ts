/**
 * Messages between the chunk decoder (chunk-decoder.ts) and its worker threads
 * (decode-worker.ts).
 * @module
 */
import type { Compressor } from '../util/compress.js';
import type { Digester } from '../util/digest.js';

/** Numbers per chunk in DecodeRequest.meta: index, flags, compressed offset and size, uncompressed size. */
export const META_FIELDS = 5;
/** Digest bytes per chunk in DecodeRequest.digests. */
export const DIGEST_SIZE = 32;

/** Decode a run of chunks held in `raw` (the blob's bytes from compressed offset `base`). */
export interface DecodeRequest {
  id: number;
  raw: Uint8Array;
  base: number;
  meta: Float64Array;
  digests: Uint8Array;
  compressor: Compressor;
  digester: Digester;
  validate: boolean;
  /** What the blob is called in error messages. */
  where: string;
}

/** The chunks' data back to back in chunk order (failed chunks' bytes undefined), and what failed. */
export interface DecodeReply {
  id: number;
  slab: Uint8Array;
  errors: Array<{ i: number; code: string; message: string; offset?: number }>;
}
