/**
 * Where blob bytes come from: a directory, an HTTP server, a registry. One interface, one
 * factory (`createBackend`, in create-backend.ts), and a conformance suite every backend passes.
 * @module
 */

/** Counters every backend keeps (exported by the daemon's /api/v1/metrics/backend). */
export interface BackendMetrics {
  /** Completed read requests. */
  readCount: number;
  /** Failed read requests (after retries). */
  readErrors: number;
  /** Bytes returned by reads. */
  readBytes: number;
  /** Sum of read latencies in milliseconds (for the mean). */
  readLatencyMsTotal: number;
  /** Latency histogram bucket upper bounds in ms, and counts (last bucket is +Inf). */
  latencyBucketsMs: readonly number[];
  latencyCounts: number[];
}

/** Random access to the blobs of one backend. */
export interface BlobBackend {
  /** Config type name, e.g. "localfs", "http", "registry". */
  readonly type: string;
  readonly metrics: BackendMetrics;
  /** Size of blob `blobId` in bytes (BackendError ERR_BLOB_NOT_FOUND when absent). */
  blobSize(blobId: string, signal?: AbortSignal): Promise<number>;
  /**
   * Exactly `length` bytes of blob `blobId` from `offset`. Retries transient faults within the
   * backend's limits, then throws BackendError (errno EIO) — never returns short data. The bytes
   * are the caller's: a fresh buffer the backend keeps no reference to (the blob cache may move
   * it to a decoding thread, which leaves it empty here).
   */
  read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
  /** Release connections and handles. */
  close(): Promise<void>;
}

/** A backend's configuration as nydusd's JSON has it: `device.backend`. */
export interface BackendConfig {
  type: string;
  config: Record<string, unknown>;
}

/** A fresh metrics record. */
export function newBackendMetrics(): BackendMetrics {
  const latencyBucketsMs = [1, 5, 10, 50, 100, 500, 1000, 5000];
  return { readCount: 0, readErrors: 0, readBytes: 0, readLatencyMsTotal: 0, latencyBucketsMs, latencyCounts: new Array<number>(latencyBucketsMs.length + 1).fill(0) };
}

/** Record one finished read. */
export function recordRead(m: BackendMetrics, ms: number, bytes: number, ok: boolean): void {
  if (!ok) {
    m.readErrors++;
    return;
  }
  m.readCount++;
  m.readBytes += bytes;
  m.readLatencyMsTotal += ms;
  let k = m.latencyBucketsMs.findIndex((b) => ms <= b);
  if (k < 0) k = m.latencyBucketsMs.length;
  m.latencyCounts[k] = (m.latencyCounts[k] ?? 0) + 1;
}
