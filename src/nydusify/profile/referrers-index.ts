/**
 * The referrers of a manifest in a registry: through the referrers API where the registry has
 * it, else through the OCI 1.1 tag schema fallback, an image index tagged `sha256-<hex>` that
 * the clients pushing and deleting referrers keep up to date (docker-registry 2.8 has no
 * referrers API). The fallback index is read-modified-written: entries of other referrers are
 * kept as they are. Two clients updating it at the same moment can lose one update (the tag
 * schema has no locking; docker-registry has no conditional PUT).
 * @module
 */
import { hasCode } from '../../util/errors.js';
import type { RegistryClient } from '../../registry/registry-client.js';
import { MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, type Descriptor } from '../oci-types.js';
import { referrersTag } from './profile-format.js';

/** The fallback index of a subject as found in the registry. */
export interface FallbackIndex {
  /** `sha256-<hex>` of the subject. */
  tag: string;
  /** Whether the tag exists. */
  exists: boolean;
  /** Digest of the index, when the tag exists. */
  digest: string | undefined;
  /** Why the tag's content is not a usable index (then `manifests` is empty and it must not be overwritten). */
  invalid: string | undefined;
  /** The index's entries, as stored. */
  manifests: unknown[];
}

/** Where referrers were listed from. */
export type ReferrersSource = 'referrers-api' | 'tag-schema';

/** Read the fallback index of `subjectDigest` (a missing tag is an empty index). */
export async function readFallbackIndex(client: RegistryClient, repo: string, subjectDigest: string, signal?: AbortSignal): Promise<FallbackIndex> {
  const tag = referrersTag(subjectDigest);
  let got;
  try {
    got = await client.getManifest(repo, tag, [MEDIA_OCI_INDEX], signal ? { signal } : {});
  } catch (e) {
    if (hasCode(e, 'ERR_REGISTRY_NOT_FOUND')) return { tag, exists: false, digest: undefined, invalid: undefined, manifests: [] };
    throw e;
  }
  const invalid = (why: string): FallbackIndex => ({ tag, exists: true, digest: got.digest, invalid: why, manifests: [] });
  let j: unknown;
  try {
    j = JSON.parse(Buffer.from(got.data).toString('utf8'));
  } catch {
    return invalid(`tag ${tag} does not hold JSON`);
  }
  if (typeof j !== 'object' || j === null || !Array.isArray((j as { manifests?: unknown }).manifests)) return invalid(`tag ${tag} does not hold an image index`);
  const mt = (j as { mediaType?: unknown }).mediaType ?? got.mediaType;
  if (mt !== MEDIA_OCI_INDEX) return invalid(`tag ${tag} holds ${String(mt)}, not an OCI image index`);
  return { tag, exists: true, digest: got.digest, invalid: undefined, manifests: (j as { manifests: unknown[] }).manifests };
}

/**
 * Store `manifests` as the fallback index of `subjectDigest`. An empty list removes the index
 * instead (deleted by digest, which also drops its tag) where the registry allows deletes.
 */
export async function writeFallbackIndex(client: RegistryClient, repo: string, index: FallbackIndex, manifests: readonly unknown[], signal?: AbortSignal): Promise<void> {
  const opts = signal ? { signal } : {};
  if (manifests.length === 0 && index.digest !== undefined) {
    if ((await client.deleteManifest(repo, index.digest, opts)) !== 'unsupported') return;
  }
  if (manifests.length === 0 && !index.exists) return;
  const data = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_OCI_INDEX, manifests }));
  await client.putManifest(repo, index.tag, MEDIA_OCI_INDEX, data, opts);
}

/** The entry of the fallback index for a referrer manifest (artifactType and annotations copied, as the spec asks). */
export function referrerEntry(digest: string, size: number, artifactType: string, annotations: Record<string, string>): Descriptor {
  return { mediaType: MEDIA_OCI_MANIFEST, digest, size, artifactType, annotations };
}

/**
 * The referrers of `subjectDigest` (entries as the registry gave them, unchecked) with
 * `artifactType`: from the referrers API, or where the registry has none (404), from the
 * fallback index. `invalid` reports a fallback tag that holds no index (then no referrers).
 */
export async function listReferrers(client: RegistryClient, repo: string, subjectDigest: string, artifactType: string, signal?: AbortSignal): Promise<{ via: ReferrersSource; manifests: unknown[]; invalid: string | undefined }> {
  const api = await client.getReferrers(repo, subjectDigest, artifactType, signal ? { signal } : {});
  const ofType = (e: unknown): boolean => typeof e === 'object' && e !== null && (e as { artifactType?: unknown }).artifactType === artifactType;
  if (api) return { via: 'referrers-api', manifests: api.manifests.filter(ofType), invalid: undefined };
  const idx = await readFallbackIndex(client, repo, subjectDigest, signal);
  return { via: 'tag-schema', manifests: idx.manifests.filter(ofType), invalid: idx.invalid };
}
