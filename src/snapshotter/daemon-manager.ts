/**
 * The one nydusd every image of the snapshotter is mounted by.
 *
 * Why one shared daemon rather than one per image: every image mount is an API call to a daemon
 * that is already running (no process start, ~1 s for a Node daemon, on a container's start
 * path); all images share one blob cache instance and its backend connections; and there is one
 * process to watch, restart and find again after a snapshotter restart. The price is a shared
 * fate — if nydusd dies, every image mount dies with it (the snapshotter restarts it and mounts
 * the images again for new containers; running containers keep the dead mount) — and the number
 * of mounts one daemon serves is bounded by its libuv threads (UV_THREADPOOL_SIZE=64 with four
 * FUSE workers per mount: 14 images mounted at once).
 *
 * The daemon is spawned detached (own session, output to `<root>/nydusd/nydusd.log`, PID in
 * `<root>/nydusd/nydusd.pid`, API on `<root>/nydusd/api.sock`), so it outlives the snapshotter: a
 * snapshotter restart does not break running containers, and the next snapshotter finds the
 * daemon again by its PID file and API socket and mounts whatever is missing. Liveness: the
 * child's `exit` event for a daemon this process started; for a daemon found at start-up (not a
 * child, so no event exists) a 2 s check of its PID. When it dies, it is started again and every
 * image that should be mounted is mounted again (at most five restarts a minute). It is kept
 * running while nothing is mounted (the next container starts without waiting for it) and
 * stopped at snapshotter shutdown only when nothing is mounted.
 * @module
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiRequest } from '../api/api-client.js';
import { topMountAt, unmountPath } from '../fuse/mount.js';
import type { Logger } from '../util/logger.js';
import { SnapshotError } from './snapshot-error.js';
import { processAlive } from '../util/process-alive.js';
import type { TracedFile } from './trace-recorder.js';

/** Options of the manager. */
export interface DaemonManagerOptions {
  /** Directory of the daemon's socket, PID file and log (`<root>/nydusd`). */
  dir: string;
  /** nydusd executable. */
  nydusdPath: string;
  /** nydusd's `--log-level`. */
  logLevel: string;
  /** nydusd's `--id`. */
  id: string;
  logger: Logger;
  /** How long nydusd may take to answer its API after start (default 30 s). */
  startTimeoutMs?: number;
}

/** One image mount the daemon should have. */
export interface MountSpec {
  /** Absolute, canonical directory. */
  mountpoint: string;
  /** Bootstrap file. */
  source: string;
  /** nydusd JSON config text. */
  config: string;
  /** Files to prefetch at mount (the API's `prefetch_files`), from a prefetch profile or label. */
  prefetchFiles?: readonly string[];
}

/** A daemon being watched. */
interface Watched {
  pid: number;
  /** Stops watching (the exit listener or the PID check). */
  unwatch(): void;
}

const RESTARTS_PER_MINUTE = 5;
const PID_CHECK_MS = 2000;

/** Starts, finds, watches and restarts the shared nydusd, and mounts images through its API. */
export class DaemonManager {
  readonly #o: DaemonManagerOptions;
  readonly #log: Logger;
  readonly #wanted = new Map<string, MountSpec>();
  #daemon: Watched | undefined;
  #busy: Promise<unknown> = Promise.resolve();
  #closing = false;
  #restarts: number[] = [];

