/**
 * Finds the data blob files of an image: an explicit `--blob` path (single-blob images or the
 * blob holding an inline bootstrap), else `<blob-dir>/<blob id>`.
 * @module
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../util/errors.js';
import { fileSource, type ByteSource } from '../image/byte-source.js';
import type { ImageBlob } from '../image/rafs-image.js';

/** Opens blob files on demand and keeps them open until close(). */
export class BlobResolver {
  #blob: string | undefined;
  #blobDir: string | undefined;
  #open = new Map<number, ByteSource>();

  constructor(options: { blob?: string | undefined; blobDir?: string | undefined }) {
    this.#blob = options.blob;
    this.#blobDir = options.blobDir;
  }

  /** Path of the file holding `blob`. */
  pathOf(blob: ImageBlob): string {
    if (this.#blobDir) {
      const p = join(this.#blobDir, blob.slot.blobId);
      if (existsSync(p)) return p;
    }
    if (this.#blob) return this.#blob;
    throw new FormatError('ERR_BLOB_MISSING', `Cannot find blob ${blob.slot.blobId}: give --blob-dir containing it, or --blob`, { errno: 5 });
  }

  /** Byte source of `blob`. */
  open(blob: ImageBlob): ByteSource {
    let s = this.#open.get(blob.index);
    if (!s) {
      s = fileSource(this.pathOf(blob));
      this.#open.set(blob.index, s);
    }
    return s;
  }

  /** Close every open blob. */
  close(): void {
    for (const s of this.#open.values()) s.close();
    this.#open.clear();
  }
}
