/**
 * Chunk digesters: blake3 (native, @napi-rs/blake-hash) and sha256 (node:crypto).
 * @module
 */
import { createHash } from 'node:crypto';
import { blake3 } from '@napi-rs/blake-hash';

/** Digest algorithms Nydus supports, by their CLI names. */
export type Digester = 'blake3' | 'sha256';

/** Nydus's on-disk code of a digester (RafsV6Blob.digest_algo). */
export const DIGESTER_CODE: Record<Digester, number> = { blake3: 0, sha256: 1 };

/** Type guard for CLI input. */
export function isDigester(s: string): s is Digester {
  return s === 'blake3' || s === 'sha256';
}

/** The digester for an on-disk code. */
export function digesterFromCode(code: number): Digester | undefined {
  if (code === 0) return 'blake3';
  if (code === 1) return 'sha256';
  return undefined;
}

/** 32-byte digest of `data` with `algo`. */
export function digest(algo: Digester, data: Uint8Array): Uint8Array {
  if (algo === 'blake3') {
    const out = blake3(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
  const out = createHash('sha256').update(data).digest();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Hex sha256 of `data`. */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
