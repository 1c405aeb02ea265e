/**
 * File system metrics in nydusd's shapes: data read, per-operation hits and errors, a latency
 * histogram, per-file read counters and the access pattern (each file's first access, in order).
 * @module
 */

/** Operations counted, in Nydus's order (Read is index 4). */
export const FOP_NAMES = [
  'getattr', 'readlink', 'open', 'release', 'read', 'statfs', 'getxattr', 'listxattr', 'opendir',
  'lookup', 'readdir', 'readdirplus', 'access', 'forget', 'batch_forget',
] as const;

/** One operation name. */
export type FopName = (typeof FOP_NAMES)[number];

/** Latency bucket upper bounds in microseconds (last bucket: above). */
export const LATENCY_BUCKETS_US = [1, 20, 50, 100, 500, 1000, 2000, 4000] as const;

/** Per-file counters (`iostats_files`). */
export interface FileStats {
  nid: number;
  path: string;
  nrOpens: number;
  nrReads: number;
  bytesRead: number;
  lastAccessSecs: number;
}

/** One access-pattern record (`access_pattern`). */
export interface AccessRecord {
  nid: number;
  path: string;
  nrRead: number;
  firstAccessTimeSecs: number;
  firstAccessTimeNanos: number;
}

/** Metrics of one mounted file system. */
export class FsMetrics {
  dataRead = 0;
  nrOpens = 0;
  readonly fopHits = new Array<number>(FOP_NAMES.length).fill(0);
  readonly fopErrors = new Array<number>(FOP_NAMES.length).fill(0);
  /** Per op: counts per latency bucket (LATENCY_BUCKETS_US.length + 1). */
  readonly latency = FOP_NAMES.map(() => new Array<number>(LATENCY_BUCKETS_US.length + 1).fill(0));
  /** Sum of latencies per op in microseconds. */
  readonly latencyTotalUs = new Array<number>(FOP_NAMES.length).fill(0);
  readonly files = new Map<number, FileStats>();
  readonly pattern = new Map<number, AccessRecord>();
  /** Files read most recently, newest last (bounded). */
  readonly latestRead: number[] = [];
  readonly options: { iostatsFiles: boolean; accessPattern: boolean; latestReadFiles: boolean };

  constructor(options: { iostatsFiles: boolean; accessPattern: boolean; latestReadFiles: boolean }) {
    this.options = options;
  }

  /** Count one finished operation. */
  op(name: FopName, startNs: bigint, ok: boolean): void {
    const k = FOP_NAMES.indexOf(name);
    if (ok) this.fopHits[k] = (this.fopHits[k] ?? 0) + 1;
    else this.fopErrors[k] = (this.fopErrors[k] ?? 0) + 1;
    const us = Number(process.hrtime.bigint() - startNs) / 1000;
    this.latencyTotalUs[k] = (this.latencyTotalUs[k] ?? 0) + us;
    let b = LATENCY_BUCKETS_US.findIndex((x) => us <= x);
    if (b < 0) b = LATENCY_BUCKETS_US.length;
    const row = this.latency[k] as number[];
    row[b] = (row[b] ?? 0) + 1;
  }

  /** Count a read of `bytes` from file `nid`. */
  read(nid: number, path: () => string, bytes: number): void {
    this.dataRead += bytes;
    if (this.options.iostatsFiles) {
      const f = this.files.get(nid) ?? { nid, path: path(), nrOpens: 0, nrReads: 0, bytesRead: 0, lastAccessSecs: 0 };
      f.nrReads++;
      f.bytesRead += bytes;
      f.lastAccessSecs = Math.floor(Date.now() / 1000);
      this.files.set(nid, f);
    }
    if (this.options.accessPattern) {
      const p = this.pattern.get(nid);
      if (p) p.nrRead++;
      else {
        const now = Date.now();
        this.pattern.set(nid, { nid, path: path(), nrRead: 1, firstAccessTimeSecs: Math.floor(now / 1000), firstAccessTimeNanos: (now % 1000) * 1e6 });
      }
    }
    if (this.options.latestReadFiles) {
      const i = this.latestRead.indexOf(nid);
      if (i >= 0) this.latestRead.splice(i, 1);
      this.latestRead.push(nid);
      if (this.latestRead.length > 1024) this.latestRead.shift();
    }
  }

  /** Count an open of file `nid`. */
  open(nid: number, path: () => string): void {
    this.nrOpens++;
    if (this.options.iostatsFiles) {
      const f = this.files.get(nid) ?? { nid, path: path(), nrOpens: 0, nrReads: 0, bytesRead: 0, lastAccessSecs: 0 };
      f.nrOpens++;
      this.files.set(nid, f);
    }
  }
}
