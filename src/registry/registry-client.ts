/**
 * An OCI distribution client for one registry host: manifests (always with an Accept header),
 * ranged blob reads, verified blob streams, chunked uploads, cross-repo mounts, tags. The HTTP
 * layer (auth, pools, timeouts, retries, redirects) is RegistryTransport; retries apply to
 * idempotent requests only (5xx, 408, 429, resets, timeouts).
 * @module
 */
import type * as http from 'node:http';
import { createHash } from 'node:crypto';
import { nullLogger, type Logger } from '../util/logger.js';
import { RegistryError } from './registry-error.js';
import { repoScope } from './auth.js';
import { checkRepo, isSha256Digest } from './reference.js';
import {
  RegistryTransport, Transient, discard, header, readBody, sha256, type TransportOptions,
} from './registry-transport.js';
import { parseContentRange } from '../util/content-range.js';

/** Media types of manifests and indexes. */
export const MEDIA_TYPE = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/** What getManifest sends as Accept by default (docker-registry answers 404 without it). */
export const DEFAULT_MANIFEST_ACCEPT: readonly string[] = [MEDIA_TYPE.ociManifest, MEDIA_TYPE.ociIndex, MEDIA_TYPE.dockerManifest, MEDIA_TYPE.dockerList];

/** A fetched manifest or index. */
export interface FetchedManifest {
  mediaType: string;
  /** `sha256:` digest of `data`. */
  digest: string;
  data: Uint8Array;
}

/** A content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  artifactType?: string;
}

/** A platform to pick from an index. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/**
 * What pushBlob uploads: bytes, a one-shot stream, or a function that opens the stream (again
 * for each attempt, so that a failed upload can start over).
 */
export type BlobSource = Uint8Array | AsyncIterable<Uint8Array> | (() => AsyncIterable<Uint8Array>);

/** Per-call options. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Options of {@link RegistryClient}. */
export interface RegistryClientOptions extends TransportOptions {
  /** Upload chunk size for PATCH, and the largest monolithic upload (default 8 MiB). */
  chunkSize?: number;
}

/** A client for one registry host (`host[:port]`). */
export class RegistryClient {
  /** `host[:port]` of the registry. */
  readonly host: string;
  readonly #t: RegistryTransport;
  readonly #logger: Logger;
  readonly #chunkSize: number;

  constructor(host: string, options: RegistryClientOptions = {}) {
    this.#t = new RegistryTransport(host, options);
    this.host = host;
    this.#logger = options.logger ?? nullLogger;
    this.#chunkSize = options.chunkSize ?? 8 << 20;
  }

  /** Retries done so far. */
  get retries(): number {
    return this.#t.retries;
  }

  /** Use a fixed Bearer token (nydusd's `registry_token`) until the registry rejects it. */
  setStaticToken(token: string): void {
    this.#t.setStaticToken(token);
  }

