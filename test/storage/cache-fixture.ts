/**
 * A real blob for the cache tests: a small generated tree built with the builder (4 KiB chunks,
 * zstd, blake3), its chunk records from the bootstrap, and backend wrappers that count, delay,
 * gate or fail reads.
 * @module
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '../../src/builder/create.js';
import { RafsImage } from '../../src/image/rafs-image.js';
import { fileSource } from '../../src/image/byte-source.js';
import { walkImage } from '../../src/image/walk.js';
import type { ChunkRecord } from '../../src/format/v6/chunk-record.js';
import type { BlobBackend } from '../../src/storage/blob-backend.js';
import type { BlobInfo } from '../../src/storage/blob-cache.js';
import { BackendError } from '../../src/util/errors.js';
import { pseudoRandom } from './backend.case.js';

/** A built image. */
export interface Fixture {
  root: string;
  blobDir: string;
  blobId: string;
  blobPath: string;
  info: BlobInfo;
  /** Records of the blob by index. */
  records: ChunkRecord[];
  /** Regular files: path in the image, source bytes, chunk records in file order. */
  files: { path: string; data: Uint8Array; recs: ChunkRecord[] }[];
}

function text(n: number, seed: number): Uint8Array {
  const words = ['nydus', 'chunk', 'blob', 'cache', 'erofs', 'rafs', 'lazy', 'pull', 'zstd', 'prefetch'];
  let s = '';
  let x = seed;
  while (s.length < n) {
    x = (x * 1103515245 + 12345) >>> 0;
    s += `${words[x % words.length] as string}${x % 7 === 0 ? '\n' : ' '}`;
  }
  return new TextEncoder().encode(s.slice(0, n));
}

/** Build the fixture image under a fresh temp dir. */
export async function buildFixture(): Promise<Fixture> {
  const root = mkdtempSync(join(tmpdir(), 'nydus-cache-fixture-'));
  const src = join(root, 'src');
  mkdirSync(join(src, 'sub'), { recursive: true });
  const contents: Record<string, Uint8Array> = {
    'a-small.txt': text(100, 1),
    'b-small.txt': text(3000, 2),
    'c-medium.txt': text(40 * 1024 + 17, 3),
    'd-random.bin': pseudoRandom(20 * 1024, 4),
    'e-mixed.bin': new Uint8Array([...pseudoRandom(12 * 1024, 5), ...text(18 * 1024, 6)]),
    'f-dup.txt': text(3000, 2),
    'sub/g.txt': text(9000, 7),
    'sub/h.bin': pseudoRandom(5000, 8),
  };
  for (const [p, d] of Object.entries(contents)) writeFileSync(join(src, p), d);
  const boot = join(root, 'bootstrap');
  const blobDir = join(root, 'blobs');
  const r = await create({
    source: src, type: 'dir-rafs', bootstrap: boot, blobDir, chunkSize: 4096, compressor: 'zstd', digester: 'blake3',
    whiteoutSpec: 'none', blobInlineMeta: false, blobToc: false,
  });
  const img = new RafsImage(fileSource(boot));
  const b = img.blobs[0];
  if (!b || !r.blobId || !r.blobPath) throw new Error('fixture has no blob');
  const records: ChunkRecord[] = [];
  for (let k = 0; k < b.entry.chunkCount; k++) {
    const rec = img.chunkRecordByIndex(0, k);
    if (!rec) throw new Error(`no record for chunk ${k}`);
    records.push(rec);
  }
  const files: Fixture['files'] = [];
  for (const e of walkImage(img)) {
    if ((e.inode.mode & 0o170000) !== 0o100000) continue;
    files.push({ path: e.path, data: new Uint8Array(readFileSync(join(src, e.path))), recs: img.chunkIndexes(e.inode).map((c) => img.chunkRecord(c)) });
  }
  const info: BlobInfo = {
    blobId: r.blobId, compressor: b.compressor, digester: b.digester, chunkCount: b.entry.chunkCount,
    uncompressedSize: b.entry.uncompressedSize, compressedSize: b.entry.compressedSize,
    chunkAt: (index) => records[index],
  };
  img.close();
  return { root, blobDir, blobId: r.blobId, blobPath: r.blobPath, info, records, files };
}

/** Concatenate chunks and cut to `size`. */
export function joinChunks(parts: readonly Uint8Array[], size: number): Uint8Array {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))).subarray(0, size);
}

/** One read a wrapped backend saw. */
export interface SeenRead {
  offset: number;
  length: number;
}

/** A backend wrapper that logs reads, tracks concurrency, and can delay, gate or fail them. */
export class SpyBackend implements BlobBackend {
  readonly type = 'spy';
  readonly reads: SeenRead[] = [];
  active = 0;
  maxActive = 0;
  /** Delay every read by this many ms. */
  delayMs = 0;
  /** Fail the next n reads. */
  failNext = 0;
  /** When set, reads wait until released. */
  gated = false;
  readonly #waiting: { read: SeenRead; go: () => void }[] = [];
  readonly #inner: BlobBackend;

  constructor(inner: BlobBackend) {
    this.#inner = inner;
  }

  get metrics() {
    return this.#inner.metrics;
  }

  /** Reads waiting at the gate. */
  get pending(): readonly SeenRead[] {
    return this.#waiting.map((w) => w.read);
  }

  /** Let through the waiting read at `offset` (or all). */
  release(offset?: number): void {
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const w = this.#waiting[i] as { read: SeenRead; go: () => void };
      if (offset === undefined || w.read.offset === offset) {
        this.#waiting.splice(i, 1);
        w.go();
      }
    }
  }

  /** Open the gate for good. */
  openGate(): void {
    this.gated = false;
    this.release();
  }

  blobSize(blobId: string, signal?: AbortSignal): Promise<number> {
    return this.#inner.blobSize(blobId, signal);
  }

  async read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    const read = { offset, length };
    this.reads.push(read);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.gated) await new Promise<void>((go) => this.#waiting.push({ read, go }));
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      if (this.failNext > 0) {
        this.failNext--;
        throw new BackendError('ERR_HTTP_STATUS', `Cannot read bytes ${offset}-${offset + length - 1} of blob ${blobId}: HTTP 503 (injected)`, { errno: 5 });
      }
      return await this.#inner.read(blobId, offset, length, signal);
    } finally {
      this.active--;
    }
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
