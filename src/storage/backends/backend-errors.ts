/**
 * What every backend shares: argument checks, the stable error codes of backend failures, and
 * metrics bookkeeping around one read.
 *
 * Codes (all BackendError, errno EIO unless noted):
 * - `ERR_BLOB_NOT_FOUND` the blob does not exist;
 * - `ERR_OUT_OF_RANGE` the range runs past the end of the blob;
 * - `ERR_BAD_BLOB_ID` the id cannot name a blob (a path separator, `..`);
 * - `ERR_BACKEND_IO` a local I/O error;
 * - `ERR_HTTP_STATUS`, `ERR_TIMEOUT`, `ERR_CONNECTION`, `ERR_BAD_RESPONSE`, `ERR_SHORT_READ` (http);
 * - `ERR_ABORTED` the caller's AbortSignal fired (errno EINTR);
 * - `ERR_CLOSED` the backend was closed.
 * @module
 */
import { BackendError } from '../../util/errors.js';
import { recordRead, type BackendMetrics } from '../blob-backend.js';

/** errno of every backend failure. */
export const EIO = 5;
/** errno of an aborted request. */
export const EINTR = 4;

/** Throw RangeError unless `offset`/`length` are non-negative safe integers. */
export function checkReadArgs(blobId: string, offset: number, length: number): void {
  if (typeof blobId !== 'string' || blobId.length === 0) throw new TypeError('Cannot read blob: the blob id must be a non-empty string');
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`Cannot read blob ${blobId}: offset ${offset} is not a non-negative integer`);
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`Cannot read blob ${blobId}: length ${length} is not a non-negative integer`);
  if (!Number.isSafeInteger(offset + length)) throw new RangeError(`Cannot read blob ${blobId}: offset ${offset} + length ${length} is too large`);
}

export { isPlainBlobId } from '../blob-id.js';

/** ERR_BAD_BLOB_ID. */
export function badBlobId(type: string, blobId: string): BackendError {
  return new BackendError('ERR_BAD_BLOB_ID', `Cannot read blob ${JSON.stringify(blobId)} from the ${type} backend: not a plain blob id`, { errno: EIO });
}

/** ERR_BLOB_NOT_FOUND. */
export function blobNotFound(type: string, blobId: string, where: string, cause?: unknown): BackendError {
  return new BackendError('ERR_BLOB_NOT_FOUND', `Cannot find blob ${blobId} in the ${type} backend: ${where}`, { errno: EIO, ...(cause === undefined ? {} : { cause }) });
}

/** ERR_OUT_OF_RANGE. */
export function outOfRange(blobId: string, offset: number, length: number, size: number): BackendError {
  return new BackendError('ERR_OUT_OF_RANGE', `Cannot read ${length} bytes at ${offset} of blob ${blobId}: the blob has ${size} bytes`, { errno: EIO, offset });
}

/** ERR_ABORTED, carrying the signal's reason as cause. */
export function aborted(blobId: string, signal: AbortSignal): BackendError {
  return new BackendError('ERR_ABORTED', `Cannot read blob ${blobId}: the request was aborted`, { errno: EINTR, cause: signal.reason });
}

/** ERR_CLOSED. */
export function closedBackend(type: string): BackendError {
  return new BackendError('ERR_CLOSED', `Cannot use the ${type} backend: it is closed`, { errno: EIO });
}

/** Run one read, recording its latency, size and outcome in `metrics`. */
export async function measuredRead(metrics: BackendMetrics, run: () => Promise<Uint8Array>): Promise<Uint8Array> {
  const t0 = performance.now();
  let out: Uint8Array;
  try {
    out = await run();
  } catch (e) {
    recordRead(metrics, performance.now() - t0, 0, false);
    throw e;
  }
  recordRead(metrics, performance.now() - t0, out.length, true);
  return out;
}
