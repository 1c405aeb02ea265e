/**
 * Start-up traces of the containers the snapshotter serves. When a container's snapshot is made
 * on a Nydus image, the recorder asks nydusd (GET /api/v1/metrics/trace of the image's mount,
 * since that moment) every `pollMs` which files have been read, until the reads go quiet for
 * `quietMs` after the first one, or `maxMs` passed, or `maxFiles` files were read; then it keeps
 * the trace under `<root>/traces/<image key>/<time>.json` (the newest `keep` per image), written
 * to a temporary name and renamed. `nydus-snapshotter trace IMAGE` prints the newest as a
 * prefetch list, for `nydusify optimize` or `nydusify profile push`.
 *
 * A mount shared by several containers of one image traces them together: files an earlier
 * container already read are not read again (the page cache has them) and show in the earlier
 * trace only.
 * @module
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';
import { UsageError } from '../util/errors.js';

/** One file of a trace, as nydusd reports it. */
export interface TracedFile {
  path: string;
  first_access_ms: number;
  first_access_unix_ms: number;
  bytes: number;
  ranges: Array<[number, number]>;
}

/** A kept trace. */
export interface ContainerTrace {
  image: string;
  /** The container's snapshot key. */
  key: string;
  startedUnixMs: number;
  endedUnixMs: number;
  /** Why recording stopped: quiet, time, size, gone (the mount went away), closed. */
  reason: 'quiet' | 'time' | 'size' | 'gone' | 'closed';
  files: TracedFile[];
}

/** Options of the recorder. */
export interface TraceRecorderOptions {
  /** `<root>/traces`. */
  dir: string;
  /** The files read on `mountpoint` since `sinceUnixMs` (nydusd's trace API); rejects when the mount is gone. */
  fetchTrace: (mountpoint: string, sinceUnixMs: number, maxFiles: number) => Promise<TracedFile[]>;
  logger: Logger;
  pollMs?: number;
  quietMs?: number;
  maxMs?: number;
  maxFiles?: number;
  /** Traces kept per image. */
  keep?: number;
}

/** The directory name of an image's traces. */
export function imageTraceKey(imageRef: string): string {
  return createHash('sha256').update(imageRef).digest('hex').slice(0, 24);
}

/** Records and keeps containers' start-up traces. */
export class TraceRecorder {
  readonly #o: Required<Omit<TraceRecorderOptions, 'logger' | 'fetchTrace' | 'dir'>> & TraceRecorderOptions;
  readonly #running = new Set<Promise<void>>();
  readonly #stop = new AbortController();

  constructor(o: TraceRecorderOptions) {
    this.#o = { pollMs: 500, quietMs: 2000, maxMs: 60_000, maxFiles: 50_000, keep: 5, ...o };
  }

  /** Start recording the trace of container `key` on the image `imageRef` mounted at `mountpoint`. */
  start(imageRef: string, key: string, mountpoint: string): void {
    const p = this.#record(imageRef, key, mountpoint).catch((e: unknown) => this.#o.logger.warn('cannot record a start-up trace', { image: imageRef, key, error: (e as Error).message }));
    this.#running.add(p);
    void p.finally(() => this.#running.delete(p));
  }

  async #record(imageRef: string, key: string, mountpoint: string): Promise<void> {
    const t0 = Date.now();
    let files: TracedFile[] = [];
    let lastCount = 0;
    let lastChange = t0;
    let reason: ContainerTrace['reason'];
    for (;;) {
      await new Promise<void>((resolve) => {
        const stop = this.#stop.signal;
        const done = (): void => {
          clearTimeout(t);
          stop.removeEventListener('abort', done);
          resolve();
        };
        const t = setTimeout(done, this.#o.pollMs);
        stop.addEventListener('abort', done, { once: true });
      });
      if (this.#stop.signal.aborted) { reason = 'closed'; break; }
      try {
        files = await this.#o.fetchTrace(mountpoint, t0, this.#o.maxFiles);
      } catch {
        reason = 'gone';
        break;
      }
      const now = Date.now();
      if (files.length !== lastCount) { lastCount = files.length; lastChange = now; }
      if (files.length >= this.#o.maxFiles) { reason = 'size'; break; }
      if (files.length > 0 && now - lastChange >= this.#o.quietMs) { reason = 'quiet'; break; }
      if (now - t0 >= this.#o.maxMs) { reason = 'time'; break; }
    }
    if (files.length === 0) return;
    this.#save({ image: imageRef, key, startedUnixMs: t0, endedUnixMs: Date.now(), reason, files });
  }

  #save(t: ContainerTrace): void {
    const dir = join(this.#o.dir, imageTraceKey(t.image));
    mkdirSync(dir, { recursive: true });
    const name = `${String(t.startedUnixMs).padStart(15, '0')}-${createHash('sha256').update(t.key).digest('hex').slice(0, 8)}.json`;
    const tmp = join(dir, `.${name}.tmp`);
    writeFileSync(tmp, JSON.stringify(t));
    renameSync(tmp, join(dir, name));
    const all = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
    for (const old of all.slice(0, Math.max(0, all.length - this.#o.keep))) rmSync(join(dir, old), { force: true });
    this.#o.logger.info('start-up trace kept', { image: t.image, key: t.key, files: t.files.length, reason: t.reason, ms: t.endedUnixMs - t.startedUnixMs });
  }

  /** Stop recording; traces being recorded are kept as far as they got. */
  async close(): Promise<void> {
    this.#stop.abort();
    await Promise.all([...this.#running]);
  }
}

/** The kept traces of `imageRef` under `dir` (`<root>/traces`), newest first. */
export function readTraces(dir: string, imageRef: string): ContainerTrace[] {
  const d = join(dir, imageTraceKey(imageRef));
  let names: string[];
  try {
    names = readdirSync(d).filter((n) => n.endsWith('.json')).sort().reverse();
  } catch {
    throw new UsageError('ERR_NO_TRACE', `Cannot find a start-up trace of ${imageRef} under ${dir}: no container of that image has run (image references must be written as they were pulled)`);
  }
  const out: ContainerTrace[] = [];
  for (const n of names) {
    try {
      const t = JSON.parse(readFileSync(join(d, n), 'utf8')) as ContainerTrace;
      if (t.image === imageRef && Array.isArray(t.files) && t.files.every((f: unknown) => typeof (f as TracedFile | null)?.path === 'string')) out.push(t);
    } catch {
      // A damaged trace is skipped.
    }
  }
  if (out.length === 0) throw new UsageError('ERR_NO_TRACE', `Cannot find a start-up trace of ${imageRef} under ${dir}`);
  return out;
}
