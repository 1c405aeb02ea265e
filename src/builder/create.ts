/**
 * `nydus-image create`: build a bootstrap and a data blob from a directory or a layer tarball.
 * @module
 */
import { createReadStream, existsSync, mkdirSync, rmdirSync, writeFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UsageError } from '../util/errors.js';
import { TempFiles } from '../util/atomic-file.js';
import type { Compressor } from '../util/compress.js';
import type { Digester } from '../util/digest.js';
import type { BlobEntry } from '../format/v6/blob-entry.js';
import { BlobWriter, type BlobStats } from './blob-writer.js';
import { writeBootstrap } from './bootstrap-writer.js';
import { buildFromDir } from './sources/dir-source.js';
import { buildFromTar } from './sources/tar-source.js';
import { dropWhiteouts, type WhiteoutSpec } from './whiteout.js';
import { lookupPath, type BuildNode } from './build-node.js';

/** Source types `create` accepts. */
export type SourceType = 'dir-rafs' | 'tar-rafs';

/** Options of a build, mirroring nydus-image create's flags. */
export interface CreateOptions {
  /** A directory or tar file path; for tar-rafs also a stream of the layer's bytes. */
  source: string | AsyncIterable<Uint8Array>;
  type: SourceType;
  /** Bootstrap output path. */
  bootstrap?: string;
  /** Blob output path (`--blob`). */
  blob?: string;
  /** Directory the blob is written to, named by its id (`--blob-dir`). */
  blobDir?: string;
  chunkSize: number;
  compressor: Exclude<Compressor, 'gzip'>;
  digester: Digester;
  whiteoutSpec: WhiteoutSpec;
  /** Absolute paths for the prefetch table (`--prefetch-policy fs`). */
  prefetch?: readonly string[];
  blobInlineMeta: boolean;
  blobToc: boolean;
  onWarn?: (code: string, message: string) => void;
}

/** What a build produced. */
export interface CreateResult {
  bootstrap?: string;
  blobId?: string;
  blobPath?: string;
  blobSize: number;
  stats: BlobStats;
  files: number;
}

function countNodes(root: BuildNode): number {
  const seen = new Set<BuildNode>();
  const stack = [root];
  while (stack.length > 0) {
    const n = stack.pop() as BuildNode;
    if (seen.has(n)) continue;
    seen.add(n);
    for (const c of n.children?.values() ?? []) stack.push(c);
  }
  return seen.size;
}

/** Run a build. Outputs appear under their final names only when everything succeeded. */
export async function create(o: CreateOptions): Promise<CreateResult> {
  if (!o.bootstrap && !o.blob && !o.blobDir) throw new UsageError('ERR_USAGE', 'Cannot create: give --bootstrap, --blob or --blob-dir');
  if (o.blobInlineMeta && !o.blob && !o.blobDir) throw new UsageError('ERR_USAGE', 'Cannot create: --blob-inline-meta needs --blob or --blob-dir');
  if (typeof o.source === 'string') {
    try {
      statSync(o.source);
    } catch {
      throw new UsageError('ERR_SOURCE', `Cannot create: source ${o.source} does not exist`, { path: o.source });
    }
  } else if (o.type !== 'tar-rafs') {
    throw new UsageError('ERR_USAGE', 'Cannot create: a stream source must be a tar layer (tar-rafs)');
  }
  const temps = new TempFiles();
  const blobTarget = o.blob ?? join(o.blobDir ?? dirname(o.bootstrap as string), 'blob');
  const createdDir = o.blobDir !== undefined && !existsSync(o.blobDir);
  if (o.blobDir) mkdirSync(o.blobDir, { recursive: true });
  const blobTemp = temps.for(blobTarget);
  const writer = new BlobWriter({
    path: blobTemp, blobIndex: 0, chunkSize: o.chunkSize, compressor: o.compressor, digester: o.digester,
    toc: o.blobToc, inlineMeta: o.blobInlineMeta,
  });
  try {
    const warn = o.onWarn;
    const built = o.type === 'dir-rafs'
      ? buildFromDir(o.source as string, writer, { ...(warn ? { onWarn: warn } : {}), firstFiles: o.prefetch ?? [] })
      : await buildFromTar(typeof o.source === 'string' ? createReadStream(o.source, { highWaterMark: 1 << 20 }) : o.source, writer, { ...(warn ? { onWarn: warn } : {}), prefetch: o.prefetch ?? [] });
    const root = built.root;
    dropWhiteouts(o.whiteoutSpec, root);
    const prefetch = (o.prefetch ?? []).map((p) => lookupPath(root, p)).filter((n): n is BuildNode => n !== undefined);
    const common = { chunkSize: o.chunkSize, compressor: o.compressor, digester: o.digester, prefetch };
    const withBlob = writer.hasData || o.blobInlineMeta;
    let entry: BlobEntry | undefined;
    if (withBlob) {
      const partial = writer.finishData();
      if (o.blobInlineMeta) writer.appendBootstrap(writeBootstrap(root, { ...common, blobs: writer.hasData ? [partial] : [] }));
      entry = writer.finalize();
    } else {
      writer.abort();
      temps.discard(blobTemp);
    }
    const result: CreateResult = { blobSize: entry ? writer.position : 0, stats: writer.stats, files: countNodes(root) };
    if (entry) {
      const blobPath = o.blob ?? join(o.blobDir as string, entry.blobId);
      result.blobId = entry.blobId;
      result.blobPath = blobPath;
      temps.commit(blobTemp, blobPath);
    }
    if (o.bootstrap) {
      const bootTemp = temps.for(o.bootstrap);
      writeFileSync(bootTemp, writeBootstrap(root, { ...common, blobs: entry && writer.hasData ? [entry] : [] }));
      temps.commit(bootTemp, o.bootstrap);
      result.bootstrap = o.bootstrap;
    }
    return result;
  } catch (e) {
    writer.abort();
    temps.cleanup();
    if (createdDir) { try { rmdirSync(o.blobDir as string); } catch { /* not empty: keep */ } }
    throw e;
  } finally {
    temps.cleanup();
  }
}
