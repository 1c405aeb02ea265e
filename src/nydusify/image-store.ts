/**
 * Where images are read from and written to: an OCI layout directory, or a registry. One
 * interface; conversion works on any pair.
 * @module
 */
import type { Descriptor } from './oci-types.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { Credentials } from '../registry/credentials.js';

/** Where a store lives (for cross-repo mounts and nydusd backends). */
export type StoreLocation =
  | { kind: 'registry'; client: RegistryClient; host: string; apiHost: string; repo: string; credentials?: Credentials; caFiles?: readonly string[] }
  | { kind: 'oci'; dir: string };

/** A manifest (or index) as stored: its media type, digest and bytes. */
export interface StoredManifest {
  mediaType: string;
  digest: string;
  data: Uint8Array;
}

/** Read and write access to the images of one store. */
export interface ImageStore {
  /** Human-readable name (for messages). */
  readonly name: string;
  /** Where the store lives, when known. */
  readonly location?: StoreLocation;
  /** The manifest or index a tag or digest names. */
  getManifest(reference: string): Promise<StoredManifest>;
  /** A blob's bytes, streamed and verified against its digest at the end. */
  blobStream(desc: Pick<Descriptor, 'digest' | 'size'>): AsyncIterable<Uint8Array>;
  /** True when the blob is already there. */
  hasBlob(digest: string): Promise<boolean>;
  /** Store a blob from a file. */
  putBlobFile(digest: string, size: number, path: string): Promise<void>;
  /** Store a small blob. */
  putBlob(digest: string, data: Uint8Array): Promise<void>;
  /** Store a manifest/index under `reference` (a tag, or its own digest for an untagged one), returning its digest. */
  putManifest(reference: string, mediaType: string, data: Uint8Array): Promise<string>;
}
