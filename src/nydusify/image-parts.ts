/**
 * Reading the parts of an image from a store: the manifest a reference names (choosing the
 * platform's entry of an index, Nydus or OCI), its config, and a Nydus image's bootstrap
 * (`image/image.boot` of the last layer).
 * @module
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { FormatError, UsageError } from '../util/errors.js';
import { TempFiles } from '../util/atomic-file.js';
import { openLayer } from '../tar/open-layer.js';
import { parseTar } from '../tar/parse-tar.js';
import type { ImageStore } from './image-store.js';
import {
  ANNOTATION_NYDUS_BOOTSTRAP, ARTIFACT_NYDUS_MANIFEST, isIndexMediaType,
  type Descriptor, type ImageConfig, type ImageIndex, type Manifest,
} from './oci-types.js';
import { formatPlatform, platformMatches, type PlatformSpec } from './platform.js';

/** One image manifest, resolved. */
export interface ResolvedManifest {
  manifest: Manifest;
  digest: string;
  mediaType: string;
  data: Uint8Array;
}

/** True when an index entry is a Nydus manifest (artifactType, or the pre-2.3.5 os.features marker). */
export function isNydusEntry(d: Descriptor): boolean {
  return d.artifactType === ARTIFACT_NYDUS_MANIFEST || (d.platform?.['os.features'] ?? []).includes('nydus.remoteimage.v1');
}

/** Read all of a stream. */
export async function collectStream(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * The image manifest `reference` names in `store`; for an index, the entry of `platform`
 * (preferring a Nydus entry when `nydus` is true, an OCI one when false).
 */
export async function resolveManifest(store: ImageStore, reference: string, o: { platform: PlatformSpec; nydus: boolean }): Promise<ResolvedManifest> {
  const top = await store.getManifest(reference);
  const parsed = JSON.parse(Buffer.from(top.data).toString('utf8')) as Manifest | ImageIndex;
  const mediaType = top.mediaType || parsed.mediaType || '';
  if (!isIndexMediaType(mediaType) && !('manifests' in parsed)) {
    return { manifest: parsed as Manifest, digest: top.digest, mediaType, data: top.data };
  }
  const all = (parsed as ImageIndex).manifests;
  // Entries without a platform count only in an index that names no platform at all.
  const matching = all.filter((m) => platformMatches(m.platform, o.platform));
  const entries = matching.length === 0 && all.every((m) => m.platform === undefined) ? all : matching;
  const chosen = entries.find((m) => isNydusEntry(m) === o.nydus) ?? entries[0];
  if (!chosen) throw new UsageError('ERR_NO_PLATFORM', `Cannot resolve ${store.name}:${reference}: the index has no manifest for ${formatPlatform(o.platform)} (it has ${all.map((m) => formatPlatform(m.platform)).join(', ')})`);
  const m = await store.getManifest(chosen.digest);
  return { manifest: JSON.parse(Buffer.from(m.data).toString('utf8')) as Manifest, digest: m.digest, mediaType: m.mediaType, data: m.data };
}

/** The image config of `manifest`. */
export async function readConfig(store: ImageStore, manifest: Manifest): Promise<ImageConfig> {
  const data = await collectStream(store.blobStream(manifest.config));
  return JSON.parse(Buffer.from(data).toString('utf8')) as ImageConfig;
}

/** The bootstrap layer of a Nydus manifest (the last layer, annotated nydus-bootstrap). */
export function bootstrapLayerOf(manifest: Manifest, what: string): Descriptor {
  const last = manifest.layers[manifest.layers.length - 1];
  if (!last || last.annotations?.[ANNOTATION_NYDUS_BOOTSTRAP] !== 'true') {
    throw new FormatError('ERR_NOT_NYDUS', `Cannot use ${what}: its last layer is not a Nydus bootstrap layer (no ${ANNOTATION_NYDUS_BOOTSTRAP} annotation)`);
  }
  return last;
}

/**
 * Stream the bootstrap layer `desc` and write its `image/image.boot` to `outPath` (under a
 * temporary name until it is complete: a failed download leaves nothing at `outPath`).
 */
export async function fetchBootstrap(store: ImageStore, desc: Descriptor, outPath: string): Promise<void> {
  for await (const e of parseTar(openLayer(store.blobStream(desc)))) {
    if (e.path !== 'image/image.boot' || e.type !== 'file') continue;
    const temps = new TempFiles();
    const tmp = temps.for(outPath);
    try {
      const out = createWriteStream(tmp);
      try {
        for await (const seg of e.body()) {
          if (!out.write(Buffer.from(seg.data))) await once(out, 'drain');
        }
      } finally {
        out.end();
        await once(out, 'close');
      }
      temps.commit(tmp, outPath);
    } finally {
      temps.cleanup();
    }
    return;
  }
  throw new FormatError('ERR_NO_BOOTSTRAP', `Cannot find the bootstrap: layer ${desc.digest} of ${store.name} has no image/image.boot`);
}
