/**
 * Registry access of the snapshotter: which layers of an image are Nydus layers (from the image
 * manifest, cached per reference), the bootstrap of a Nydus image (only that small layer is
 * downloaded), and the credentials and address nydusd's registry backend needs for the image.
 * Credentials come from pull-secret labels when containerd passed them, else from the Docker
 * config file for the image's host.
 * @module
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { nullLogger, type Logger } from '../util/logger.js';
import { readCaFiles, registryCaFiles } from '../registry/host-certs.js';
import { RegistryClient } from '../registry/registry-client.js';
import { parseReference, type ImageReference } from '../registry/reference.js';
import { decodeBasicAuth, encodeBasicAuth, loadCredentials, type Credentials } from '../registry/credentials.js';
import { openRegistryStore } from '../nydusify/registry-store.js';
import { fetchBootstrap, resolveManifest } from '../nydusify/image-parts.js';
import type { ImageStore } from '../nydusify/image-store.js';
import { ANNOTATION_NYDUS_BLOB, ANNOTATION_NYDUS_BOOTSTRAP, MEDIA_NYDUS_BLOB, type Manifest } from '../nydusify/oci-types.js';
import { SnapshotError } from './snapshot-error.js';
import { profileTargetOf, type ProfileTarget } from '../nydusify/profile/profile-registry.js';

/** How to reach registries. */
export interface RegistryAccessOptions {
  /** Speak plain HTTP to registries (`--plain-http`). */
  plainHttp: boolean;
  /** Do not verify TLS certificates (`--insecure`). */
  insecure: boolean;
  /** Docker config with credentials; none when undefined. */
  dockerConfigPath: string | undefined;
  /** Platform to choose from an image index. */
  platform: { os: string; architecture: string };
  logger?: Logger;
}

/** Where nydusd's registry backend reads an image's blobs. */
export interface RegistryLocation {
  scheme: 'http' | 'https';
  /** API host (`registry-1.docker.io` for docker.io). */
  host: string;
  repo: string;
  /** base64 `user:pass`, when credentials are known. */
  auth: string | undefined;
  skipVerify: boolean;
  /** CA files for the host (certs.d), for `ca_cert_files`. */
  caFiles: readonly string[];
}

/** Manifests kept per image reference. */
const MAX_CACHED_MANIFESTS = 64;

/** Classifies layers and fetches bootstraps; one per snapshotter. */
export class ImageResolver {
  readonly #o: RegistryAccessOptions;
  readonly #log: Logger;
  readonly #clients = new Map<string, RegistryClient>();
  readonly #manifests = new Map<string, Promise<Manifest>>();

  constructor(options: RegistryAccessOptions) {
    this.#o = options;
    this.#log = options.logger ?? nullLogger;
  }

