/**
 * The mounts a snapshot is used through (what Prepare, View and Mounts return), from its parent
 * chain, like containerd's overlayfs snapshotter:
 * - no lower layer: a bind mount of the snapshot's own `fs` (read-only for a view);
 * - active: overlay with `upperdir`/`workdir` of the snapshot over its parents' layers;
 * - view over one layer: a read-only bind mount of that layer; over several: a lowerdir-only overlay.
 *
 * Nydus images change what the parent layers are: the data-blob snapshots are empty stand-ins and
 * are skipped, and the bootstrap snapshot stands for the whole image below it, so the walk stops
 * there with the directory where nydusd mounts that image.
 * @module
 */
import { existsSync } from 'node:fs';
import type { SnapshotRecord } from './snapshot-types.js';

/** A mount in containerd's shape. */
export interface Mount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

/** Where snapshot directories are. */
export interface LayerPaths {
  /** `<root>/snapshots/<id>/fs`. */
  fsDir(id: number): string;
  /** `<root>/snapshots/<id>/work`. */
  workDir(id: number): string;
}

/** A lower layer of a snapshot: a plain directory, or the mount of a Nydus image. */
export type LowerLayer = { kind: 'dir'; path: string } | { kind: 'nydus'; bootstrap: SnapshotRecord };

/** The lower layers of a snapshot from its ancestors (nearest first), top layer first. */
export function lowerLayers(ancestors: readonly SnapshotRecord[], paths: LayerPaths): LowerLayer[] {
  const out: LowerLayer[] = [];
  for (const a of ancestors) {
    if (a.nydus?.type === 'bootstrap') {
      out.push({ kind: 'nydus', bootstrap: a });
      break;
    }
    if (a.nydus?.type === 'blob') continue;
    out.push({ kind: 'dir', path: paths.fsDir(a.id) });
  }
  return out;
}

/** True when the kernel's overlayfs has the `index` feature, which must be off for FUSE lower layers (containerd turns it off too). */
export function overlayHasIndex(): boolean {
  return existsSync('/sys/module/overlay/parameters/index');
}

/** The mounts of `snapshot` given its lower directories (top first, already resolved to paths). */
export function mountsFor(snapshot: Pick<SnapshotRecord, 'id' | 'kind'>, lowers: readonly string[], paths: LayerPaths, o: { indexOff: boolean }): Mount[] {
  if (lowers.length === 0) {
    return [{ type: 'bind', source: paths.fsDir(snapshot.id), target: '', options: [snapshot.kind === 'view' ? 'ro' : 'rw', 'rbind'] }];
  }
  const options: string[] = o.indexOff ? ['index=off'] : [];
  if (snapshot.kind === 'active') {
    options.push(`workdir=${paths.workDir(snapshot.id)}`, `upperdir=${paths.fsDir(snapshot.id)}`);
  } else if (lowers.length === 1) {
    return [{ type: 'bind', source: lowers[0] as string, target: '', options: ['ro', 'rbind'] }];
  }
  options.push(`lowerdir=${lowers.join(':')}`);
  return [{ type: 'overlay', source: 'overlay', target: '', options }];
}
