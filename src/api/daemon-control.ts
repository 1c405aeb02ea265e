/**
 * Answers API requests from the daemon's state, in nydusd's v1 JSON shapes.
 * @module
 */
import { FOP_NAMES, LATENCY_BUCKETS_US } from '../rafs/fs-metrics.js';
import { FIRST_READ_BUCKETS_MS } from '../rafs/first-read-latency.js';
import type { Daemon, MountedImage } from '../daemon/daemon.js';
import { parseDaemonConfig } from '../daemon/config.js';
import type { LevelledLogger } from '../daemon/stream-logger.js';
import { ApiError, type ApiRequest, type DaemonControl } from './api-server.js';

/** Package version reported by GET /api/v1/daemon. */
export const PACKAGE_VERSION = '0.1.0';

/** Options of the control. */
export interface ControlOptions {
  daemon: Daemon;
  logger: LevelledLogger;
  /** Called for PUT /api/v1/daemon/exit. */
  onExit: () => void;
}

function pick(d: Daemon, id: string | undefined): MountedImage {
  if (id !== undefined) {
    const m = d.mounts.get(id);
    if (!m) throw new ApiError(404, `no mount with id ${id} (ids are mountpoints: ${[...d.mounts.keys()].join(', ') || 'none'})`);
    return m;
  }
  const first = d.mounts.values().next();
  if (first.done) throw new ApiError(404, 'nothing is mounted');
  return first.value;
}

function fsMetrics(m: MountedImage): object {
  const x = m.fs.metrics;
  return {
    id: m.mountpoint, files_account_enabled: x.options.iostatsFiles, access_pattern_enabled: x.options.accessPattern,
    measure_latency: true, data_read: x.dataRead, nr_opens: x.nrOpens,
    fop_hits: x.fopHits, fop_errors: x.fopErrors, fop_names: FOP_NAMES,
    fop_cumulative_latency_total: x.latencyTotalUs.map((v) => Math.round(v)),
    read_latency_dist: x.latency[FOP_NAMES.indexOf('read')], latency_buckets_us: LATENCY_BUCKETS_US,
    latency_dist: Object.fromEntries(FOP_NAMES.map((n, k) => [n, x.latency[k]])),
  };
}

function backendMetrics(m: MountedImage): object {
  const b = m.backend.metrics;
  return {
    id: m.mountpoint, backend_type: m.backend.type, read_count: b.readCount, read_errors: b.readErrors,
    read_amount_total: b.readBytes, read_latency_ms_total: Math.round(b.readLatencyMsTotal),
    read_latency_dist: b.latencyCounts, latency_buckets_ms: b.latencyBucketsMs,
  };
}

function cacheMetrics(m: MountedImage): object {
  const c = m.cache.metrics;
  return {
    id: m.mountpoint, underlying_files: m.blobs.map((b) => `${b.info.blobId}.blob.data`), store_path: m.config.cache.workDir,
    hits: c.hits, partial_hits: 0, whole_hits: c.hits, total: c.hits + c.misses, misses: c.misses,
    prefetch_data_amount: c.prefetchBytes, prefetch_requests_count: c.prefetchChunks, prefetch_workers: m.config.prefetch.threads,
    errors: c.errors, inflight: c.inflight,
    prefetch_begin_time_secs: Math.floor(m.prefetchTimes.begin / 1000), prefetch_begin_time_millis: m.prefetchTimes.begin % 1000,
    prefetch_end_time_secs: Math.floor(m.prefetchTimes.end / 1000), prefetch_end_time_millis: m.prefetchTimes.end % 1000,
  };
}

/** What a mount's start-up cost: first-read latency, backend traffic of its blobs, prefetch use. */
function startupMetrics(m: MountedImage): object {
  const f = m.firstRead;
  const sum = { requests: 0, bytes: 0, prefetchRequests: 0, prefetchBytes: 0, prefetchHits: 0, demandMisses: 0 };
  for (const b of m.blobs) {
    for (const k of Object.keys(sum) as Array<keyof typeof sum>) sum[k] += b.stats[k];
  }
  const served = m.served();
  const times = (t: { begin: number; end: number }): object => ({ begin_unix_ms: t.begin, end_unix_ms: t.end });
  return {
    id: m.mountpoint, driver: m.config.fsDriver, mounted_unix_ms: m.mountedAt,
    first_read_latency_ms: {
      buckets_ms: FIRST_READ_BUCKETS_MS, counts: f.counts, count: f.count,
      avg: f.count === 0 ? 0 : Math.round((f.totalMs / f.count) * 1000) / 1000, max: Math.round(f.maxMs * 1000) / 1000,
    },
    reads: served.reads, bytes_read: served.bytes,
    backend_requests: sum.requests, backend_bytes: sum.bytes,
    prefetch_requests: sum.prefetchRequests, prefetch_bytes: sum.prefetchBytes,
    demand_requests: sum.requests - sum.prefetchRequests, demand_bytes: sum.bytes - sum.prefetchBytes,
    prefetch_hits: sum.prefetchHits, demand_misses: sum.demandMisses,
    fetched_per_read: served.bytes === 0 ? 0 : Math.round((sum.bytes / served.bytes) * 1000) / 1000,
    prefetch: times(m.prefetchTimes), background_stream: times(m.streamTimes),
  };
}

