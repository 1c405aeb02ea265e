/**
 * `nydusify optimize`: a Nydus image with a new prefetch table and one new blob holding the
 * listed files' data in list order (builder/optimize.ts), made without converting again. Only
 * the bootstrap layer and the chunks of the listed files are read from the source (ranged reads
 * of contiguous chunks); the new blob, a new bootstrap layer, the config and the manifest are
 * pushed, the manifest last. The old blob layers are reused as they are: not touched in the same
 * repository, mounted across repositories of one registry, copied only to another store.
 * @module
 */
import { createWriteStream, mkdirSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { sha256Hex } from '../util/digest.js';
import { join } from 'node:path';
import { FormatError } from '../util/errors.js';
import { fileSource, type ByteSource } from '../image/byte-source.js';
import { optimize, type BlobRangeReader } from '../builder/optimize.js';
import type { ImageStore } from './image-store.js';
import { bootstrapLayerOf, fetchBootstrap, readConfig, resolveManifest } from './image-parts.js';
import { packBootstrapLayer } from './bootstrap-layer.js';
import { workSubdir } from './nydusd-runner.js';
import {
  ANNOTATION_NYDUS_BLOB, ANNOTATION_NYDUS_BOOTSTRAP, ANNOTATION_NYDUS_FS_VERSION, MEDIA_NYDUS_BLOB, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST,
  type Descriptor, type ImageConfig, type Manifest,
} from './oci-types.js';
import type { PlatformSpec } from './platform.js';

/** Options of an optimize against image stores. */
export interface OptimizeImageOptions {
  /** Scratch space (bootstraps, the new blob). */
  workDir: string;
  /** Absolute paths in access order. */
  prefetch: readonly string[];
  /** Platform to pick from a Nydus index (default linux/amd64). */
  platform?: PlatformSpec;
  onWarn?: (code: string, message: string) => void;
  onProgress?: (event: { kind: 'bootstrap' | 'built' | 'pushed' | 'kept' | 'mounted' | 'exists' | 'copied' | 'done'; detail: string; bytes?: number }) => void;
}

/** What an optimize did. */
export interface OptimizeImageResult {
  /** Digest of the pushed manifest. */
  digest: string;
  /** The new blob (sha256:…), undefined when no listed file has data. */
  blobDigest?: string;
  bootstrapDigest: string;
  /** Old blob layers: left in place (same repository), mounted, already there, copied. */
  reused: { kept: number; mounted: number; existing: number; copied: number };
  prefetch: string[];
  missing: string[];
  /** Chunk bytes read from the source and the reads that fetched them. */
  bytesRead: number;
  reads: number;
}

function sha256(b: Uint8Array): string {
  return `sha256:${sha256Hex(b)}`;
}

/** Ranged reads of the source's blob layers, by blob id. */
function layerReader(src: ImageStore, layers: ReadonlyMap<string, Descriptor>): { read: BlobRangeReader; close(): void } {
  const open = new Map<string, ByteSource>();
  const loc = src.location;
  return {
    async read(blob, offset, length) {
      const desc = layers.get(blob.slot.blobId);
      if (!desc) throw new FormatError('ERR_BAD_IMAGE', `Cannot read blob ${blob.slot.blobId} (blob table entry ${blob.index}) of ${src.name}: it is not a layer of the manifest`);
      if (offset + length > desc.size) throw new FormatError('ERR_BAD_CHUNK', `Cannot read ${offset}+${length} of blob ${desc.digest} of ${src.name}: the layer has ${desc.size} bytes`, { offset });
      if (loc?.kind === 'registry') return loc.client.readBlob(loc.repo, desc.digest, offset, length);
      if (loc?.kind === 'oci') {
        let s = open.get(desc.digest);
        if (!s) {
          s = fileSource(join(loc.dir, 'blobs', 'sha256', desc.digest.replace(/^sha256:/, '')));
          open.set(desc.digest, s);
        }
        return s.read(offset, length);
      }
      throw new FormatError('ERR_UNSUPPORTED', `Cannot read blob ranges of ${src.name}: not a registry or an OCI layout`);
    },
    close() {
      for (const s of open.values()) s.close();
      open.clear();
    },
  };
}

/** Make an old blob layer available in `dst` without uploading it where that can be avoided. */
async function reuseLayer(src: ImageStore, dst: ImageStore, desc: Descriptor, o: OptimizeImageOptions, r: OptimizeImageResult, work: string): Promise<void> {
  const s = src.location;
  const d = dst.location;
  const sameRegistry = s?.kind === 'registry' && d?.kind === 'registry' && s.apiHost === d.apiHost;
  if ((sameRegistry && s.repo === d.repo) || (s?.kind === 'oci' && d?.kind === 'oci' && s.dir === d.dir)) {
    r.reused.kept++;
    o.onProgress?.({ kind: 'kept', detail: desc.digest });
    return;
  }
  if (sameRegistry && (await d.client.mountBlob(d.repo, desc.digest, s.repo))) {
    r.reused.mounted++;
    o.onProgress?.({ kind: 'mounted', detail: `${desc.digest} from ${s.repo}` });
    return;
  }
  if (await dst.hasBlob(desc.digest)) {
    r.reused.existing++;
    o.onProgress?.({ kind: 'exists', detail: desc.digest });
    return;
  }
  // Another store, or a registry that refused the mount: the only way left is a copy.
  if (d?.kind === 'registry') {
    await d.client.pushBlob(d.repo, desc.digest, desc.size, () => src.blobStream(desc));
  } else {
    const tmp = join(work, `copy-${desc.digest.replace(/^sha256:/, '')}`);
    const out = createWriteStream(tmp);
    try {
      try {
        for await (const c of src.blobStream(desc)) if (!out.write(Buffer.from(c))) await once(out, 'drain');
      } finally {
        out.end();
        await once(out, 'close');
      }
      await dst.putBlobFile(desc.digest, desc.size, tmp);
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  r.reused.copied++;
  o.onProgress?.({ kind: 'copied', detail: desc.digest, bytes: desc.size });
}

/** Optimize the Nydus image `srcRef` of `src` into `dstRef` of `dst`. */
export async function optimizeImage(src: ImageStore, srcRef: string, dst: ImageStore, dstRef: string, o: OptimizeImageOptions): Promise<OptimizeImageResult> {
  const m = await resolveManifest(src, srcRef, { platform: o.platform ?? { os: 'linux', architecture: 'amd64' }, nydus: true });
  const bootDesc = bootstrapLayerOf(m.manifest, `${src.name}:${srcRef}`);
  const config = await readConfig(src, m.manifest);
  const n = m.manifest.layers.length;
  if ((config.rootfs?.diff_ids?.length ?? 0) !== n) throw new FormatError('ERR_BAD_IMAGE', `Cannot optimize ${src.name}:${srcRef}: the config lists ${config.rootfs?.diff_ids?.length ?? 0} diff_ids for ${n} layers`);
  const oldLayers = m.manifest.layers.slice(0, n - 1);
  const byId = new Map(oldLayers.map((l) => [l.digest.replace(/^sha256:/, ''), l]));

  const work = workSubdir(o.workDir, `optimize-${m.digest.replace(/^sha256:/, '').slice(0, 16)}-${process.pid}`);
  try {
    const boot = join(work, 'image.boot');
    await fetchBootstrap(src, bootDesc, boot);
    o.onProgress?.({ kind: 'bootstrap', detail: bootDesc.digest, bytes: statSync(boot).size });
    const reader = layerReader(src, byId);
    const blobDir = join(work, 'blobs');
    mkdirSync(blobDir, { recursive: true });
    const optimized = join(work, 'optimized.boot');
    let built;
    try {
      built = await optimize({ bootstrap: boot, outputBootstrap: optimized, outputBlobDir: blobDir, prefetch: o.prefetch, readBlob: reader.read, ...(o.onWarn ? { onWarn: o.onWarn } : {}) });
    } finally {
      reader.close();
    }
    o.onProgress?.({ kind: 'built', detail: `${built.blobId ? `blob sha256:${built.blobId}, ` : ''}${built.chunks} chunks, ${built.bytesRead} bytes in ${built.reads} reads`, bytes: built.blobSize });

    const r: OptimizeImageResult = {
      digest: '', bootstrapDigest: '', reused: { kept: 0, mounted: 0, existing: 0, copied: 0 },
      prefetch: built.prefetch, missing: built.missing, bytesRead: built.bytesRead, reads: built.reads,
    };
    for (const l of oldLayers) await reuseLayer(src, dst, l, o, r, work);
    const layers: Descriptor[] = [...oldLayers];
    const diffIds = config.rootfs.diff_ids.slice(0, n - 1);
    const history = [...(config.history ?? [])];
    // A blob equal to an old layer (the image was optimized with this list before) is that layer.
    if (built.blobId && built.blobPath && !byId.has(built.blobId)) {
      const digest = `sha256:${built.blobId}`;
      await dst.putBlobFile(digest, built.blobSize, built.blobPath);
      o.onProgress?.({ kind: 'pushed', detail: digest, bytes: built.blobSize });
      layers.push({ mediaType: MEDIA_NYDUS_BLOB, digest, size: built.blobSize, annotations: { [ANNOTATION_NYDUS_BLOB]: 'true' } });
      diffIds.push(digest);
      // History entries follow the layers: the new blob's goes before the bootstrap layer's.
      history.splice(Math.max(0, history.length - 1), 0, { created_by: 'nydusify optimize', comment: 'Nydus prefetch blob' });
      r.blobDigest = digest;
    }
    const bl = packBootstrapLayer(optimized, join(work, 'bootstrap.tar'), join(work, 'bootstrap.tar.gz'));
    await dst.putBlobFile(bl.digest, bl.size, bl.path);
    o.onProgress?.({ kind: 'pushed', detail: bl.digest, bytes: bl.size });
    r.bootstrapDigest = bl.digest;
    layers.push({ mediaType: MEDIA_OCI_LAYER_GZIP, digest: bl.digest, size: bl.size, annotations: { [ANNOTATION_NYDUS_BOOTSTRAP]: 'true', [ANNOTATION_NYDUS_FS_VERSION]: '6' } });
    diffIds.push(bl.diffId);

    const newConfig: ImageConfig = { ...config, rootfs: { type: 'layers', diff_ids: diffIds }, ...(config.history ? { history } : {}) };
    const cfgData = new Uint8Array(Buffer.from(JSON.stringify(newConfig)));
    const cfgDigest = sha256(cfgData);
    await dst.putBlob(cfgDigest, cfgData);
    const { subject: _subject, ...rest } = m.manifest as Manifest & { subject?: unknown };
    const out: Manifest = { ...rest, config: { ...m.manifest.config, digest: cfgDigest, size: cfgData.length }, layers };
    const data = new Uint8Array(Buffer.from(JSON.stringify(out)));
    r.digest = await dst.putManifest(dstRef, m.mediaType || MEDIA_OCI_MANIFEST, data);
    o.onProgress?.({ kind: 'done', detail: r.digest });
    return r;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