  #url(path: string): URL {
    return new URL(`${this.#t.base}${path}`);
  }

  #where(repo: string): string {
    return `${this.host}/${repo}`;
  }

  // ---------------------------------------------------------------- manifests

  /**
   * Fetch a manifest or index by tag or digest. Always sends Accept (OCI manifest + index, Docker
   * v2 manifest + list unless `accept` says otherwise); verifies the content against the digest
   * asked for and against `Docker-Content-Digest`.
   */
  async getManifest(repo: string, reference: string, accept: readonly string[] = DEFAULT_MANIFEST_ACCEPT, options: CallOptions = {}): Promise<FetchedManifest> {
    checkRepo(repo);
    const action = `get manifest ${reference} of ${this.#where(repo)}`;
    const url = this.#url(`/v2/${repo}/manifests/${encodeURIComponent(reference)}`);
    const acceptList = accept.length > 0 ? accept : DEFAULT_MANIFEST_ACCEPT;
    return this.#t.withRetries(action, options.signal, true, async () => {
      const res = await this.#t.send(action, { method: 'GET', url, headers: { accept: acceptList.join(', ') }, scope: repoScope(repo, false), signal: options.signal, follow: true });
      if (res.statusCode !== 200) throw await this.#t.statusError(action, res, `the manifest is unknown to ${this.host}`);
      const data = await readBody(res, 16 << 20);
      const digest = sha256(data);
      if (reference.startsWith('sha256:') && reference !== digest) {
        throw new RegistryError('ERR_DIGEST_MISMATCH', `Cannot ${action}: the content has digest ${digest}`);
      }
      const dcd = header(res, 'docker-content-digest');
      if (dcd !== undefined && dcd.startsWith('sha256:') && dcd !== digest) {
        throw new RegistryError('ERR_DIGEST_MISMATCH', `Cannot ${action}: Docker-Content-Digest says ${dcd} but the content has digest ${digest}`);
      }
      let mediaType = (header(res, 'content-type') ?? '').split(';')[0]?.trim() ?? '';
      if (mediaType === '' || mediaType === 'application/json' || mediaType === 'text/plain') {
        try {
          const j = JSON.parse(Buffer.from(data).toString('utf8')) as { mediaType?: unknown };
          if (typeof j.mediaType === 'string') mediaType = j.mediaType;
        } catch { /* leave it */ }
      }
      return { mediaType, digest, data };
    });
  }

  /** Store a manifest under `reference` (tag or digest); returns its digest. */
  async putManifest(repo: string, reference: string, mediaType: string, data: Uint8Array, options: CallOptions = {}): Promise<string> {
    return (await this.putManifestWithSubject(repo, reference, mediaType, data, options)).digest;
  }

  /**
   * Store a manifest as putManifest does, and also return the registry's `OCI-Subject` header:
   * a registry with the referrers API sets it when it indexed the manifest's `subject` (a client
   * then need not maintain the referrers tag).
   */
  async putManifestWithSubject(repo: string, reference: string, mediaType: string, data: Uint8Array, options: CallOptions = {}): Promise<{ digest: string; ociSubject: string | undefined }> {
    checkRepo(repo);
    const digest = sha256(data);
    const action = `put manifest ${reference} to ${this.#where(repo)}`;
    if (reference.startsWith('sha256:') && reference !== digest) throw new RegistryError('ERR_DIGEST_MISMATCH', `Cannot ${action}: the content has digest ${digest}`);
    const url = this.#url(`/v2/${repo}/manifests/${encodeURIComponent(reference)}`);
    return this.#t.withRetries(action, options.signal, true, async () => {
      const res = await this.#t.send(action, { method: 'PUT', url, headers: { 'content-type': mediaType }, body: data, scope: repoScope(repo, true), signal: options.signal });
      if (res.statusCode !== 201 && res.statusCode !== 200) throw await this.#t.statusError(action, res);
      discard(res);
      const dcd = header(res, 'docker-content-digest');
      if (dcd !== undefined && dcd.startsWith('sha256:') && dcd !== digest) throw new RegistryError('ERR_DIGEST_MISMATCH', `Cannot ${action}: the registry computed ${dcd}, we computed ${digest}`);
      return { digest, ociSubject: header(res, 'oci-subject') };
    });
  }

  /**
   * Delete the manifest `digest`. 'deleted' (202), 'missing' (404), or 'unsupported' when the
   * registry does not allow deletes (400, 405: UNSUPPORTED).
   */
  async deleteManifest(repo: string, digest: string, options: CallOptions = {}): Promise<'deleted' | 'missing' | 'unsupported'> {
    checkRepo(repo);
    const action = `delete manifest ${digest} of ${this.#where(repo)}`;
    const url = this.#url(`/v2/${repo}/manifests/${encodeURIComponent(digest)}`);
    return this.#t.withRetries(action, options.signal, true, async () => {
      const res = await this.#t.send(action, { method: 'DELETE', url, scope: repoScope(repo, true), signal: options.signal });
      const status = res.statusCode ?? 0;
      if (status === 202 || status === 200 || status === 404 || status === 400 || status === 405) {
        discard(res);
        return status === 404 ? 'missing' : status === 400 || status === 405 ? 'unsupported' : 'deleted';
      }
      throw await this.#t.statusError(action, res);
    });
  }

  /**
   * The referrers of manifest `digest` through the referrers API (`GET /v2/<repo>/referrers/<digest>`,
   * following `Link` pages), filtered by `artifactType` when given: the `manifests` entries of
   * the answers, unchecked. Undefined when the registry answers 404 (no referrers API: use the
   * tag schema `sha256-<hex>` instead). `filtered` says whether the registry applied the filter.
   */
  async getReferrers(repo: string, digest: string, artifactType?: string, options: CallOptions = {}): Promise<{ manifests: unknown[]; filtered: boolean } | undefined> {
    checkRepo(repo);
    const action = `list the referrers of ${digest} in ${this.#where(repo)}`;
    const first = this.#url(`/v2/${repo}/referrers/${encodeURIComponent(digest)}`);
    if (artifactType !== undefined) first.searchParams.set('artifactType', artifactType);
    const manifests: unknown[] = [];
    let filtered = artifactType !== undefined;
    let url: URL | undefined = first;
    for (let pages = 0; url !== undefined && pages < 100; pages++) {
      const u: URL = url;
      const page = await this.#t.withRetries(action, options.signal, true, async () => {
        const res = await this.#t.send(action, { method: 'GET', url: u, headers: { accept: MEDIA_TYPE.ociIndex }, scope: repoScope(repo, false), signal: options.signal, follow: true });
        if (res.statusCode === 404) {
          discard(res);
          return undefined;
        }
        if (res.statusCode !== 200) throw await this.#t.statusError(action, res);
        const body = await readBody(res, 4 << 20);
        const link = header(res, 'link');
        const m = link !== undefined ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
        const applied = (header(res, 'oci-filters-applied') ?? '').split(',').map((x) => x.trim()).includes('artifactType');
        let j: { manifests?: unknown };
        try {
          j = JSON.parse(Buffer.from(body).toString('utf8')) as { manifests?: unknown };
        } catch (e) {
          throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot ${action}: the answer is not JSON`, { cause: e });
        }
        if (typeof j !== 'object' || j === null || !Array.isArray(j.manifests)) throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot ${action}: the answer is not an image index`);
        // A next page elsewhere than this registry is not followed (credentials stay here).
        const next = m?.[1] !== undefined ? new URL(m[1], u) : undefined;
        return { manifests: j.manifests as unknown[], applied, next: next?.origin === u.origin ? next : undefined };
      });
      if (page === undefined) {
        if (pages === 0) return undefined;
        break;
      }
      manifests.push(...page.manifests);
      filtered &&= page.applied;
      url = page.next;
    }
    return { manifests, filtered };
  }

  /** All tags of `repo` (follows `Link: <…>; rel="next"` pages). */
  async listTags(repo: string, options: CallOptions = {}): Promise<string[]> {
    checkRepo(repo);
    const action = `list the tags of ${this.#where(repo)}`;
    const tags: string[] = [];
    let url: URL | undefined = this.#url(`/v2/${repo}/tags/list`);
    for (let pages = 0; url !== undefined && pages < 1000; pages++) {
      const u: URL = url;
      const page = await this.#t.withRetries(action, options.signal, true, async () => {
        const res = await this.#t.send(action, { method: 'GET', url: u, headers: { accept: 'application/json' }, scope: repoScope(repo, false), signal: options.signal, follow: true });
        if (res.statusCode !== 200) throw await this.#t.statusError(action, res, `the repository is unknown to ${this.host}`);
        const body = await readBody(res, 16 << 20);
        const link = header(res, 'link');
        const m = link !== undefined ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
        let j: { tags?: unknown };
        try {
          j = JSON.parse(Buffer.from(body).toString('utf8')) as { tags?: unknown };
        } catch (e) {
          throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot ${action}: the answer is not JSON`, { cause: e });
        }
        return { tags: Array.isArray(j.tags) ? j.tags.filter((t): t is string => typeof t === 'string') : [], next: m?.[1] !== undefined ? new URL(m[1], u) : undefined };
      });
      tags.push(...page.tags);
      url = page.next;
    }
    return tags;
  }

  /** The descriptor of `platform` in an index (parsed JSON or its bytes); RegistryError ERR_NO_PLATFORM when absent. */
  resolvePlatform(index: Uint8Array | { manifests?: unknown }, platform: Platform): Descriptor {
    let j: { manifests?: unknown };
    if (index instanceof Uint8Array) {
      try {
        j = JSON.parse(Buffer.from(index).toString('utf8')) as { manifests?: unknown };
      } catch (e) {
        throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot pick platform ${platformText(platform)}: the index is not JSON`, { cause: e });
      }
    } else {
      j = index;
    }
    if (!Array.isArray(j.manifests)) throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot pick platform ${platformText(platform)}: the index has no manifests array`);
    const list = j.manifests as Descriptor[];
    const matches = list.filter((d) => d.platform !== undefined && d.platform.os === platform.os && d.platform.architecture === platform.architecture
      && (platform.variant === undefined || d.platform.variant === platform.variant));
    // Without a variant asked for, prefer an entry without one (arm64 → v8 entries count too).
    const pick = matches.find((d) => d.platform?.variant === undefined) ?? matches[0];
    if (!pick) {
      const have = list.map((d) => (d.platform ? platformText(d.platform) : '?')).join(', ');
      throw new RegistryError('ERR_NO_PLATFORM', `Cannot pick platform ${platformText(platform)}: the index only has ${have || 'no platforms'}`);
    }
    return pick;
  }

  // ---------------------------------------------------------------- blobs

  /** Size of a blob, or undefined when the registry does not have it. */
  async headBlob(repo: string, digest: string, options: CallOptions = {}): Promise<number | undefined> {
    checkRepo(repo);
    const action = `look up blob ${digest} in ${this.#where(repo)}`;
    const url = this.#url(`/v2/${repo}/blobs/${digest}`);
    return this.#t.withRetries(action, options.signal, true, async () => {
      const res = await this.#t.send(action, { method: 'HEAD', url, scope: repoScope(repo, false), signal: options.signal, follow: true });
      discard(res);
      if (res.statusCode === 404) return undefined;
      if (res.statusCode !== 200) throw await this.#t.statusError(action, res);
      const cl = header(res, 'content-length');
      if (cl === undefined || !/^\d+$/.test(cl)) throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot ${action}: the answer has no Content-Length`);
      return Number(cl);
    });
  }

  /**
   * Exactly `length` bytes of a blob from `offset`, by one `Range` request (206). Rejects with
   * ERR_REGISTRY_OUT_OF_RANGE past the end, ERR_REGISTRY_NOT_FOUND for an unknown blob.
   */
  async readBlob(repo: string, digest: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    checkRepo(repo);
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) throw new RangeError(`Cannot read blob ${digest}: bad range ${offset}+${length}`);
    if (length === 0) return new Uint8Array(0);
    const last = offset + length - 1;
    const action = `read bytes ${offset}-${last} of blob ${digest} from ${this.#where(repo)}`;
    const url = this.#url(`/v2/${repo}/blobs/${digest}`);
    const outOfRange = (total: number | undefined): RegistryError => new RegistryError('ERR_REGISTRY_OUT_OF_RANGE', `Cannot ${action}: ${total === undefined ? 'the range is past the end of the blob' : `the blob has ${total} bytes`}`, { offset });
    return this.#t.withRetries(action, signal, true, async () => {
      const res = await this.#t.send(action, { method: 'GET', url, headers: { range: `bytes=${offset}-${last}`, 'accept-encoding': 'identity' }, scope: repoScope(repo, false), signal, follow: true });
      const status = res.statusCode ?? 0;
      if (status === 206) {
        const cr = parseContentRange(header(res, 'content-range'));
        if (cr && (cr.start !== offset || cr.end !== last)) {
          discard(res);
          if (cr.total !== undefined && offset + length > cr.total) throw outOfRange(cr.total);
          throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot ${action}: the registry answered range ${header(res, 'content-range')}`);
        }
        const body = await readBody(res, length);
        if (body.length !== length) throw new Transient('ERR_REGISTRY_SHORT_READ', `the body ended after ${body.length} of ${length} bytes`);
        return body;
      }
      if (status === 200) {
        // The Range header was ignored: take our bytes out of the whole blob.
        const cl = header(res, 'content-length');
        if (cl !== undefined && Number(cl) < offset + length) {
          discard(res);
          throw outOfRange(Number(cl));
        }
        return sliceStream(res, offset, length);
      }
      if (status === 416) {
        discard(res);
        throw outOfRange(parseContentRange(header(res, 'content-range'))?.total);
      }
      throw await this.#t.statusError(action, res, `the blob is unknown to ${this.host}`);
    });
  }

  /** The whole blob as a stream, checked against `digest` at the end (ERR_DIGEST_MISMATCH). */
  async *blobStream(repo: string, digest: string, options: CallOptions = {}): AsyncIterable<Uint8Array> {
    checkRepo(repo);
    const action = `download blob ${digest} from ${this.#where(repo)}`;
    const url = this.#url(`/v2/${repo}/blobs/${digest}`);
    const res = await this.#t.withRetries(action, options.signal, true, async () => {
      const r = await this.#t.send(action, { method: 'GET', url, headers: { 'accept-encoding': 'identity' }, scope: repoScope(repo, false), signal: options.signal, follow: true });
      if (r.statusCode !== 200) throw await this.#t.statusError(action, r, `the blob is unknown to ${this.host}`);
      return r;
    });
    const algo = digest.slice(0, digest.indexOf(':'));
    const hash = algo === 'sha256' || algo === 'sha512' ? createHash(algo) : undefined;
    let n = 0;
    try {
      for await (const c of res as AsyncIterable<Buffer>) {
        hash?.update(c);
        n += c.length;
        yield new Uint8Array(c.buffer, c.byteOffset, c.length);
      }
    } catch (e) {
      if (e instanceof RegistryError) throw e;
      throw new RegistryError(options.signal?.aborted ? 'ERR_ABORTED' : 'ERR_REGISTRY_CONNECTION', `Cannot ${action}: the connection broke after ${n} bytes`, { cause: e });
    } finally {
      if (!res.complete) res.destroy();
    }
    if (!res.complete) throw new RegistryError('ERR_REGISTRY_CONNECTION', `Cannot ${action}: the connection closed after ${n} bytes`);
    const cl = header(res, 'content-length');
    if (cl !== undefined && Number(cl) !== n) throw new RegistryError('ERR_REGISTRY_SHORT_READ', `Cannot ${action}: got ${n} of ${cl} bytes`);
    if (hash) {
      const got = `${algo}:${hash.digest('hex')}`;
      if (got !== digest) throw new RegistryError('ERR_DIGEST_MISMATCH', `Cannot ${action}: the content has digest ${got}`);
    }
  }

  /** Mount `digest` from `fromRepo` into `repo`; false when the registry started an upload instead (cancelled). */
  async mountBlob(repo: string, digest: string, fromRepo: string, options: CallOptions = {}): Promise<boolean> {
    checkRepo(repo);
    checkRepo(fromRepo);
    const action = `mount blob ${digest} from ${fromRepo} into ${this.#where(repo)}`;
    const url = this.#url(`/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepo)}`);
    const res = await this.#t.withRetries(action, options.signal, false, () => this.#t.send(action, { method: 'POST', url, body: new Uint8Array(0), scope: `${repoScope(repo, true)} ${repoScope(fromRepo, false)}`, signal: options.signal }));
    if (res.statusCode === 201) {
      discard(res);
      return true;
    }
    if (res.statusCode === 202) {
      discard(res);
      const loc = header(res, 'location');
      if (loc !== undefined) await this.#cancelUpload(repo, new URL(loc, url), options.signal);
      return false;
    }
    throw await this.#t.statusErrorFinal(action, res);
  }

  async #cancelUpload(repo: string, url: URL, signal: AbortSignal | undefined): Promise<void> {
    try {
      const r = await this.#t.send('cancel an upload', { method: 'DELETE', url, scope: repoScope(repo, true), signal });
      discard(r);
    } catch (e) {
      this.#logger.debug('registry: could not cancel an upload', { host: this.host, error: (e as Error).message });
    }
  }

  /**
   * Upload a blob unless the registry has it (HEAD first). Small in-memory blobs go up in one
   * PUT; streams and large blobs in PATCH chunks then a closing PUT. The content is checked
   * against `digest` and `size` before the upload is committed. Returns false when skipped.
   *
   * An upload that fails on the way (a 5xx, a reset, a timeout) is cancelled and started again
   * from its first byte, with backoff, when the source can be read again: bytes in memory, or a
   * function that opens the stream anew. docker-registry cannot resume an upload whose last
   * PATCH broke off, so a restart is the only way. A one-shot stream fails at once. When a
   * retry finds the blob already there (the closing PUT landed but its answer was lost), the
   * upload is done.
   */
  async pushBlob(repo: string, digest: string, size: number, source: BlobSource, options: CallOptions = {}): Promise<boolean> {
    checkRepo(repo);
    if (!isSha256Digest(digest)) throw new TypeError(`Cannot push blob ${digest}: only sha256:<64 hex> digests are supported`);
    const action = `push blob ${digest} to ${this.#where(repo)}`;
    if ((await this.headBlob(repo, digest, options)) !== undefined) return false;
    const replayable = typeof source === 'function' || source instanceof Uint8Array;
    let attempt = 0;
    return this.#t.withRetries(action, options.signal, replayable, async () => {
      if (attempt++ > 0 && (await this.headBlob(repo, digest, options)) !== undefined) return true;
      await this.#uploadOnce(repo, digest, size, source, action, replayable, options.signal);
      return true;
    });
  }

  /**
   * One upload of `from`: POST, then one PUT or PATCHes and a closing PUT; cancelled when it
   * fails. A source function is called only once the upload has started, so that a failed POST
   * leaves no stream (and no open file) behind.
   */
  async #uploadOnce(repo: string, digest: string, size: number, from: BlobSource, action: string, outerRetries: boolean, signal: AbortSignal | undefined): Promise<void> {
    const scope = repoScope(repo, true);
    const start = this.#url(`/v2/${repo}/blobs/uploads/`);
    let loc = await this.#t.withRetries(action, signal, !outerRetries, async () => {
      const res = await this.#t.send(action, { method: 'POST', url: start, body: new Uint8Array(0), scope, signal });
      if (res.statusCode !== 202) throw await this.#t.statusError(action, res, `the repository is unknown to ${this.host}`);
      discard(res);
      const l = header(res, 'location');
      if (l === undefined) throw new RegistryError('ERR_REGISTRY_BAD_RESPONSE', `Cannot ${action}: the upload answer has no Location`);
      return new URL(l, start);
    });
    const mismatch = (got: string, n: number): RegistryError => new RegistryError('ERR_DIGEST_MISMATCH', `Cannot ${action}: the content has ${n} bytes and digest ${got}, expected ${size} bytes`);
    const withDigest = (u: URL): URL => {
      const x = new URL(u);
      x.searchParams.set('digest', digest);
      return x;
    };
    try {
      const source = typeof from === 'function' ? from() : from;
      if (source instanceof Uint8Array && source.length <= this.#chunkSize) {
        const got = sha256(source);
        if (got !== digest || source.length !== size) throw mismatch(got, source.length);
        const res = await this.#t.send(action, { method: 'PUT', url: withDigest(loc), headers: { 'content-type': 'application/octet-stream' }, body: source, scope, signal });
        if (res.statusCode !== 201) throw await this.#t.statusError(action, res);
        discard(res);
        return;
      }
      const hash = createHash('sha256');
      let sent = 0;
      const flush = async (chunk: Uint8Array): Promise<void> => {
        const res = await this.#t.send(action, { method: 'PATCH', url: loc, headers: { 'content-type': 'application/octet-stream', 'content-range': `${sent}-${sent + chunk.length - 1}` }, body: chunk, scope, signal });
        if (res.statusCode !== 202) throw await this.#t.statusError(action, res);
        discard(res);
        const l = header(res, 'location');
        if (l !== undefined) loc = new URL(l, loc);
        sent += chunk.length;
      };
      let pending: Uint8Array[] = [];
      let pendingLen = 0;
      const iter: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = source instanceof Uint8Array ? slices(source, this.#chunkSize) : source;
      for await (const c of iter) {
        hash.update(c);
        pending.push(c);
        pendingLen += c.length;
        if (pendingLen >= this.#chunkSize) {
          await flush(Buffer.concat(pending));
          pending = [];
          pendingLen = 0;
        }
      }
      if (pendingLen > 0) await flush(Buffer.concat(pending));
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== digest || sent !== size) throw mismatch(got, sent);
      const res = await this.#t.send(action, { method: 'PUT', url: withDigest(loc), body: new Uint8Array(0), scope, signal });
      if (res.statusCode !== 201) throw await this.#t.statusError(action, res);
      discard(res);
    } catch (e) {
      await this.#cancelUpload(repo, loc, undefined);
      throw e;
    }
  }

  /** Drop pooled connections; later calls reject with ERR_CLOSED. */
  async close(): Promise<void> {
    await this.#t.close();
  }
}

function platformText(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant !== undefined ? `/${p.variant}` : ''}`;
}

function* slices(data: Uint8Array, size: number): Iterable<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, Math.min(data.length, i + size));
}

/** Bytes [offset, offset+length) of a full-body response. */
async function sliceStream(res: http.IncomingMessage, offset: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let pos = 0;
  let got = 0;
  try {
    for await (const c of res as AsyncIterable<Buffer>) {
      const a = Math.max(0, offset - pos);
      const b = Math.min(c.length, offset + length - pos);
      if (b > a) {
        out.set(c.subarray(a, b), got);
        got += b - a;
      }
      pos += c.length;
      if (got === length) {
        res.destroy();
        return out;
      }
    }
  } catch (e) {
    throw new Transient('ERR_REGISTRY_CONNECTION', `the connection broke after ${pos} bytes`, undefined, e);
  }
  throw new Transient('ERR_REGISTRY_SHORT_READ', `the body ended after ${pos} bytes, before byte ${offset + length}`);
}
