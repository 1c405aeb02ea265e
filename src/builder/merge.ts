/**
 * `nydus-image merge`: flatten layer bootstraps (bottom first) into one image bootstrap that
 * applies whiteouts and opaque directories and references every layer's blobs.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { UsageError, FormatError } from '../util/errors.js';
import { TempFiles } from '../util/atomic-file.js';
import { RafsImage } from '../image/rafs-image.js';
import { fileSource } from '../image/byte-source.js';
import type { BlobEntry } from '../format/v6/blob-entry.js';
import { writeBootstrap } from './bootstrap-writer.js';
import { loadImageTree } from './load-image.js';
import { applyLayer, dropWhiteouts, type WhiteoutSpec } from './whiteout.js';
import { copyAttrs, newDirNode, utf8Key, type BuildNode } from './build-node.js';

/** Options of a merge. */
export interface MergeOptions {
  sources: readonly string[];
  bootstrap: string;
  whiteoutSpec: WhiteoutSpec;
  /** Absolute paths for the prefetch table. */
  prefetch?: readonly string[];
  /** Blob ids replacing each layer's (for layers whose bootstrap carries a placeholder id). */
  blobIds?: readonly string[];
}

/** What a merge produced. */
export interface MergeResult {
  bootstrap: string;
  blobs: string[];
}

const PLACEHOLDER = 'x'.repeat(64);

/** Merge layer bootstraps. */
export function merge(o: MergeOptions): MergeResult {
  if (o.sources.length === 0) throw new UsageError('ERR_USAGE', 'Cannot merge: no source bootstraps given');
  if (o.blobIds && o.blobIds.length !== o.sources.length) throw new UsageError('ERR_USAGE', `Cannot merge: ${o.blobIds.length} blob ids for ${o.sources.length} sources`);
  const blobs: BlobEntry[] = [];
  let merged: BuildNode | undefined;
  let params: { chunkSize: number; compressor: RafsImage['compressor']; digester: RafsImage['digester'] } | undefined;
  o.sources.forEach((src, layer) => {
    const image = new RafsImage(fileSource(src));
    try {
      if (!params) params = { chunkSize: image.ext.chunkSize, compressor: image.compressor, digester: image.digester };
      else if (params.chunkSize !== image.ext.chunkSize || params.digester !== image.digester) {
        throw new FormatError('ERR_MERGE_MISMATCH', `Cannot merge ${src}: chunk size ${image.ext.chunkSize}/${image.digester} differs from the first layer's ${params.chunkSize}/${params.digester}`, { path: src });
      }
      const map = image.blobs.map((b) => {
        let id = b.slot.blobId;
        if (o.blobIds && image.blobs.length === 1) id = o.blobIds[layer] as string;
        else if (id === PLACEHOLDER && /^[0-9a-f]{64}$/.test(basename(src))) id = basename(src);
        const found = blobs.findIndex((x) => x.blobId === id);
        if (found >= 0) return found;
        blobs.push({ ...b.entry, blobId: id, blobIndex: blobs.length });
        return blobs.length - 1;
      });
      if (blobs.length >= 255) throw new FormatError('ERR_TOO_MANY_BLOBS', 'Cannot merge: more than 254 blobs');
      const tree = loadImageTree(image, map);
      if (!merged) {
        dropWhiteouts(o.whiteoutSpec, tree);
        merged = tree;
      } else {
        copyAttrs(merged, tree);
        applyLayer(o.whiteoutSpec, merged, tree);
      }
    } finally {
      image.close();
    }
  });
  const root = merged ?? newDirNode();
  const p = params as NonNullable<typeof params>;
  const prefetch: BuildNode[] = [];
  for (const path of o.prefetch ?? []) {
    let cur: BuildNode | undefined = root;
    for (const part of path.split('/').filter((x) => x.length > 0)) cur = cur?.children?.get(utf8Key(part));
    if (cur) prefetch.push(cur);
  }
  const temps = new TempFiles();
  try {
    const tmp = temps.for(o.bootstrap);
    writeFileSync(tmp, writeBootstrap(root, { ...p, blobs, prefetch }));
    temps.commit(tmp, o.bootstrap);
  } finally {
    temps.cleanup();
  }
  return { bootstrap: o.bootstrap, blobs: blobs.map((b) => b.blobId) };
}