/** Create the DaemonControl of `daemon`. */
export function createDaemonControl(o: ControlOptions): DaemonControl {
  const d = o.daemon;
  return {
    async handle(req: ApiRequest): Promise<unknown> {
      switch (req.kind) {
        case 'daemon-info':
          return {
            id: d.id, version: { package_ver: PACKAGE_VERSION, git_commit: 'unknown', build_time: '', profile: 'release', rustc: `node ${process.version}` },
            supervisor: null, state: d.state, start_time_secs: Math.floor(d.startedAt / 1000), prefetching: d.warming,
            backend_collection: Object.fromEntries([...d.mounts.values()].map((m) => [m.mountpoint, {
              backend_type: m.config.backend.type, mountpoint: m.mountpoint, source: m.source, fs_type: 'rafs', config: JSON.parse(m.configText) as unknown,
            }])),
          };
        case 'daemon-set-log-level':
          o.logger.level = req.level;
          return undefined;
        case 'trace': {
          const m = pick(d, req.id);
          if (!m.trace) throw new ApiError(400, 'access trace is off: set access_trace in the config');
          const t = m.trace.trace;
          const since = Math.max(0, req.sinceUnixMs - t.originUnixMs);
          const entries = await t.entries(m.trace.resolver, since, req.maxFiles);
          return entries.map((e) => ({
            path: e.path, ino: e.nid, first_access_ms: Math.round(e.firstAccessMs * 1000) / 1000,
            first_access_unix_ms: Math.round(t.originUnixMs + e.firstAccessMs), bytes: e.bytes, ranges: e.ranges,
          }));
        }
        case 'daemon-exit':
          setImmediate(o.onExit);
          return undefined;
        case 'mount': {
          const config = parseDaemonConfig(req.config, 'the mount config');
          await d.mount({ mountpoint: req.mountpoint, source: req.source, config, configText: req.config, prefetchFiles: req.prefetchFiles });
          return undefined;
        }
        case 'warm':
          d.warm({ source: req.source, config: parseDaemonConfig(req.config, 'the prefetch config'), files: req.prefetchFiles });
          return undefined;
        case 'umount':
          if (!d.mounts.has(req.mountpoint)) throw new ApiError(404, `nothing is mounted at ${req.mountpoint}`);
          await d.umount(req.mountpoint);
          return undefined;
        case 'metrics': {
          if (req.what === 'inflight') {
            return [...d.mounts.values()].map((m) => ({ id: m.mountpoint, inflight: m.session.stats.inflight, blobcache_inflight: m.cache.metrics.inflight, fuse_requests: m.session.stats.requests }));
          }
          const m = pick(d, req.id);
          switch (req.what) {
            case 'fs': return fsMetrics(m);
            case 'backend': return backendMetrics(m);
            case 'blobcache': return cacheMetrics(m);
            case 'startup': return startupMetrics(m);
            case 'files': {
              if (!m.config.iostatsFiles && !m.config.latestReadFiles) throw new ApiError(400, 'file metrics are off: set iostats_files (or latest_read_files) in the config');
              if (req.latest) return m.fs.metrics.latestRead.map((nid) => ({ ino: nid, path: m.fs.pathOf(nid) }));
              return [...m.fs.metrics.files.values()].map((f) => ({ ino: f.nid, path: f.path, nr_open: f.nrOpens, nr_read: f.nrReads, bytes_read: f.bytesRead, last_access_secs: f.lastAccessSecs }));
            }
            case 'pattern': {
              if (!m.config.accessPattern) throw new ApiError(400, 'access pattern is off: set access_pattern in the config');
              return [...m.fs.metrics.pattern.values()].map((p) => ({ ino: p.nid, path: p.path, nr_read: p.nrRead, first_access_time_secs: p.firstAccessTimeSecs, first_access_time_nanos: p.firstAccessTimeNanos }));
            }
          }
        }
      }
      return undefined;
    },
  };
}
