/**
 * The `localfs` backend: blobs are files in a directory (`<dir>/<blob id>`), optionally looked up
 * in more directories (`alt_dirs`), or one file serving every blob id (`blob_file`). Reads are
 * positioned reads on file handles kept open per blob.
 * @module
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendError, UsageError } from '../../../util/errors.js';
import { newBackendMetrics, type BackendMetrics, type BlobBackend } from '../../blob-backend.js';
import { nullLogger, type Logger } from '../../../util/logger.js';
import { ConfigFields } from '../config-fields.js';
import {
  EIO, aborted, badBlobId, blobNotFound, checkReadArgs, closedBackend, isPlainBlobId, measuredRead, outOfRange,
} from '../backend-errors.js';

/** `device.backend.config` of a localfs backend (nydusd's LocalFsConfig). */
export interface LocalfsConfig {
  /** Directory holding `<blob id>` files. */
  readonly dir?: string;
  /** One file that serves every blob id (takes precedence over `dir`). */
  readonly blobFile?: string;
  /** More directories searched, in order, after `dir`. */
  readonly altDirs: readonly string[];
}

/** Options of {@link createLocalfsBackend}. */
export interface LocalfsBackendOptions {
  logger?: Logger;
}

/** Validate nydusd's JSON `{dir, blob_file, alt_dirs}`. */
export function parseLocalfsConfig(raw: unknown, options: LocalfsBackendOptions = {}): LocalfsConfig {
  const f = new ConfigFields(raw, 'device.backend.config');
  const dir = f.string('dir', { emptyIsAbsent: true });
  const blobFile = f.string('blob_file', { emptyIsAbsent: true });
  const altDirs = f.stringArray('alt_dirs') ?? [];
  f.warnUnknown(options.logger ?? nullLogger);
  if (dir === undefined && blobFile === undefined) {
    throw new UsageError('ERR_BAD_CONFIG', 'Cannot use backend config: localfs needs device.backend.config.dir or device.backend.config.blob_file');
  }
  return { ...(dir !== undefined ? { dir } : {}), ...(blobFile !== undefined ? { blobFile } : {}), altDirs };
}

interface OpenBlob {
  fh: FileHandle;
  size: number;
  path: string;
}

/** Create a localfs backend. */
export function createLocalfsBackend(config: LocalfsConfig, options: LocalfsBackendOptions = {}): BlobBackend {
  return new LocalfsBackend(config, options.logger ?? nullLogger);
}

class LocalfsBackend implements BlobBackend {
  readonly type = 'localfs';
  readonly metrics: BackendMetrics = newBackendMetrics();
  readonly #config: LocalfsConfig;
  readonly #logger: Logger;
  /** Open handles by blob id (the promise, so concurrent first reads share one open). */
  readonly #handles = new Map<string, Promise<OpenBlob>>();
  #closed = false;

  constructor(config: LocalfsConfig, logger: Logger) {
    this.#config = config;
    this.#logger = logger;
  }

  #candidates(blobId: string): string[] {
    if (this.#config.blobFile !== undefined) return [this.#config.blobFile];
    const dirs = [...(this.#config.dir !== undefined ? [this.#config.dir] : []), ...this.#config.altDirs];
    return dirs.map((d) => join(d, blobId));
  }

  async #openBlob(blobId: string): Promise<OpenBlob> {
    for (const path of this.#candidates(blobId)) {
      let fh: FileHandle;
      try {
        fh = await open(path, 'r');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') continue;
        throw new BackendError('ERR_BACKEND_IO', `Cannot open blob ${blobId} at ${path}: ${(e as Error).message}`, { errno: EIO, path, cause: e });
      }
      try {
        const st = await fh.stat();
        if (!st.isFile()) throw new BackendError('ERR_BACKEND_IO', `Cannot open blob ${blobId} at ${path}: not a regular file`, { errno: EIO, path });
        this.#logger.debug('localfs: opened blob', { blobId, path, size: st.size });
        return { fh, size: st.size, path };
      } catch (e) {
        await fh.close().catch(() => undefined);
        throw e instanceof BackendError ? e : new BackendError('ERR_BACKEND_IO', `Cannot stat blob ${blobId} at ${path}: ${(e as Error).message}`, { errno: EIO, path, cause: e });
      }
    }
    throw blobNotFound('localfs', blobId, `no file ${this.#candidates(blobId).join(' or ')}`);
  }

  /** The open blob, opening it on first use; a failed open is forgotten so a later call retries. */
  #get(blobId: string): Promise<OpenBlob> {
    if (this.#closed) return Promise.reject(closedBackend(this.type));
    if (this.#config.blobFile === undefined && !isPlainBlobId(blobId)) return Promise.reject(badBlobId(this.type, blobId));
    let p = this.#handles.get(blobId);
    if (!p) {
      p = this.#openBlob(blobId);
      this.#handles.set(blobId, p);
      p.catch(() => {
        if (this.#handles.get(blobId) === p) this.#handles.delete(blobId);
      });
    }
    return p;
  }

  async blobSize(blobId: string, signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) throw aborted(blobId, signal);
    return (await this.#get(blobId)).size;
  }

  read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    checkReadArgs(blobId, offset, length);
    return measuredRead(this.metrics, async () => {
      if (signal?.aborted) throw aborted(blobId, signal);
      if (this.#closed) throw closedBackend(this.type);
      if (length === 0) return new Uint8Array(0);
      const b = await this.#get(blobId);
      if (offset + length > b.size) throw outOfRange(blobId, offset, length, b.size);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        if (signal?.aborted) throw aborted(blobId, signal);
        let n: number;
        try {
          ({ bytesRead: n } = await b.fh.read(out, done, length - done, offset + done));
        } catch (e) {
          throw new BackendError('ERR_BACKEND_IO', `Cannot read ${length} bytes at ${offset} of blob ${blobId} (${b.path}): ${(e as Error).message}`, { errno: EIO, path: b.path, offset, cause: e });
        }
        if (n === 0) throw new BackendError('ERR_SHORT_READ', `Cannot read ${length} bytes at ${offset} of blob ${blobId} (${b.path}): the file ended at ${offset + done}`, { errno: EIO, path: b.path, offset });
        done += n;
      }
      return out;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const all = [...this.#handles.values()];
    this.#handles.clear();
    await Promise.all(all.map(async (p) => {
      try {
        await (await p).fh.close();
      } catch {
        // a failed open has nothing to close
      }
    }));
  }
}
