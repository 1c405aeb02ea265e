/**
 * `nydusify copy`: copy an image (a manifest or an index with its manifests: config, every blob
 * layer, the bootstrap layer) between stores. Blobs the target has are skipped; between two
 * repositories of one registry they are mounted across repositories, else streamed; each
 * manifest is written after its blobs, the top manifest last.
 * @module
 */
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import type { ImageStore } from './image-store.js';
import { isIndexMediaType, type Descriptor, type ImageIndex, type Manifest } from './oci-types.js';

/** Options of a copy. */
export interface CopyOptions {
  /** Scratch space for blobs written to a local store. */
  workDir: string;
  onProgress?: (event: { kind: 'mounted' | 'copied' | 'exists' | 'manifest'; detail: string; bytes?: number }) => void;
}

/** What a copy did. */
export interface CopyResult {
  digest: string;
  mediaType: string;
  blobs: { mounted: number; copied: number; existing: number; bytes: number };
}

async function copyBlob(src: ImageStore, dst: ImageStore, desc: Descriptor, o: CopyOptions, r: CopyResult): Promise<void> {
  if (await dst.hasBlob(desc.digest)) {
    r.blobs.existing++;
    o.onProgress?.({ kind: 'exists', detail: desc.digest });
    return;
  }
  const s = src.location;
  const d = dst.location;
  if (s?.kind === 'registry' && d?.kind === 'registry' && s.apiHost === d.apiHost && s.repo !== d.repo) {
    if (await d.client.mountBlob(d.repo, desc.digest, s.repo)) {
      r.blobs.mounted++;
      o.onProgress?.({ kind: 'mounted', detail: `${desc.digest} from ${s.repo}` });
      return;
    }
  }
  if (d?.kind === 'registry') {
    await d.client.pushBlob(d.repo, desc.digest, desc.size, () => src.blobStream(desc));
  } else {
    const dir = join(o.workDir, 'copy');
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, desc.digest.replace(/^sha256:/, ''));
    const out = createWriteStream(tmp);
    try {
      for await (const c of src.blobStream(desc)) {
        if (!out.write(Buffer.from(c))) await once(out, 'drain');
      }
    } finally {
      out.end();
      await once(out, 'close');
    }
    try {
      await dst.putBlobFile(desc.digest, desc.size, tmp);
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  r.blobs.copied++;
  r.blobs.bytes += desc.size;
  o.onProgress?.({ kind: 'copied', detail: desc.digest, bytes: desc.size });
}

async function copyManifest(src: ImageStore, dst: ImageStore, manifest: Manifest, o: CopyOptions, r: CopyResult): Promise<void> {
  for (const l of manifest.layers) await copyBlob(src, dst, l, o, r);
  await copyBlob(src, dst, manifest.config, o, r);
}

/** Copy `srcRef` of `src` to `dstRef` of `dst`. */
export async function copyImage(src: ImageStore, srcRef: string, dst: ImageStore, dstRef: string, o: CopyOptions): Promise<CopyResult> {
  const top = await src.getManifest(srcRef);
  const parsed = JSON.parse(Buffer.from(top.data).toString('utf8')) as Manifest | ImageIndex;
  const mediaType = top.mediaType || parsed.mediaType || '';
  const r: CopyResult = { digest: '', mediaType, blobs: { mounted: 0, copied: 0, existing: 0, bytes: 0 } };
  if (isIndexMediaType(mediaType) || 'manifests' in parsed) {
    for (const d of (parsed as ImageIndex).manifests) {
      const m = await src.getManifest(d.digest);
      await copyManifest(src, dst, JSON.parse(Buffer.from(m.data).toString('utf8')) as Manifest, o, r);
      await dst.putManifest(m.digest, m.mediaType || d.mediaType, m.data);
      o.onProgress?.({ kind: 'manifest', detail: m.digest });
    }
  } else {
    await copyManifest(src, dst, parsed as Manifest, o, r);
  }
  // The same bytes, so the digest stays the same.
  r.digest = await dst.putManifest(dstRef, mediaType, top.data);
  o.onProgress?.({ kind: 'manifest', detail: `${dstRef} ${r.digest}` });
  return r;
}
