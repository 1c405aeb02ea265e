/**
 * The TraceResolver of a mount: paths of nids from what lookups showed, else found by a walk of
 * the image (which yields to the event loop, so a large image never holds up FUSE requests), and
 * for the erofs driver blob ranges mapped back to files (BlobFileMap).
 * @module
 */
import type { RafsImage } from '../image/rafs-image.js';
import { walkImage } from '../image/walk.js';
import type { FileRange, TraceResolver } from './access-trace.js';
import { BlobFileMap } from './blob-file-map.js';

/** Entries walked between two yields to the event loop. */
const YIELD_EVERY = 2000;

/** Paths of `nids` found by walking `image` (stops once all are found). */
export async function findPaths(image: RafsImage, nids: readonly number[]): Promise<Map<number, string>> {
  const want = new Set(nids);
  const out = new Map<number, string>();
  let n = 0;
  for (const e of walkImage(image)) {
    if (want.size === 0) break;
    if (++n % YIELD_EVERY === 0) await new Promise<void>((r) => setImmediate(r));
    if (want.delete(e.inode.nid)) out.set(e.inode.nid, e.path);
  }
  return out;
}

/** The resolver of a mount of `image`; `known` gives paths lookups already showed. */
export function createTraceResolver(image: RafsImage, known?: (nid: number) => string | undefined): TraceResolver {
  let map: BlobFileMap | undefined;
  return {
    async pathsOf(nids: readonly number[]): Promise<Map<number, string>> {
      const out = new Map<number, string>();
      const rest: number[] = [];
      for (const nid of nids) {
        const p = known?.(nid);
        if (p !== undefined) out.set(nid, p);
        else rest.push(nid);
      }
      if (rest.length > 0) for (const [nid, p] of await findPaths(image, rest)) out.set(nid, p);
      return out;
    },
    blobRange(blobIndex: number, offset: number, length: number): Promise<FileRange[]> {
      map ??= new BlobFileMap(image);
      return map.resolve(blobIndex, offset, length);
    },
  };
}