  constructor(options: DaemonManagerOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'nydusd' });
  }

  /** The API socket. */
  get apiSocket(): string {
    return join(this.#o.dir, 'api.sock');
  }

  /** The PID file. */
  get pidFile(): string {
    return join(this.#o.dir, 'nydusd.pid');
  }

  /** PID of the daemon, when one is known to run. */
  get pid(): number | undefined {
    return this.#daemon?.pid;
  }

  /** Run daemon operations one at a time. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#busy.then(fn, fn);
    this.#busy = next.catch(() => undefined);
    return next;
  }

  async #answers(): Promise<boolean> {
    try {
      const r = await apiRequest(this.apiSocket, 'GET', '/api/v1/daemon', undefined, 5000);
      return r.status === 200;
    } catch {
      return false;
    }
  }

  /** The PID of a daemon of ours from the PID file, if it runs (its command line names our socket). */
  #runningFromPidFile(): number | undefined {
    let pid: number;
    try {
      pid = Number(readFileSync(this.pidFile, 'utf8').trim());
    } catch {
      return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return undefined;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes(this.apiSocket)) return undefined;
    } catch {
      return undefined;
    }
    return pid;
  }

  #watchPid(pid: number): Watched {
    const t = setInterval(() => {
      if (!processAlive(pid)) this.#onDeath(pid, 'its process is gone');
    }, PID_CHECK_MS);
    t.unref();
    return { pid, unwatch: () => clearInterval(t) };
  }

  #onDeath(pid: number, why: string): void {
    if (this.#daemon?.pid !== pid) return;
    this.#daemon.unwatch();
    this.#daemon = undefined;
    if (this.#closing) return;
    this.#log.error('nydusd died', { pid, reason: why, mounts: this.#wanted.size });
    if (this.#wanted.size === 0) return;
    const now = Date.now();
    this.#restarts = this.#restarts.filter((t) => now - t < 60_000);
    if (this.#restarts.length >= RESTARTS_PER_MINUTE) {
      this.#log.error('nydusd keeps dying; not restarting it until the next mount', { restarts: this.#restarts.length });
      return;
    }
    this.#restarts.push(now);
    void this.#serial(() => this.#restoreMounts()).catch((e: unknown) => {
      this.#log.error('cannot restart nydusd', { error: (e as Error).message });
    });
  }

  async #spawn(): Promise<Watched> {
    mkdirSync(this.#o.dir, { recursive: true });
    rmSync(this.apiSocket, { force: true });
    const logFd = openSync(join(this.#o.dir, 'nydusd.log'), 'a');
    let child;
    try {
      child = spawn(this.#o.nydusdPath, ['--apisock', this.apiSocket, '--id', this.#o.id, '--log-level', this.#o.logLevel], {
        detached: true, stdio: ['ignore', logFd, logFd],
      });
    } finally {
      closeSync(logFd);
    }
    const spawnError = new Promise<Error>((res) => child.once('error', res));
    const exited = new Promise<string>((res) => child.once('exit', (code, sig) => res(`exit ${code ?? sig}`)));
    child.unref();
    const end = Date.now() + (this.#o.startTimeoutMs ?? 30_000);
    for (;;) {
      const early = await Promise.race([spawnError.then((e) => e.message), exited, new Promise<undefined>((r) => setTimeout(r, 10))]);
      if (early !== undefined) throw new SnapshotError('ERR_NYDUS_IMAGE', `Cannot start nydusd (${this.#o.nydusdPath}): ${early}; see ${join(this.#o.dir, 'nydusd.log')}`);
      if (existsSync(this.apiSocket) && await this.#answers()) break;
      if (Date.now() > end) {
        if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
        throw new SnapshotError('ERR_NYDUS_IMAGE', `Cannot start nydusd: its API did not answer in ${this.#o.startTimeoutMs ?? 30_000} ms; see ${join(this.#o.dir, 'nydusd.log')}`);
      }
    }
    const pid = child.pid as number;
    writeFileSync(this.pidFile, `${pid}\n`);
    const onExit = (code: number | null, sig: string | null): void => this.#onDeath(pid, `exit ${code ?? sig}`);
    child.once('exit', onExit);
    this.#log.info('nydusd started', { pid, apisock: this.apiSocket });
    return { pid, unwatch: () => child.off('exit', onExit) };
  }

  /** A running daemon: the watched one if its API answers, else one found by the PID file, else a new one. */
  async #ensureDaemon(): Promise<void> {
    if (this.#closing) throw new SnapshotError('ERR_NYDUS_IMAGE', 'Cannot use nydusd: the snapshotter is shutting down');
    if (this.#daemon && await this.#answers()) return;
    if (this.#daemon) {
      this.#log.warn('nydusd does not answer; starting another', { pid: this.#daemon.pid });
      this.#daemon.unwatch();
      try { process.kill(this.#daemon.pid, 'SIGKILL'); } catch { /* gone */ }
      this.#daemon = undefined;
    }
    const found = this.#runningFromPidFile();
    if (found !== undefined && await this.#answers()) {
      this.#daemon = this.#watchPid(found);
      this.#log.info('attached to the running nydusd', { pid: found });
      return;
    }
    this.#daemon = await this.#spawn();
  }

  /** Mountpoints the daemon serves now. */
  async #daemonMounts(): Promise<Set<string>> {
    const r = await apiRequest(this.apiSocket, 'GET', '/api/v1/daemon');
    const coll = (r.body as { backend_collection?: Record<string, unknown> } | undefined)?.backend_collection ?? {};
    return new Set(Object.keys(coll));
  }

  async #mountNow(spec: MountSpec, served: Set<string>): Promise<void> {
    if (served.has(spec.mountpoint)) return;
    // A mount left by a dead daemon answers "Transport endpoint is not connected": take it away.
    if (await topMountAt(spec.mountpoint)) await unmountPath(spec.mountpoint);
    mkdirSync(spec.mountpoint, { recursive: true });
    const post = (files: readonly string[] | undefined): ReturnType<typeof apiRequest> => apiRequest(this.apiSocket, 'POST', `/api/v1/mount?mountpoint=${encodeURIComponent(spec.mountpoint)}`,
      { source: spec.source, config: spec.config, fs_type: 'rafs', ...(files?.length ? { prefetch_files: files } : {}) }, 60_000);
    let r = await post(spec.prefetchFiles);
    if (r.status >= 400 && r.status < 500 && spec.prefetchFiles?.length) {
      // A prefetch list must never keep an image from mounting: without it, the image's own table.
      this.#log.warn('nydusd refused the mount with a prefetch list; mounting without it', { mountpoint: spec.mountpoint, paths: spec.prefetchFiles.length, status: r.status, error: (r.body as { message?: string } | undefined)?.message });
      r = await post(undefined);
    }
    if (r.status >= 300) {
      const msg = (r.body as { message?: string } | undefined)?.message ?? JSON.stringify(r.body);
      throw new SnapshotError('ERR_NYDUS_IMAGE', `Cannot mount ${spec.source} at ${spec.mountpoint} with nydusd: ${msg}`);
    }
    this.#log.info('image mounted', { mountpoint: spec.mountpoint });
  }

  async #restoreMounts(): Promise<void> {
    await this.#ensureDaemon();
    const served = await this.#daemonMounts();
    for (const spec of this.#wanted.values()) {
      try {
        await this.#mountNow(spec, served);
      } catch (e) {
        this.#log.error('cannot mount image again', { mountpoint: spec.mountpoint, error: (e as Error).message });
      }
    }
  }

  /**
   * Start the daemon now if it does not run, without waiting (a bootstrap is being fetched: the
   * daemon starts meanwhile, and the mount that follows finds it running). Failures are logged;
   * the mount tries again.
   */
  prestart(): void {
    if (this.#closing) return;
    this.#serial(() => this.#ensureDaemon()).catch((e: unknown) => this.#log.warn('cannot start nydusd ahead of the mount', { error: (e as Error).message }));
  }

  /**
   * Have nydusd fetch `prefetchFiles` of the image into the blob cache without mounting it (at
   * pull: the image's first container then finds its start-up data local or in flight). Returns
   * once nydusd took the request; failures are logged, never thrown.
   */
  warm(spec: MountSpec & { prefetchFiles: readonly string[] }): Promise<void> {
    return this.#serial(async () => {
      await this.#ensureDaemon();
      const r = await apiRequest(this.apiSocket, 'PUT', '/api/v1/daemon/prefetch', { source: spec.source, config: spec.config, prefetch_files: spec.prefetchFiles }, 30_000);
      if (r.status >= 300) throw new Error((r.body as { message?: string } | undefined)?.message ?? `status ${r.status}`);
      this.#log.info('cache warming started', { source: spec.source, paths: spec.prefetchFiles.length });
    }).catch((e: unknown) => this.#log.warn('cannot warm the cache at pull', { source: spec.source, error: (e as Error).message }));
  }

  /** Mount an image (nothing happens when the daemon already serves that mountpoint). Starts the daemon when needed. */
  mount(spec: MountSpec): Promise<void> {
    return this.#serial(async () => {
      await this.#ensureDaemon();
      await this.#mountNow(spec, await this.#daemonMounts());
      this.#wanted.set(spec.mountpoint, spec);
    });
  }

  /** Make sure every image in `specs` is mounted (used at start-up); failures are logged, not thrown. */
  restore(specs: readonly MountSpec[]): Promise<void> {
    for (const s of specs) this.#wanted.set(s.mountpoint, s);
    if (specs.length === 0) return Promise.resolve();
    return this.#serial(() => this.#restoreMounts());
  }

  /** Unmount `mountpoint` (through the API when the daemon runs, else by the kernel) and remove the directory. */
  unmount(mountpoint: string): Promise<void> {
    return this.#serial(async () => {
      this.#wanted.delete(mountpoint);
      let done = false;
      if (this.#daemon || this.#runningFromPidFile() !== undefined) {
        try {
          const r = await apiRequest(this.apiSocket, 'DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(mountpoint)}`);
          if (r.status < 300) done = true;
          else if (r.status !== 404) this.#log.warn('nydusd could not unmount', { mountpoint, status: r.status, body: r.body });
        } catch (e) {
          this.#log.warn('nydusd did not answer the unmount', { mountpoint, error: (e as Error).message });
        }
      }
      if (await topMountAt(mountpoint)) {
        await unmountPath(mountpoint);
        done = true;
      }
      try { rmdirSync(mountpoint); } catch { /* already gone or busy */ }
      if (done) this.#log.info('image unmounted', { mountpoint });
    });
  }

  /** Mountpoints this manager keeps mounted. */
  wanted(): string[] {
    return [...this.#wanted.keys()];
  }

  /** Unmount what the daemon serves beyond `keep` (left over from an earlier run). */
  pruneExcept(keep: ReadonlySet<string>): Promise<void> {
    return this.#serial(async () => {
      const found = this.#daemon?.pid ?? this.#runningFromPidFile();
      if (found === undefined || !(await this.#answers())) return;
      for (const mp of await this.#daemonMounts()) {
        if (keep.has(mp)) continue;
        this.#log.info('unmounting an image nothing uses', { mountpoint: mp });
        await apiRequest(this.apiSocket, 'DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(mp)}`).catch(() => undefined);
        await unmountPath(mp).catch(() => undefined);
      }
    });
  }

  /** The files read on `mountpoint` since `sinceUnixMs`, in first-access order (GET /api/v1/metrics/trace). */
  async trace(mountpoint: string, sinceUnixMs: number, maxFiles: number): Promise<TracedFile[]> {
    const r = await apiRequest(this.apiSocket, 'GET', `/api/v1/metrics/trace?id=${encodeURIComponent(mountpoint)}&since_unix_ms=${Math.floor(sinceUnixMs)}&max_files=${maxFiles}`);
    if (r.status !== 200 || !Array.isArray(r.body)) throw new SnapshotError('ERR_NYDUS_IMAGE', `Cannot read nydusd's trace of ${mountpoint}: status ${r.status}`);
    return r.body as TracedFile[];
  }

  /** nydusd's backend metrics of one mount (GET /api/v1/metrics/backend). */
  async backendMetrics(mountpoint: string): Promise<unknown> {
    const r = await apiRequest(this.apiSocket, 'GET', `/api/v1/metrics/backend?id=${encodeURIComponent(mountpoint)}`);
    if (r.status !== 200) throw new SnapshotError('ERR_NYDUS_IMAGE', `Cannot read nydusd's metrics of ${mountpoint}: status ${r.status}`);
    return r.body;
  }

  /**
   * Stop watching the daemon. It keeps running (and serving running containers) unless nothing
   * is mounted, or `stopDaemon` is set: then it is stopped by its PID (SIGTERM, SIGKILL after 10 s).
   */
  close(o: { stopDaemon: boolean }): Promise<void> {
    return this.#serial(async () => {
      this.#closing = true;
      const d = this.#daemon;
      this.#daemon = undefined;
      d?.unwatch();
      const pid = d?.pid ?? this.#runningFromPidFile();
      if (pid === undefined) return;
      let mounted = 0;
      try {
        mounted = (await this.#daemonMounts()).size;
      } catch {
        mounted = 0;
      }
      if (mounted > 0 && !o.stopDaemon) {
        this.#log.info('leaving nydusd running for the mounted images', { pid, mounts: mounted });
        return;
      }
      try { process.kill(pid, 'SIGTERM'); } catch { return; }
      const end = Date.now() + 10_000;
      while (processAlive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      if (processAlive(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      rmSync(this.pidFile, { force: true });
      this.#log.info('nydusd stopped', { pid });
    });
  }
}
