/**
 * An ImageStore over one repository of an OCI registry, through the registry client (auth, TLS,
 * retries): blobs stream from and upload to the registry, manifests are pushed last by the caller.
 * @module
 */
import { createReadStream } from 'node:fs';
import type { RegistryClient } from '../registry/registry-client.js';
import type { ImageStore } from './image-store.js';
import type { Credentials } from '../registry/credentials.js';

/** The store of `repo` at the registry `client` talks to. */
export function openRegistryStore(client: RegistryClient, host: string, repo: string, extra: { apiHost?: string; credentials?: Credentials; caFiles?: readonly string[] } = {}): ImageStore {
  return {
    name: `${host}/${repo}`,
    location: { kind: 'registry', client, host, apiHost: extra.apiHost ?? host, repo, ...(extra.credentials ? { credentials: extra.credentials } : {}), ...(extra.caFiles?.length ? { caFiles: extra.caFiles } : {}) },
    async getManifest(reference) {
      const m = await client.getManifest(repo, reference);
      return { mediaType: m.mediaType, digest: m.digest, data: m.data };
    },
    blobStream(desc) {
      return client.blobStream(repo, desc.digest);
    },
    async hasBlob(digest) {
      return (await client.headBlob(repo, digest)) !== undefined;
    },
    async putBlobFile(digest, size, path) {
      await client.pushBlob(repo, digest, size, () => createReadStream(path, { highWaterMark: 1 << 20 }));
    },
    async putBlob(digest, data) {
      await client.pushBlob(repo, digest, data.length, data);
    },
    putManifest(reference, mediaType, data) {
      return client.putManifest(repo, reference, mediaType, data);
    },
  };
}
