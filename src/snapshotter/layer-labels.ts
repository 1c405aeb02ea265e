/**
 * The labels containerd passes to Prepare that tell which image layer a snapshot is for.
 * containerd's unpacker (client Pull with unpack: `ctr-remote image rpull`, nerdctl, CRI) copies
 * every layer annotation under `containerd.io/snapshot/` into the labels and adds
 * `containerd.io/snapshot.ref=<chain id>`; the handlers of those tools add the image reference and
 * layer digest. Plain `ctr images pull` passes no labels at all.
 * @module
 */
import { ANNOTATION_NYDUS_BLOB, ANNOTATION_NYDUS_BOOTSTRAP } from '../nydusify/oci-types.js';
import { encodeBasicAuth } from '../registry/credentials.js';
import { LABEL_SNAPSHOT_REF } from './snapshot-types.js';

/** Image reference, from containerd's CRI plugin and nerdctl (`pkg/snapshotters` in containerd). */
export const LABEL_CRI_IMAGE_REF = 'containerd.io/snapshot/cri.image-ref';
/** Layer digest, CRI / nerdctl. */
export const LABEL_CRI_LAYER_DIGEST = 'containerd.io/snapshot/cri.layer-digest';
/** Manifest digest, CRI / nerdctl. */
export const LABEL_CRI_MANIFEST_DIGEST = 'containerd.io/snapshot/cri.manifest-digest';
/** Image reference, from stargz-snapshotter's `ctr-remote image rpull`. */
export const LABEL_STARGZ_REFERENCE = 'containerd.io/snapshot/remote/stargz.reference';
/** Layer digest, `ctr-remote image rpull`. */
export const LABEL_STARGZ_DIGEST = 'containerd.io/snapshot/remote/stargz.digest';
/** Pull credentials nydus-snapshotter's tooling may pass: user name and secret. */
export const LABEL_PULL_USERNAME = 'containerd.io/snapshot/pullusername';
export const LABEL_PULL_SECRET = 'containerd.io/snapshot/pullsecret';

/** What the labels of a Prepare say about the layer. */
export interface LayerHint {
  /** The chain id of the committed snapshot containerd wants (`containerd.io/snapshot.ref`). */
  target: string | undefined;
  /** Image reference, when a pull tool passed one. */
  imageRef: string | undefined;
  /** Layer digest, when a pull tool passed one. */
  layerDigest: string | undefined;
  /** The layer's own Nydus annotation, when containerd copied it into the labels. */
  marked: 'blob' | 'bootstrap' | undefined;
  /** base64 `user:pass` from the pull-secret labels. */
  auth: string | undefined;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** Read the layer hints out of Prepare's labels. */
export function layerHintOf(labels: Readonly<Record<string, string>>): LayerHint {
  const user = nonEmpty(labels[LABEL_PULL_USERNAME]);
  const secret = nonEmpty(labels[LABEL_PULL_SECRET]);
  const isTrue = (k: string): boolean => labels[k] !== undefined && labels[k] !== 'false';
  return {
    target: nonEmpty(labels[LABEL_SNAPSHOT_REF]),
    imageRef: nonEmpty(labels[LABEL_CRI_IMAGE_REF]) ?? nonEmpty(labels[LABEL_STARGZ_REFERENCE]),
    layerDigest: nonEmpty(labels[LABEL_CRI_LAYER_DIGEST]) ?? nonEmpty(labels[LABEL_STARGZ_DIGEST]),
    marked: isTrue(ANNOTATION_NYDUS_BOOTSTRAP) ? 'bootstrap' : isTrue(ANNOTATION_NYDUS_BLOB) ? 'blob' : undefined,
    auth: user !== undefined && secret !== undefined ? encodeBasicAuth({ username: user, password: secret }) : undefined,
  };
}
