/**
 * The snapshot model of containerd's snapshots API: kinds, the information containerd sees, and
 * the record this snapshotter keeps per snapshot (its directory id, usage, and what a remote
 * Nydus snapshot stands for).
 * @module
 */

/** Snapshot kinds: a read-only view, a writable active snapshot, an immutable committed one. */
export type SnapshotKind = 'view' | 'active' | 'committed';

/** What containerd sees of a snapshot (Stat, List, Update). */
export interface SnapshotInfo {
  /** Key (active, view) or name (committed). */
  name: string;
  /** Name of the committed parent, '' for none. */
  parent: string;
  kind: SnapshotKind;
  /** Creation time, ms since the epoch. */
  created: number;
  /** Last update, ms since the epoch. */
  updated: number;
  labels: Record<string, string>;
}

/** Disk usage of a snapshot's own directory. */
export interface SnapshotUsage {
  /** Bytes used on disk. */
  size: number;
  inodes: number;
}

/** The layer of a Nydus image a remote snapshot stands for (it has no files of its own but the bootstrap). */
export interface NydusLayer {
  /** A data blob (nothing on disk) or the bootstrap layer (`fs/image/image.boot`). */
  type: 'blob' | 'bootstrap';
  /** Image reference the layer came from (`host/repo:tag`): where nydusd reads the blobs. */
  imageRef: string;
  /** Digest of the layer in the manifest. */
  layerDigest: string;
  /** Registry credentials containerd passed in labels (base64 `user:pass`), if any. */
  auth?: string;
}

/** What the snapshotter stores per snapshot. */
export interface SnapshotRecord extends SnapshotInfo {
  /** Directory id: the snapshot lives in `<root>/snapshots/<id>`. */
  id: number;
  /** Usage, recorded at commit for committed snapshots. */
  usage?: SnapshotUsage;
  /** Set on remote snapshots of Nydus image layers. */
  nydus?: NydusLayer;
}

/** containerd's label of the committed snapshot a Prepare aims at (the chain id). */
export const LABEL_SNAPSHOT_REF = 'containerd.io/snapshot.ref';
