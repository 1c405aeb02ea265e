/**
 * `nydusify convert`: an OCI image (from any ImageStore) to a Nydus image (in any ImageStore).
 * Every layer is streamed from the source, decompressed and built into a Nydus blob with its
 * bootstrap inlined (as nydusify does), each on a worker thread (builder/layer-build.ts); the
 * blobs are pushed, the layer bootstraps are merged into the image bootstrap, which is pushed as
 * the last layer; config and manifest follow, the manifest last, so a failed conversion never
 * leaves a tag pointing at half an image.
 * @module
 */
import { mapBounded } from '../util/map-bounded.js';
import { mkdirSync, readFileSync, statSync, existsSync, writeFileSync, copyFileSync, renameSync, createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { FormatError, UsageError } from '../util/errors.js';
import { tempPathFor } from '../util/atomic-file.js';
import type { Compressor } from '../util/compress.js';
import { buildLayer } from '../builder/layer-build.js';
import { openLayer } from '../tar/open-layer.js';
import { merge } from '../builder/merge.js';
import type { ImageStore } from './image-store.js';
import { packBootstrapLayer } from './bootstrap-layer.js';
import {
  ANNOTATION_NYDUS_BLOB, ANNOTATION_NYDUS_BOOTSTRAP, ANNOTATION_NYDUS_FS_VERSION, ANNOTATION_NYDUS_SOURCE_DIGEST, ARTIFACT_NYDUS_MANIFEST,
  MEDIA_DOCKER_CONFIG, MEDIA_NYDUS_BLOB, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST,
  isIndexMediaType, type Descriptor, type ImageConfig, type ImageIndex, type Manifest,
} from './oci-types.js';
import { formatPlatform, platformMatches, type PlatformSpec } from './platform.js';

/** Options of a conversion. */
export interface ConvertOptions {
  /** Scratch space; also holds the conversion cache (`cache/`). */
  workDir: string;
  compressor: Exclude<Compressor, 'gzip'>;
  chunkSize: number;
  /** Absolute paths for the prefetch table ("/" when none is given, as nydusify). */
  prefetchPatterns: readonly string[];
  /** Platforms to convert from an index (default linux/amd64); each must be in the index. */
  platforms?: readonly PlatformSpec[];
  /** Convert every platform of an index. */
  allPlatforms?: boolean;
  /** Layers built at the same time (default: one per core, 2 to 4). */
  concurrency?: number;
  /** Progress lines. */
  onProgress?: (event: { kind: 'layer-start' | 'layer-done' | 'layer-cached' | 'pushed' | 'done'; detail: string; bytes?: number }) => void;
}

/** What a conversion produced. */
export interface ConvertResult {
  /** Digest of the pushed manifest or index. */
  digest: string;
  mediaType: string;
  manifests: Array<{ digest: string; platform: string; layers: number; blobBytes: number }>;
}

interface LayerOut {
  source: Descriptor;
  blobDigest: string;
  blobSize: number;
  blobPath: string;
  bootstrap: string;
}

/** Layers built at once by default: one per core (each on its own thread), 2 to 4. */
const DEFAULT_CONCURRENCY = Math.max(2, Math.min(4, availableParallelism()));

function sha256(b: Uint8Array): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/**
 * The cached conversion recorded in `meta`, when its blob still has the size and sha256 the
 * record names and its bootstrap is there; else undefined (the layer is converted again). The
 * blob is hashed again because a damaged cache would otherwise be pushed, or fail the push.
 */
async function cachedLayer(meta: string): Promise<LayerOut | undefined> {
  let rec: LayerOut;
  try {
    rec = JSON.parse(readFileSync(meta, 'utf8')) as LayerOut;
    if (!existsSync(rec.bootstrap) || statSync(rec.blobPath).size !== rec.blobSize) return undefined;
  } catch {
    return undefined;
  }
  const h = createHash('sha256');
  try {
    for await (const c of createReadStream(rec.blobPath, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  } catch {
    return undefined;
  }
  return `sha256:${h.digest('hex')}` === rec.blobDigest ? rec : undefined;
}

/**
 * Convert one source layer (or reuse the cached conversion of the same source digest and build
 * options; the prefetch list is one of them, since it decides where file data sits in the blob).
 */
async function convertLayer(src: ImageStore, layer: Descriptor, o: ConvertOptions): Promise<LayerOut> {
  const hex = layer.digest.replace(/^sha256:/, '');
  const hint = o.prefetchPatterns.length === 0 || (o.prefetchPatterns.length === 1 && o.prefetchPatterns[0] === '/')
    ? '' : `-p${createHash('sha256').update([...o.prefetchPatterns].sort().join('\n')).digest('hex').slice(0, 12)}`;
  const cacheDir = join(o.workDir, 'cache', `${hex}-${o.compressor}-${o.chunkSize}${hint}`);
  const meta = join(cacheDir, 'layer.json');
  const cached = await cachedLayer(meta);
  if (cached) {
    o.onProgress?.({ kind: 'layer-cached', detail: layer.digest });
    return cached;
  }
  mkdirSync(cacheDir, { recursive: true });
  o.onProgress?.({ kind: 'layer-start', detail: layer.digest, bytes: layer.size });
  const bootstrap = join(cacheDir, 'layer.boot');
  let r;
  try {
    // Decompressed here (zlib works in libuv's threadpool), built on a thread of its own: a
    // layer's decompression and its build overlap, and layers built at the same time use as
    // many cores.
    r = await buildLayer(openLayer(src.blobStream(layer)), {
      bootstrap, blobDir: join(cacheDir, 'blobs'),
      chunkSize: o.chunkSize, compressor: o.compressor, digester: 'blake3', whiteoutSpec: 'none',
      prefetch: [...o.prefetchPatterns], blobInlineMeta: true, blobToc: true,
    });
  } catch (e) {
    throw new FormatError((e as { code?: string }).code ?? 'ERR_CONVERT', `Cannot convert layer ${layer.digest} of ${src.name}: ${(e as Error).message}`, { cause: e });
  }
  if (!r.blobId || !r.blobPath) throw new FormatError('ERR_CONVERT', `Cannot convert layer ${layer.digest}: no blob was produced`);
  const out: LayerOut = { source: layer, blobDigest: `sha256:${r.blobId}`, blobSize: statSync(r.blobPath).size, blobPath: r.blobPath, bootstrap };
  const tmp = tempPathFor(meta);
  writeFileSync(tmp, JSON.stringify(out));
  renameSync(tmp, meta);
  o.onProgress?.({ kind: 'layer-done', detail: `${layer.digest} -> ${out.blobDigest}`, bytes: out.blobSize });
  return out;
}

/** Convert one image manifest; pushes blobs, bootstrap layer and config, returns the manifest to push. */
async function convertManifest(src: ImageStore, dst: ImageStore, manifest: Manifest, o: ConvertOptions, tag: string): Promise<{ manifest: Manifest; data: Uint8Array; blobBytes: number }> {
  const configBytes = await collect(src.blobStream(manifest.config));
  const config = JSON.parse(Buffer.from(configBytes).toString('utf8')) as ImageConfig;
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new FormatError('ERR_BAD_IMAGE', `Cannot convert: the config lists ${config.rootfs.diff_ids.length} diff_ids for ${manifest.layers.length} layers`);
  }
  const layers = await mapBounded(manifest.layers, o.concurrency ?? DEFAULT_CONCURRENCY, (l) => convertLayer(src, l, o));
  for (const l of layers) {
    await dst.putBlobFile(l.blobDigest, l.blobSize, l.blobPath);
    o.onProgress?.({ kind: 'pushed', detail: l.blobDigest, bytes: l.blobSize });
  }
  const work = join(o.workDir, 'images', tag.replace(/[^A-Za-z0-9._-]/g, '_'));
  mkdirSync(work, { recursive: true });
  // Bootstraps named by their blob's hex digest, as nydusify merges them.
  const boots = layers.map((l) => {
    const p = join(work, l.blobDigest.replace(/^sha256:/, ''));
    copyFileSync(l.bootstrap, p);
    return p;
  });
  const merged = join(work, 'image.boot');
  merge({ sources: boots, bootstrap: merged, whiteoutSpec: 'oci', prefetch: o.prefetchPatterns });
  const bl = packBootstrapLayer(merged, join(work, 'bootstrap.tar'), join(work, 'bootstrap.tar.gz'));
  await dst.putBlobFile(bl.digest, bl.size, bl.path);
  const newConfig: ImageConfig = {
    ...config,
    rootfs: { type: 'layers', diff_ids: [...layers.map((l) => l.blobDigest), bl.diffId] },
    history: [...(config.history ?? []), { created_by: 'Nydus Converter', comment: 'Nydus Bootstrap Layer' }],
  };
  const cfgData = new Uint8Array(Buffer.from(JSON.stringify(newConfig)));
  const cfgDigest = sha256(cfgData);
  await dst.putBlob(cfgDigest, cfgData);
  const out: Manifest = {
    schemaVersion: 2, mediaType: MEDIA_OCI_MANIFEST,
    config: { mediaType: manifest.config.mediaType === MEDIA_DOCKER_CONFIG ? MEDIA_OCI_CONFIG : manifest.config.mediaType, digest: cfgDigest, size: cfgData.length },
    layers: [
      ...layers.map((l): Descriptor => ({ mediaType: MEDIA_NYDUS_BLOB, digest: l.blobDigest, size: l.blobSize, annotations: { [ANNOTATION_NYDUS_BLOB]: 'true', [ANNOTATION_NYDUS_SOURCE_DIGEST]: l.source.digest } })),
      { mediaType: MEDIA_OCI_LAYER_GZIP, digest: bl.digest, size: bl.size, annotations: { [ANNOTATION_NYDUS_BOOTSTRAP]: 'true', [ANNOTATION_NYDUS_FS_VERSION]: '6' } },
    ],
  };
  return { manifest: out, data: new Uint8Array(Buffer.from(JSON.stringify(out))), blobBytes: layers.reduce((n, l) => n + l.blobSize, 0) };
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return new Uint8Array(Buffer.concat(parts));
}

/** Convert `srcRef` in `src` to a Nydus image tagged `dstTag` in `dst`. */
export async function convertImage(src: ImageStore, srcRef: string, dst: ImageStore, dstTag: string, o: ConvertOptions): Promise<ConvertResult> {
  const top = await src.getManifest(srcRef);
  const parsed = JSON.parse(Buffer.from(top.data).toString('utf8')) as Manifest | ImageIndex;
  const mediaType = top.mediaType || (parsed as { mediaType?: string }).mediaType || MEDIA_OCI_MANIFEST;
  if (!isIndexMediaType(mediaType) && !('manifests' in parsed)) {
    const c = await convertManifest(src, dst, parsed as Manifest, o, dstTag);
    const digest = await dst.putManifest(dstTag, MEDIA_OCI_MANIFEST, c.data);
    o.onProgress?.({ kind: 'done', detail: digest });
    return { digest, mediaType: MEDIA_OCI_MANIFEST, manifests: [{ digest, platform: 'default', layers: c.manifest.layers.length, blobBytes: c.blobBytes }] };
  }
  const index = parsed as ImageIndex;
  const wants = o.platforms ?? [{ os: 'linux', architecture: 'amd64' }];
  const has = (): string => index.manifests.map((m) => formatPlatform(m.platform)).join(', ');
  if (!o.allPlatforms) {
    const missing = wants.filter((w) => !index.manifests.some((m) => platformMatches(m.platform, w)));
    if (missing.length > 0) throw new UsageError('ERR_NO_PLATFORM', `Cannot convert ${srcRef}: no manifest for ${missing.map(formatPlatform).join(', ')} (it has ${has()})`);
  }
  const chosen = o.allPlatforms ? index.manifests : index.manifests.filter((m) => wants.some((w) => platformMatches(m.platform, w)));
  const outs: ConvertResult['manifests'] = [];
  const entries: Descriptor[] = [];
  for (const d of chosen) {
    const m = await src.getManifest(d.digest);
    const plat = formatPlatform(d.platform);
    const c = await convertManifest(src, dst, JSON.parse(Buffer.from(m.data).toString('utf8')) as Manifest, o, `${dstTag}-${plat}`);
    const digest = await dst.putManifest(sha256(c.data), MEDIA_OCI_MANIFEST, c.data);
    entries.push({ mediaType: MEDIA_OCI_MANIFEST, digest, size: c.data.length, ...(d.platform ? { platform: d.platform } : {}), artifactType: ARTIFACT_NYDUS_MANIFEST });
    outs.push({ digest, platform: plat, layers: c.manifest.layers.length, blobBytes: c.blobBytes });
  }
  const idx: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_OCI_INDEX, manifests: entries };
  const data = new Uint8Array(Buffer.from(JSON.stringify(idx)));
  const digest = await dst.putManifest(dstTag, MEDIA_OCI_INDEX, data);
  o.onProgress?.({ kind: 'done', detail: digest });
  return { digest, mediaType: MEDIA_OCI_INDEX, manifests: outs };
}
