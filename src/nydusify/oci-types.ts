/**
 * OCI image types and the media types / annotations Nydus images carry.
 * @module
 */

export const MEDIA_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
export const MEDIA_OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MEDIA_DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
export const MEDIA_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
/** A Nydus data blob layer. */
export const MEDIA_NYDUS_BLOB = 'application/vnd.oci.image.layer.nydus.blob.v1';
export const ANNOTATION_NYDUS_BLOB = 'containerd.io/snapshot/nydus-blob';
export const ANNOTATION_NYDUS_BOOTSTRAP = 'containerd.io/snapshot/nydus-bootstrap';
export const ANNOTATION_NYDUS_FS_VERSION = 'containerd.io/snapshot/nydus-fs-version';
/** The source layer a converted blob came from (our conversion cache key). */
export const ANNOTATION_NYDUS_SOURCE_DIGEST = 'containerd.io/snapshot/nydus-source-digest';
/** Index marker of a Nydus manifest (artifactType since Nydus 2.3.5; os.features before). */
export const ARTIFACT_NYDUS_MANIFEST = 'application/vnd.nydus.image.manifest.v1+json';

/** A content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

/** A platform. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.features'?: string[];
}

/** An image manifest. */
export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  artifactType?: string;
  subject?: Descriptor;
}

/** An image index / manifest list. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The parts of an image config conversion touches. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: Record<string, unknown>;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: Array<Record<string, unknown>>;
  [k: string]: unknown;
}

/** True for an index or manifest list. */
export function isIndexMediaType(t: string | undefined): boolean {
  return t === MEDIA_OCI_INDEX || t === MEDIA_DOCKER_LIST;
}
