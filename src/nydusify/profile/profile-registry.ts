/**
 * Prefetch profiles of a Nydus image in a registry: push, list (newest first), remove, and load
 * the newest valid one. Discovery goes through the referrers API or its tag schema fallback
 * (referrers-index.ts). Whatever is read is checked (profile-format.ts); a profile that fails a
 * check is skipped with a warning naming its digest, so a bad profile never stops a pull.
 * @module
 */
import { hasCode, NydusError, UsageError } from '../../util/errors.js';
import { nullLogger, type Logger } from '../../util/logger.js';
import { sha256Hex } from '../../util/digest.js';
import type { RegistryClient } from '../../registry/registry-client.js';
import type { OpenedRef } from '../open-image-ref.js';
import { bootstrapLayerOf, resolveManifest } from '../image-parts.js';
import { MEDIA_OCI_MANIFEST, type Descriptor } from '../oci-types.js';
import type { PlatformSpec } from '../platform.js';
import {
  ARTIFACT_PREFETCH_PROFILE, EMPTY_CONFIG, EMPTY_CONFIG_BYTES, PROFILE_LIMITS, asDescriptor, createdTime,
  decodePrefetchList, decodeProfileManifest, encodePrefetchList, encodeProfileManifest, ANNOTATION_CREATED,
} from './profile-format.js';
import { listReferrers, readFallbackIndex, referrerEntry, writeFallbackIndex, type ReferrersSource } from './referrers-index.js';

/** The image a profile is for: a Nydus manifest in one repository. */
export interface ProfileTarget {
  client: RegistryClient;
  repo: string;
  /** Descriptor of the Nydus image manifest (the profiles' subject). */
  subject: Descriptor;
}

/** One profile as listed. */
export interface ProfileInfo {
  digest: string;
  size: number;
  /** `org.opencontainers.image.created` of the listing entry, when present. */
  created: string | undefined;
}

/** A loaded, checked profile. */
export interface LoadedProfile extends ProfileInfo {
  paths: string[];
}

/** Per-call options. */
export interface ProfileCallOptions {
  signal?: AbortSignal;
  /** Receives the warnings about skipped profiles and entries. */
  logger?: Logger;
}

/**
 * The profile target of an opened image reference: the Nydus manifest it names (for an index,
 * the Nydus manifest of `platform`). UsageError for an OCI layout; FormatError ERR_NOT_NYDUS
 * when the manifest is not a Nydus image.
 */
export async function openProfileTarget(opened: OpenedRef, platform: PlatformSpec): Promise<ProfileTarget> {
  const loc = opened.store.location;
  if (loc?.kind !== 'registry') throw new UsageError('ERR_USAGE', `Cannot use prefetch profiles with ${opened.store.name}: profiles live in registries, not OCI layouts`);
  const m = await resolveManifest(opened.store, opened.reference, { platform, nydus: true });
  bootstrapLayerOf(m.manifest, `${opened.store.name}@${m.digest}`);
  return profileTargetOf(loc.client, loc.repo, m.mediaType, m.digest, m.data.length);
}

/** A profile target from what is known of the manifest. */
export function profileTargetOf(client: RegistryClient, repo: string, mediaType: string, digest: string, size: number): ProfileTarget {
  return { client, repo, subject: { mediaType: mediaType || MEDIA_OCI_MANIFEST, digest, size } };
}

/**
 * Publish `paths` as a profile of the target: the list blob and the empty config are uploaded,
 * the manifest put by digest, and (unless the registry indexed the subject itself, `OCI-Subject`)
 * the fallback index updated. Returns the profile's digest and how it is found.
 */
