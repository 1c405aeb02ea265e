/**
 * The prefetch profile artifact: an OCI 1.1 image manifest that refers to a Nydus image manifest
 * through `subject`, so that a start-up list can be published (and replaced) for an image
 * without touching the image.
 *
 * ```json
 * {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
 *  "artifactType": "application/vnd.nydus.prefetch-profile.v1",
 *  "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:44136f…", "size": 2, "data": "e30="},
 *  "layers": [{"mediaType": "text/plain", "digest": "sha256:…", "size": 1234,
 *              "annotations": {"org.opencontainers.image.title": "prefetch-files.txt"}}],
 *  "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:…", "size": 1234},
 *  "annotations": {"org.opencontainers.image.created": "2025-01-01T00:00:00.000Z"}}
 * ```
 *
 * The one layer is the list: UTF-8 text, one absolute path a line, in access order. Everything
 * read from a registry is checked here before it is used (sizes, shapes, the subject, the list).
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { parsePrefetchList as parseList } from '../../builder/prefetch-list.js';
import { sha256Hex } from '../../util/digest.js';
import { MEDIA_OCI_MANIFEST, type Descriptor } from '../oci-types.js';

/** `artifactType` of a prefetch profile. */
export const ARTIFACT_PREFETCH_PROFILE = 'application/vnd.nydus.prefetch-profile.v1';
/** Media type of the list layer. */
export const MEDIA_PREFETCH_LIST = 'text/plain';
/** OCI 1.1's empty descriptor media type (content `{}`). */
export const MEDIA_OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
/** The bytes of the empty config, `{}`. */
export const EMPTY_CONFIG_BYTES: Uint8Array = new TextEncoder().encode('{}');
/** The empty config descriptor (with its content inline, as OCI 1.1 suggests). */
export const EMPTY_CONFIG: Descriptor & { data: string } = {
  mediaType: MEDIA_OCI_EMPTY, digest: `sha256:${sha256Hex(EMPTY_CONFIG_BYTES)}`, size: EMPTY_CONFIG_BYTES.length, data: 'e30=',
};
/** Annotation with the creation time (RFC 3339), by which the newest profile is chosen. */
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';
/** File name tools such as oras give the list layer. */
export const ANNOTATION_TITLE = 'org.opencontainers.image.title';

/** Limits on what is read (a profile beyond them is skipped). */
export const PROFILE_LIMITS = {
  /** Largest list blob (1 MiB). */
  listBytes: 1 << 20,
  /** Most paths in a list. */
  paths: 100_000,
  /** Longest path. */
  pathLength: 4096,
  /** Largest profile manifest. */
  manifestBytes: 64 << 10,
} as const;

/**
 * The referrers tag of `digest` (OCI distribution-spec 1.1, "Referrers Tag Schema"): the
 * algorithm cut to 32 characters, `-`, the encoded part cut to 64, characters a tag cannot hold
 * replaced by `-` (`sha256:ab…` → `sha256-ab…`).
 */
export function referrersTag(digest: string): string {
  const colon = digest.indexOf(':');
  if (colon <= 0) throw new TypeError(`Cannot make the referrers tag of ${JSON.stringify(digest)}: it is not algorithm:encoded`);
  const tag = `${digest.slice(0, colon).slice(0, 32)}-${digest.slice(colon + 1).slice(0, 64)}`;
  return tag.replace(/[^A-Za-z0-9_.-]/g, '-');
}

/**
 * Parse a prefetch list as builder/prefetch-list.ts does (one absolute path a line, blank lines
 * ignored, later repeats dropped), within the profile limits; a bad line is ERR_BAD_PROFILE naming
 * `what` and the line.
 */
export function parsePrefetchList(text: string, what: string): string[] {
  return parseList(text, what, {
    maxPaths: PROFILE_LIMITS.paths, maxPathLength: PROFILE_LIMITS.pathLength,
    error: (message) => new FormatError('ERR_BAD_PROFILE', message),
  });
}