  async #credentials(ref: ImageReference, auth: string | undefined): Promise<Credentials | undefined> {
    if (auth !== undefined) return decodeBasicAuth(auth);
    if (this.#o.dockerConfigPath === undefined) return undefined;
    return loadCredentials(ref.host, { dockerConfigPath: this.#o.dockerConfigPath });
  }

  async #store(imageRef: string, auth: string | undefined): Promise<{ store: ImageStore; ref: ImageReference }> {
    const ref = parseReference(imageRef);
    const credentials = await this.#credentials(ref, auth);
    const key = `${ref.apiHost}|${credentials ? encodeBasicAuth(credentials) : ''}`;
    let client = this.#clients.get(key);
    if (!client) {
      const caFiles = this.#caFiles(ref);
      client = new RegistryClient(ref.apiHost, {
        ...(this.#o.plainHttp ? { plainHttp: true } : {}), ...(this.#o.insecure ? { insecure: true } : {}),
        ...(credentials ? { credentials } : {}), ...(caFiles.length > 0 ? { ca: readCaFiles(caFiles) } : {}), logger: this.#log,
      });
      this.#clients.set(key, client);
    }
    return { store: openRegistryStore(client, ref.host, ref.repo, { apiHost: ref.apiHost, ...(credentials ? { credentials } : {}) }), ref };
  }

  #manifest(imageRef: string, auth: string | undefined, fresh: boolean): Promise<Manifest> {
    const cached = this.#manifests.get(imageRef);
    if (cached && !fresh) return cached;
    const p = (async () => {
      const { store, ref } = await this.#store(imageRef, auth);
      return (await resolveManifest(store, ref.reference, { platform: this.#o.platform, nydus: true })).manifest;
    })();
    this.#manifests.set(imageRef, p);
    p.catch(() => { if (this.#manifests.get(imageRef) === p) this.#manifests.delete(imageRef); });
    while (this.#manifests.size > MAX_CACHED_MANIFESTS) {
      const oldest = this.#manifests.keys().next().value as string;
      this.#manifests.delete(oldest);
    }
    return p;
  }

  /**
   * What layer `layerDigest` of `imageRef` is: a Nydus data blob, the Nydus bootstrap, or
   * undefined for anything else (an OCI layer, or a layer the manifest does not list even after
   * fetching it again).
   */
  async classify(imageRef: string, layerDigest: string, auth: string | undefined): Promise<'blob' | 'bootstrap' | undefined> {
    for (const fresh of [false, true]) {
      const m = await this.#manifest(imageRef, auth, fresh);
      const layer = m.layers.find((l) => l.digest === layerDigest);
      if (!layer) continue;
      if (layer.annotations?.[ANNOTATION_NYDUS_BOOTSTRAP] === 'true') return 'bootstrap';
      if (layer.mediaType === MEDIA_NYDUS_BLOB || layer.annotations?.[ANNOTATION_NYDUS_BLOB] === 'true') return 'blob';
      return undefined;
    }
    this.#log.warn('layer not in the image manifest; treating it as a plain layer', { image: imageRef, layer: layerDigest });
    return undefined;
  }

  /** Download bootstrap layer `layerDigest` of `imageRef` and write its `image/image.boot` to `outPath`. */
  async fetchBootstrap(imageRef: string, layerDigest: string, auth: string | undefined, outPath: string): Promise<void> {
    try {
      const { store } = await this.#store(imageRef, auth);
      mkdirSync(dirname(outPath), { recursive: true });
      await fetchBootstrap(store, { mediaType: '', digest: layerDigest, size: 0 }, outPath);
    } catch (e) {
      throw new SnapshotError('ERR_NYDUS_IMAGE', `Cannot fetch the bootstrap ${layerDigest} of ${imageRef}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * The manifest `imageRef` resolves to now (the Nydus one of our platform, for an index) as the
   * subject of prefetch profiles, with the registry client and repository to look them up.
   */
  async profileTarget(imageRef: string, auth: string | undefined): Promise<{ target: ProfileTarget; manifest: Manifest }> {
    const { store, ref } = await this.#store(imageRef, auth);
    const m = await resolveManifest(store, ref.reference, { platform: this.#o.platform, nydus: true });
    const client = (store.location as { client: RegistryClient }).client;
    return { target: profileTargetOf(client, ref.repo, m.mediaType, m.digest, m.data.length), manifest: m.manifest };
  }

  /** Where nydusd reads the blobs of `imageRef`, with credentials. */
  async locate(imageRef: string, auth: string | undefined): Promise<RegistryLocation> {
    const ref = parseReference(imageRef);
    const credentials = await this.#credentials(ref, auth);
    return {
      scheme: this.#o.plainHttp ? 'http' : 'https', host: ref.apiHost, repo: ref.repo,
      auth: credentials ? encodeBasicAuth(credentials) : undefined, skipVerify: this.#o.insecure, caFiles: this.#caFiles(ref),
    };
  }

  /** The registry's CA files under certs.d (none over plain HTTP). */
  #caFiles(ref: ImageReference): string[] {
    return this.#o.plainHttp ? [] : registryCaFiles(ref);
  }

  /** Close every registry connection. */
  async close(): Promise<void> {
    for (const c of this.#clients.values()) await c.close();
    this.#clients.clear();
  }
}