export async function pushProfile(t: ProfileTarget, paths: readonly string[], o: ProfileCallOptions & { created?: Date } = {}): Promise<{ digest: string; via: ReferrersSource }> {
  if (paths.length === 0) throw new UsageError('ERR_USAGE', 'Cannot push a prefetch profile: the list names no paths');
  const opts = o.signal ? { signal: o.signal } : {};
  const list = encodePrefetchList(paths);
  if (list.length > PROFILE_LIMITS.listBytes) throw new UsageError('ERR_USAGE', `Cannot push a prefetch profile: the list has ${list.length} bytes, more than ${PROFILE_LIMITS.listBytes}`);
  const listDigest = `sha256:${sha256Hex(list)}`;
  await t.client.pushBlob(t.repo, EMPTY_CONFIG.digest, EMPTY_CONFIG.size, EMPTY_CONFIG_BYTES, opts);
  await t.client.pushBlob(t.repo, listDigest, list.length, list, opts);
  const manifest = encodeProfileManifest(t.subject, { digest: listDigest, size: list.length }, o.created ?? new Date());
  const digest = `sha256:${sha256Hex(manifest)}`;
  const put = await t.client.putManifestWithSubject(t.repo, digest, MEDIA_OCI_MANIFEST, manifest, opts);
  if (put.ociSubject === t.subject.digest) return { digest, via: 'referrers-api' };
  const idx = await readFallbackIndex(t.client, t.repo, t.subject.digest, o.signal);
  if (idx.invalid !== undefined) {
    throw new NydusError('ERR_BAD_REFERRERS_INDEX', `Cannot list prefetch profile ${digest} for ${t.subject.digest}: ${idx.invalid}; it was pushed but is not found until that tag holds an index`);
  }
  const annotations = (JSON.parse(Buffer.from(manifest).toString('utf8')) as { annotations: Record<string, string> }).annotations;
  const kept = idx.manifests.filter((e) => (e as { digest?: unknown } | null)?.digest !== digest);
  await writeFallbackIndex(t.client, t.repo, idx, [...kept, referrerEntry(digest, manifest.length, ARTIFACT_PREFETCH_PROFILE, annotations)], o.signal);
  return { digest, via: 'tag-schema' };
}

/** The profiles of the target, newest first (by `org.opencontainers.image.created`; later entries first among equals). */
export async function listProfiles(t: ProfileTarget, o: ProfileCallOptions = {}): Promise<{ via: ReferrersSource; profiles: ProfileInfo[] }> {
  const log = o.logger ?? nullLogger;
  const r = await listReferrers(t.client, t.repo, t.subject.digest, ARTIFACT_PREFETCH_PROFILE, o.signal);
  if (r.invalid !== undefined) log.warn(`prefetch profiles: ${r.invalid}; no profiles found for ${t.subject.digest}`, { subject: t.subject.digest });
  const found: Array<ProfileInfo & { at: number; pos: number }> = [];
  const seen = new Set<string>();
  for (const [pos, e] of r.manifests.entries()) {
    const d = asDescriptor(e);
    if (!d || d.mediaType !== MEDIA_OCI_MANIFEST) {
      log.warn(`prefetch profiles: skipping a referrer entry of ${t.subject.digest} that is not a manifest descriptor`, { entry: JSON.stringify(e).slice(0, 200) });
      continue;
    }
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    const created = d.annotations?.[ANNOTATION_CREATED];
    found.push({ digest: d.digest, size: d.size, created, at: createdTime(created), pos });
  }
  found.sort((a, b) => (b.at - a.at) || (b.pos - a.pos));
  return { via: r.via, profiles: found.map(({ digest, size, created }) => ({ digest, size, created })) };
}

/** Load and check one profile (its manifest and list). FormatError ERR_BAD_PROFILE or a RegistryError when it cannot be used. */
export async function loadProfile(t: ProfileTarget, p: Pick<ProfileInfo, 'digest'>, o: ProfileCallOptions = {}): Promise<LoadedProfile> {
  const opts = o.signal ? { signal: o.signal } : {};
  const got = await t.client.getManifest(t.repo, p.digest, [MEDIA_OCI_MANIFEST], opts);
  const m = decodeProfileManifest(got.data, p.digest, t.subject.digest);
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of t.client.blobStream(t.repo, m.list.digest, opts)) {
    n += c.length;
    if (n > m.list.size || n > PROFILE_LIMITS.listBytes) {
      throw new NydusError('ERR_BAD_PROFILE', `Cannot use prefetch profile ${p.digest}: its list blob ${m.list.digest} is larger than the ${m.list.size} bytes its descriptor says`);
    }
    parts.push(c);
  }
  if (n !== m.list.size) throw new NydusError('ERR_BAD_PROFILE', `Cannot use prefetch profile ${p.digest}: its list blob has ${n} bytes, its descriptor says ${m.list.size}`);
  const data = Buffer.concat(parts);
  const got256 = `sha256:${sha256Hex(data)}`;
  if (got256 !== m.list.digest) throw new NydusError('ERR_BAD_PROFILE', `Cannot use prefetch profile ${p.digest}: its list blob has digest ${got256}, its descriptor says ${m.list.digest}`);
  const paths = decodePrefetchList(data, `prefetch profile ${p.digest}`);
  return { digest: p.digest, size: got.data.length, created: m.created, paths };
}