/** The paths of a list blob: at most 1 MiB of UTF-8 text (see parsePrefetchList). */
export function decodePrefetchList(data: Uint8Array, what: string): string[] {
  if (data.length > PROFILE_LIMITS.listBytes) throw new FormatError('ERR_BAD_PROFILE', `Cannot use ${what}: the list has ${data.length} bytes, more than ${PROFILE_LIMITS.listBytes}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw new FormatError('ERR_BAD_PROFILE', `Cannot use ${what}: the list is not UTF-8 text`);
  }
  return parsePrefetchList(text, what);
}

/** The list blob of `paths`. */
export function encodePrefetchList(paths: readonly string[]): Uint8Array {
  return new TextEncoder().encode(paths.length === 0 ? '' : `${paths.join('\n')}\n`);
}

/** What a profile manifest says. */
export interface ProfileManifest {
  /** The list layer. */
  list: Descriptor;
  /** The subject descriptor. */
  subject: Descriptor;
  /** `org.opencontainers.image.created`, when present. */
  created: string | undefined;
  annotations: Record<string, string>;
}

/** The manifest of a profile for `subject`, listing `list`, created at `created`. */
export function encodeProfileManifest(subject: Descriptor, list: Pick<Descriptor, 'digest' | 'size'>, created: Date): Uint8Array {
  const m = {
    schemaVersion: 2,
    mediaType: MEDIA_OCI_MANIFEST,
    artifactType: ARTIFACT_PREFETCH_PROFILE,
    config: EMPTY_CONFIG,
    layers: [{ mediaType: MEDIA_PREFETCH_LIST, digest: list.digest, size: list.size, annotations: { [ANNOTATION_TITLE]: 'prefetch-files.txt' } }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { [ANNOTATION_CREATED]: created.toISOString() },
  };
  return new TextEncoder().encode(JSON.stringify(m));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True for a `sha256:<64 hex>` digest. */
function isDigest(v: unknown): v is string {
  return typeof v === 'string' && /^sha256:[0-9a-f]{64}$/.test(v);
}

/** A descriptor read from JSON, or undefined when it is not one. */
export function asDescriptor(v: unknown): Descriptor | undefined {
  if (!isObject(v) || typeof v.mediaType !== 'string' || !isDigest(v.digest) || typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) return undefined;
  const annotations = isObject(v.annotations) && Object.values(v.annotations).every((x) => typeof x === 'string') ? v.annotations as Record<string, string> : undefined;
  return {
    mediaType: v.mediaType, digest: v.digest, size: v.size,
    ...(typeof v.artifactType === 'string' ? { artifactType: v.artifactType } : {}),
    ...(annotations ? { annotations } : {}),
  };
}

/**
 * Check and decode the manifest of profile `digest` (its bytes, already verified against the
 * digest): an OCI manifest of our artifactType, one list layer within the limits, and a
 * `subject` that is `subjectDigest`. FormatError ERR_BAD_PROFILE naming what is wrong.
 */
export function decodeProfileManifest(data: Uint8Array, digest: string, subjectDigest: string): ProfileManifest {
  const bad = (why: string): FormatError => new FormatError('ERR_BAD_PROFILE', `Cannot use prefetch profile ${digest}: ${why}`);
  if (data.length > PROFILE_LIMITS.manifestBytes) throw bad(`the manifest has ${data.length} bytes, more than ${PROFILE_LIMITS.manifestBytes}`);
  let j: unknown;
  try {
    j = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    throw bad('the manifest is not JSON');
  }
  if (!isObject(j)) throw bad('the manifest is not a JSON object');
  if (j.schemaVersion !== 2) throw bad(`schemaVersion is ${JSON.stringify(j.schemaVersion)}, not 2`);
  if (j.mediaType !== undefined && j.mediaType !== MEDIA_OCI_MANIFEST) throw bad(`mediaType is ${JSON.stringify(j.mediaType)}, not an OCI image manifest`);
  if (j.artifactType !== ARTIFACT_PREFETCH_PROFILE) throw bad(`artifactType is ${JSON.stringify(j.artifactType)}, not ${ARTIFACT_PREFETCH_PROFILE}`);
  const subject = asDescriptor(j.subject);
  if (!subject) throw bad('it has no valid subject descriptor');
  if (subject.digest !== subjectDigest) throw bad(`its subject is ${subject.digest}, not the image manifest ${subjectDigest}`);
  if (!Array.isArray(j.layers) || j.layers.length !== 1) throw bad(`it has ${Array.isArray(j.layers) ? j.layers.length : 'no'} layers, not one list layer`);
  const list = asDescriptor(j.layers[0]);
  if (!list) throw bad('its layer is not a valid descriptor');
  if (list.mediaType.split(';')[0]?.trim() !== MEDIA_PREFETCH_LIST) throw bad(`its layer has media type ${JSON.stringify(list.mediaType)}, not ${MEDIA_PREFETCH_LIST}`);
  if (list.size > PROFILE_LIMITS.listBytes) throw bad(`its list has ${list.size} bytes, more than ${PROFILE_LIMITS.listBytes}`);
  const annotations = isObject(j.annotations) ? Object.fromEntries(Object.entries(j.annotations).filter((e): e is [string, string] => typeof e[1] === 'string')) : {};
  return { list, subject, created: annotations[ANNOTATION_CREATED], annotations };
}

/** Milliseconds since the epoch of a `created` annotation; -Infinity when absent or unreadable. */
export function createdTime(created: string | undefined): number {
  const t = created === undefined ? NaN : Date.parse(created);
  return Number.isFinite(t) ? t : -Infinity;
}
