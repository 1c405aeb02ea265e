/**
 * The prefetch list of an image mount. In order:
 *
 * 1. a per-container list: the label `containerd.io/nydus-prefetch` on the snapshot that makes
 *    the image mount (the container's active snapshot, or a view). The name is the pod
 *    annotation upstream nydus-snapshotter's prefetchfiles NRI plugin reads; here it is read as
 *    a snapshot label whose value is the list itself, one absolute path a line or a JSON array
 *    of paths (containerd caps a label at 4 KiB);
 * 2. else the newest prefetch profile published for the image (an OCI artifact whose subject is
 *    the image manifest, see src/nydusify/profile/), looked up when the image is pulled (while
 *    its bootstrap downloads) and kept in memory: a found profile for 10 minutes, "none" or a
 *    failed lookup for 30 s (the newest 256 images). A mount waits for the lookup at most `waitMs`
 *    (default 1.5 s); a slower lookup goes on in the background (bounded by `lookupTimeoutMs`)
 *    and its answer serves the next mount of that image.
 *
 * Nothing here fails a mount: a bad label, an unreachable registry or a bad profile is logged
 * and the image mounts with its own prefetch table.
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../util/logger.js';
import { parsePrefetchList } from '../nydusify/profile/profile-format.js';
import { newestProfile } from '../nydusify/profile/profile-registry.js';
import { bootstrapLayerOf } from '../nydusify/image-parts.js';
import type { ImageResolver } from './image-resolver.js';

/** The per-container prefetch list label. */
export const LABEL_NYDUS_PREFETCH = 'containerd.io/nydus-prefetch';

/** A chosen prefetch list and where it came from. */
export interface PrefetchChoice {
  paths: string[];
  /** `label`, or `profile <digest>`. */
  from: string;
}

/** Options of {@link ProfileSource}. */
export interface ProfileSourceOptions {
  resolver: ImageResolver;
  logger: Logger;
  /** Longest a mount waits for a profile lookup (default 1500 ms). */
  waitMs?: number;
  /** Longest a lookup may run at all (default 30 s). */
  lookupTimeoutMs?: number;
}

/** Parse the label's value: a JSON array of paths, or one path a line. */
export function parsePrefetchLabel(value: string): string[] {
  const v = value.trim();
  if (v.startsWith('[')) {
    let j: unknown;
    try {
      j = JSON.parse(v);
    } catch {
      throw new TypeError(`Cannot use label ${LABEL_NYDUS_PREFETCH}: it starts with "[" but is not JSON`);
    }
    if (!Array.isArray(j) || !j.every((x) => typeof x === 'string')) throw new TypeError(`Cannot use label ${LABEL_NYDUS_PREFETCH}: the JSON is not an array of paths`);
    return parsePrefetchList(j.join('\n'), `label ${LABEL_NYDUS_PREFETCH}`);
  }
  return parsePrefetchList(v, `label ${LABEL_NYDUS_PREFETCH}`);
}

/** How long a found profile is used without asking the registry again. */
const FOUND_TTL_MS = 10 * 60_000;
/** How long "no profile" (or a failed lookup) is believed. */
const NONE_TTL_MS = 30_000;
/** Images whose lookups are remembered (the oldest go first). */
const MAX_LOOKUPS = 256;

/** Chooses the prefetch list of image mounts; one per snapshotter. */
export class ProfileSource {
  readonly #o: ProfileSourceOptions;
  readonly #log: Logger;
  /** Lookups by image and bootstrap, with when they settled (0: in flight). */
  readonly #lookups = new Map<string, { lookup: Promise<PrefetchChoice | undefined>; settled: number; found: boolean }>();

  constructor(o: ProfileSourceOptions) {
    this.#o = o;
    this.#log = o.logger;
  }

  /**
   * Start looking up the image's newest profile now (at pull, while its bootstrap downloads), so
   * that the mount of its first container finds the answer waiting instead of asking the registry.
   */
  prepare(imageRef: string, auth: string | undefined, bootstrapDigest: string): void {
    this.#lookupOf(imageRef, auth, bootstrapDigest);
  }