/**
 * The newest profile of the target that passes every check, or undefined when there is none.
 * Profiles that fail (bad manifest, wrong subject, bad or oversized list, gone) are skipped with
 * a warning naming the digest; only an abort (`signal`) is thrown.
 */
export async function newestProfile(t: ProfileTarget, o: ProfileCallOptions = {}): Promise<LoadedProfile | undefined> {
  const log = o.logger ?? nullLogger;
  const { profiles } = await listProfiles(t, o);
  for (const p of profiles) {
    try {
      const loaded = await loadProfile(t, p, o);
      if (loaded.paths.length === 0) {
        log.warn(`prefetch profile ${p.digest} lists no paths; skipping it`, { profile: p.digest });
        continue;
      }
      return loaded;
    } catch (e) {
      if (o.signal?.aborted || hasCode(e, 'ERR_ABORTED')) throw e;
      log.warn(`skipping prefetch profile ${p.digest}: ${(e as Error).message}`, { profile: p.digest, subject: t.subject.digest });
    }
  }
  return undefined;
}

/** What removeProfiles did. */
export interface RemoveResult {
  /** Profiles no longer listed. */
  removed: string[];
  /** Of those, the manifests the registry deleted. */
  deleted: string[];
  /** Manifests the registry refused to delete (deletes disabled). */
  undeletable: string[];
}

/**
 * Remove one profile (`digest`) or all of them: drop them from the fallback index (when there is
 * one; other referrers stay), then delete their manifests where the registry allows. UsageError
 * ERR_NO_PROFILE when `digest` is not a profile of the target.
 */
export async function removeProfiles(t: ProfileTarget, which: { digest: string } | { all: true }, o: ProfileCallOptions = {}): Promise<RemoveResult> {
  const opts = o.signal ? { signal: o.signal } : {};
  const api = await t.client.getReferrers(t.repo, t.subject.digest, ARTIFACT_PREFETCH_PROFILE, opts);
  const idx = await readFallbackIndex(t.client, t.repo, t.subject.digest, o.signal);
  const profileDigests = (list: readonly unknown[]): string[] => list.flatMap((e) => {
    const x = e as { digest?: unknown; artifactType?: unknown } | null;
    return x !== null && typeof x === 'object' && typeof x.digest === 'string' && x.artifactType === ARTIFACT_PREFETCH_PROFILE ? [x.digest] : [];
  });
  const known = new Set([...profileDigests(api?.manifests ?? []), ...profileDigests(idx.manifests)]);
  const targets = 'digest' in which ? [which.digest] : [...known];
  if ('digest' in which && !known.has(which.digest)) {
    throw new UsageError('ERR_NO_PROFILE', `Cannot remove prefetch profile ${which.digest}: it is not a profile of ${t.subject.digest}`);
  }
  const drop = new Set(targets);
  if (idx.exists && idx.invalid === undefined) {
    const kept = idx.manifests.filter((e) => !drop.has(String((e as { digest?: unknown } | null)?.digest)));
    if (kept.length !== idx.manifests.length) await writeFallbackIndex(t.client, t.repo, idx, kept, o.signal);
  }
  const result: RemoveResult = { removed: targets, deleted: [], undeletable: [] };
  for (const d of targets) {
    const r = await t.client.deleteManifest(t.repo, d, opts);
    if (r === 'deleted') result.deleted.push(d);
    else if (r === 'unsupported') result.undeletable.push(d);
  }
  return result;
}
