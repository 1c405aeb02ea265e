/**
 * The prefetch list of an image mount. In order:
 *
 * 1. a per-container list: the label `containerd.io/nydus-prefetch` on the snapshot that makes
 *    the image mount (the container's active snapshot, or a view). The name is the pod
 *    annotation upstream nydus-snapshotter's prefetchfiles NRI plugin reads; here it is read as
 *    a snapshot label whose value is the list itself, one absolute path a line or a JSON array
 *    of paths (containerd caps a label at 4 KiB);
 * 2. else the newest prefetch profile published for the image (an OCI artifact whose subject is
 *    the image manifest, see src/nydusify/profile/), looked up at most once per image in the
 *    snapshotter's life and kept in memory. A mount waits for the lookup at most `waitMs`
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

/** Chooses the prefetch list of image mounts; one per snapshotter. */
export class ProfileSource {
  readonly #o: ProfileSourceOptions;
  readonly #log: Logger;
  readonly #lookups = new Map<string, Promise<PrefetchChoice | undefined>>();

  constructor(o: ProfileSourceOptions) {
    this.#o = o;
    this.#log = o.logger;
  }

  /**
   * The prefetch list for mounting the image `imageRef` (bootstrap layer `bootstrapDigest`) for
   * a snapshot with `labels`: the label's list, else the newest profile, else undefined.
   */
  async forMount(imageRef: string, auth: string | undefined, bootstrapDigest: string, labels: Readonly<Record<string, string>>): Promise<PrefetchChoice | undefined> {
    const label = labels[LABEL_NYDUS_PREFETCH];
    if (label !== undefined && label.trim() !== '') {
      try {
        const paths = parsePrefetchLabel(label);
        if (paths.length > 0) return { paths, from: 'label' };
      } catch (e) {
        this.#log.warn('ignoring the per-container prefetch list', { image: imageRef, error: (e as Error).message });
      }
    }
    const key = `${imageRef}\n${bootstrapDigest}`;
    let lookup = this.#lookups.get(key);
    if (!lookup) {
      lookup = this.#lookup(imageRef, auth, bootstrapDigest);
      this.#lookups.set(key, lookup);
    }
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
      return { paths: p.paths, from: `profile ${p.digest}` };
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
