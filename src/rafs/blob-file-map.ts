/**
 * Blob ranges back to files: which file (and where in it) each chunk of a blob holds, for the
 * erofs driver, whose daemon sees only reads of blob files. Built on first use by one walk of the
 * image that yields to the event loop every few thousand entries, so that a large image's walk
 * never holds up FUSE requests; afterwards a lookup is a binary search.
 *
 * A chunk that several files share (deduplicated) is attributed to the first file of the walk
 * that holds it. Ranges are whole chunks: the daemon puts every chunk it fetches into the blob
 * file's page cache, so the kernel reads the rest of a chunk it touched without asking again,
 * and a chunk is the unit that is fetched anyway.
 * @module
 */
import { S_IFMT, S_IFREG } from '../format/v6/constants.js';
import type { RafsImage } from '../image/rafs-image.js';
import { walkImage } from '../image/walk.js';
import type { FileRange } from './access-trace.js';

/** Entries walked between two yields to the event loop. */
const YIELD_EVERY = 2000;

interface BlobMap {
  /** Uncompressed offsets of the chunks with a record, in chunk order (increasing). */
  starts: Float64Array;
  /** Chunk index of each start. */
  indexes: Uint32Array;
  /** Per chunk index: owner file number + 1 (0: no file). */
  owner: Int32Array;
  /** Per chunk index: offset of the chunk in its owner file. */
  fileOffset: Float64Array;
}

/** The chunk → file map of an image. */
export class BlobFileMap {
  readonly #image: RafsImage;
  #built: Promise<{ blobs: BlobMap[]; files: Array<{ nid: number; path: string }> }> | undefined;

  constructor(image: RafsImage) {
    this.#image = image;
  }

  #build(): Promise<{ blobs: BlobMap[]; files: Array<{ nid: number; path: string }> }> {
    this.#built ??= (async () => {
      const image = this.#image;
      const blobs: BlobMap[] = image.blobs.map((b) => {
        const s = image.chunkStarts(b.index);
        return { starts: s.starts, indexes: s.indexes, owner: new Int32Array(b.entry.chunkCount), fileOffset: new Float64Array(b.entry.chunkCount) };
      });
      const files: Array<{ nid: number; path: string }> = [];
      const seen = new Set<number>();
      const cs = image.ext.chunkSize;
      let n = 0;
      for (const e of walkImage(image)) {
        if (++n % YIELD_EVERY === 0) await new Promise<void>((r) => setImmediate(r));
        const i = e.inode;
        if ((i.mode & S_IFMT) !== S_IFREG || i.size === 0 || seen.has(i.nid)) continue;
        seen.add(i.nid);
        let mine = 0;
        image.chunkIndexes(i).forEach((c, k) => {
          const m = blobs[c.blobIndex];
          if (!m || c.chunkIndex >= m.owner.length || m.owner[c.chunkIndex] !== 0) return;
          if (mine === 0) {
            files.push({ nid: i.nid, path: e.path });
            mine = files.length;
          }
          m.owner[c.chunkIndex] = mine;
          m.fileOffset[c.chunkIndex] = k * cs;
        });
      }
      return { blobs, files };
    })();
    return this.#built;
  }

  /** The files held by `length` bytes at `offset` of blob `blobIndex`, with their ranges. */
  async resolve(blobIndex: number, offset: number, length: number): Promise<FileRange[]> {
    const { blobs, files } = await this.#build();
    const m = blobs[blobIndex];
    if (!m || m.starts.length === 0) return [];
    const end = offset + length;
    let lo = 0;
    let hi = m.starts.length - 1;
    let k = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((m.starts[mid] as number) <= offset) { k = mid; lo = mid + 1; } else hi = mid - 1;
    }
    const out: FileRange[] = [];
    for (; k < m.starts.length && (m.starts[k] as number) < end; k++) {
      const index = m.indexes[k] as number;
      const owner = m.owner[index] as number;
      if (owner === 0) continue;
      const start = m.starts[k] as number;
      const rec = this.#image.chunkRecordByIndex(blobIndex, index);
      if (!rec) continue;
      const s = start;
      const e = start + rec.uncompressedSize;
      if (e <= offset) continue;
      const f = files[owner - 1] as { nid: number; path: string };
      const fileOff = m.fileOffset[index] as number;
      const last = out[out.length - 1];
      if (last && last.nid === f.nid && last.offset + last.length === fileOff) last.length += e - s;
      else out.push({ nid: f.nid, path: f.path, offset: fileOff, length: e - s });
    }
    return out;
  }
}
