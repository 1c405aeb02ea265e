/**
 * Errors of the snapshotter, each with a stable code and the containerd error class it maps to
 * (containerd's errdefs; the gRPC layer turns the class into a status code):
 * - `ERR_SNAPSHOT_NOT_FOUND` (not-found) no snapshot, or no parent, with that key;
 * - `ERR_SNAPSHOT_EXISTS` (already-exists) the key or name is taken;
 * - `ERR_REMOTE_SNAPSHOT` (already-exists) Prepare made a committed remote snapshot for the
 *   target instead of an active one: containerd looks it up by its `containerd.io/snapshot.ref`;
 * - `ERR_SNAPSHOT_KIND` (failed-precondition) the snapshot has the wrong kind for the call
 *   (committing a view, mounting a committed snapshot);
 * - `ERR_SNAPSHOT_HAS_CHILDREN` (failed-precondition) removing a snapshot other snapshots build on;
 * - `ERR_SNAPSHOT_ARGUMENT` (invalid-argument) a bad key, parent kind, field path or filter;
 * - `ERR_NYDUS_IMAGE` (unavailable) a Nydus image cannot be prepared or mounted (registry, nydusd).
 * @module
 */
import { NydusError, type NydusErrorOptions } from '../util/errors.js';

/** containerd's error classes (github.com/containerd/containerd/errdefs) this snapshotter answers with. */
export type ErrorClass = 'not-found' | 'already-exists' | 'failed-precondition' | 'invalid-argument' | 'unavailable' | 'unknown';

const CLASS_OF: Readonly<Record<string, ErrorClass>> = {
  ERR_SNAPSHOT_NOT_FOUND: 'not-found',
  ERR_SNAPSHOT_EXISTS: 'already-exists',
  ERR_REMOTE_SNAPSHOT: 'already-exists',
  ERR_SNAPSHOT_KIND: 'failed-precondition',
  ERR_SNAPSHOT_HAS_CHILDREN: 'failed-precondition',
  ERR_SNAPSHOT_ARGUMENT: 'invalid-argument',
  ERR_NYDUS_IMAGE: 'unavailable',
};

/** A snapshot operation that cannot be done. */
export class SnapshotError extends NydusError {
  /** The containerd error class of this error. */
  readonly errorClass: ErrorClass;

  constructor(code: string, message: string, options: NydusErrorOptions = {}) {
    super(code, message, options);
    this.errorClass = CLASS_OF[code] ?? 'unknown';
  }
}

/** The containerd error class of any error (`unknown` for errors that are not SnapshotErrors). */
export function errorClassOf(e: unknown): ErrorClass {
  return e instanceof SnapshotError ? e.errorClass : 'unknown';
}