  #lookupOf(imageRef: string, auth: string | undefined, bootstrapDigest: string): Promise<PrefetchChoice | undefined> {
    const key = `${imageRef}\n${bootstrapDigest}`;
    const now = Date.now();
    const had = this.#lookups.get(key);
    // A found profile is used for a while; "none" (or a failed lookup) only briefly, so that a
    // profile pushed after the pull, or a registry that comes back, is seen by a later mount.
    if (had && (had.settled === 0 || now - had.settled < (had.found ? FOUND_TTL_MS : NONE_TTL_MS))) return had.lookup;
    const entry = { lookup: this.#lookup(imageRef, auth, bootstrapDigest), settled: 0, found: false };
    void entry.lookup.then((c) => { entry.settled = Date.now(); entry.found = c !== undefined; });
    this.#lookups.delete(key);
    this.#lookups.set(key, entry);
    if (this.#lookups.size > MAX_LOOKUPS) {
      const oldest = this.#lookups.keys().next().value;
      if (oldest !== undefined) this.#lookups.delete(oldest);
    }
    return entry.lookup;
  }

  /** The image's newest profile (no wait cap: for work off the start-up path). */
  profileOf(imageRef: string, auth: string | undefined, bootstrapDigest: string): Promise<PrefetchChoice | undefined> {
    return this.#lookupOf(imageRef, auth, bootstrapDigest);
  }

  /**
   * The prefetch list for mounting the image `imageRef` (bootstrap layer `bootstrapDigest`) for
   * a snapshot with `labels`: the label's list, else the newest profile, else undefined.
   */
  async forMount(imageRef: string, auth: string | undefined, bootstrapDigest: string, labels: Readonly<Record<string, string>>): Promise<PrefetchChoice | undefined> {
    const label = labels[LABEL_NYDUS_PREFETCH];
    if (label !== undefined && label.trim() !== '') {
      try {
        const paths = this.#withoutRoot(parsePrefetchLabel(label), imageRef);
        if (paths.length > 0) return { paths, from: 'label' };
      } catch (e) {
        this.#log.warn('ignoring the per-container prefetch list', { image: imageRef, error: (e as Error).message });
      }
    }
    const lookup = this.#lookupOf(imageRef, auth, bootstrapDigest);
    const wait = new AbortController();
    const waitMs = this.#o.waitMs ?? 1500;
    const late = sleep(waitMs, 'late' as const, { signal: wait.signal }).catch(() => 'late' as const);
    try {
      const r = await Promise.race([lookup, late]);
      if (r === 'late') {
        this.#log.warn('the prefetch profile lookup is slow; mounting without it (a later mount of the image uses it)', { image: imageRef, waitMs });
        return undefined;
      }
      return r;
    } finally {
      wait.abort();
    }
  }

  /**
   * `paths` without "/": it would make nydusd prefetch the whole image at prefetch priority on
   * the start-up path (the background stream fetches the rest later, at low priority).
   */
  #withoutRoot(paths: readonly string[], imageRef: string): string[] {
    const rest = paths.filter((p) => p !== '/');
    if (rest.length !== paths.length) this.#log.warn('a prefetch list names "/" (the whole image); leaving it out', { image: imageRef });
    return rest;
  }

  /** Look the newest profile up (never rejects). */
  async #lookup(imageRef: string, auth: string | undefined, bootstrapDigest: string): Promise<PrefetchChoice | undefined> {
    const signal = AbortSignal.timeout(this.#o.lookupTimeoutMs ?? 30_000);
    try {
      const { target, manifest } = await this.#o.resolver.profileTarget(imageRef, auth);
      if (bootstrapLayerOf(manifest, imageRef).digest !== bootstrapDigest) {
        this.#log.info('the image reference now names another manifest; no prefetch profile for this mount', { image: imageRef, manifest: target.subject.digest });
        return undefined;
      }
      const p = await newestProfile(target, { signal, logger: this.#log });
      if (!p) {
        this.#log.debug('no prefetch profile', { image: imageRef, manifest: target.subject.digest });
        return undefined;
      }
      this.#log.info('prefetch profile found', { image: imageRef, profile: p.digest, created: p.created, paths: p.paths.length });
      const paths = this.#withoutRoot(p.paths, imageRef);
      return paths.length > 0 ? { paths, from: `profile ${p.digest}` } : undefined;
    } catch (e) {
      this.#log.warn('cannot look up prefetch profiles; mounting without one', { image: imageRef, error: (e as Error).message });
      return undefined;
    }
  }
}

/** False when the nydusd template turns prefetch off (`fs_prefetch.enable: false`): then no list is looked up. */
export function templateAllowsPrefetch(template: Readonly<Record<string, unknown>>): boolean {
  const fp = template.fs_prefetch;
  return !(typeof fp === 'object' && fp !== null && (fp as { enable?: unknown }).enable === false);
}
