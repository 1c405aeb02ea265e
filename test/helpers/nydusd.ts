/**
 * Starting and stopping a real nydusd (bin/nydusd) for tests: the daemon is a child process,
 * stopped by its own PID, and its mountpoints are unmounted by path afterwards whatever happened.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { RafsImage } from '../../src/image/rafs-image.js';
import { fileSource } from '../../src/image/byte-source.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before } from 'node:test';
import { REPO_ROOT, cleanupTempDir, isMounted, runCli, tempDir, umount } from './mounts.js';
import { apiRequest, type ApiResponse } from '../../src/api/api-client.js';

/** A running daemon. */
export interface NydusdHandle {
  child: ChildProcess;
  pid: number;
  sock: string;
  /** Mountpoints this handle will unmount when stopped. */
  mounts: Set<string>;
  /** stderr so far. */
  log(): string;
  api(method: string, urlPath: string, body?: unknown): Promise<ApiResponse>;
  /** SIGTERM (then SIGKILL after 10 s), then unmount what is left. Safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILL, then unmount what is left. */
  kill(): Promise<void>;
}

/** A nydusd JSON config with a localfs or http backend and a blobcache. */
export function nydusdConfig(o: {
  backend: { type: 'localfs'; dir: string } | { type: 'http'; addr: string; retry_limit?: number; timeout?: number }
    | { type: 'registry'; scheme: 'http' | 'https'; host: string; repo: string; auth?: string; skip_verify?: boolean; retry_limit?: number; timeout?: number; proxy?: Record<string, unknown> };
  workDir?: string;
  digestValidate?: boolean;
  prefetch?: boolean;
  prefetchAll?: boolean;
  amplifyIo?: number;
  extra?: Record<string, unknown>;
}): string {
  const { type, ...cfg } = o.backend;
  return JSON.stringify({
    device: {
      backend: { type, config: cfg },
      cache: o.workDir ? { type: 'blobcache', config: { work_dir: o.workDir } } : { type: '' },
    },
    mode: 'direct', digest_validate: o.digestValidate ?? true, enable_xattr: true, iostats_files: true, access_pattern: true,
    latest_read_files: true, amplify_io: o.amplifyIo ?? 1048576,
    fs_prefetch: { enable: o.prefetch ?? false, threads_count: 4, merging_size: 1048576, bandwidth_rate: 0, prefetch_all: o.prefetchAll ?? false },
    ...o.extra,
  });
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string, child: ChildProcess, log: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nydusd exited (${child.exitCode ?? child.signalCode}) before ${what}:\n${log()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}:\n${log()}`);
}

/** Start nydusd with `args`; waits until the API socket answers and `mountpoint` (if any) is mounted. */
export async function startNydusd(o: { dir: string; config?: string; bootstrap?: string; mountpoint?: string; extraArgs?: string[]; name?: string }): Promise<NydusdHandle> {
  const sock = path.join(o.dir, `${o.name ?? 'nydusd'}.sock`);
  const args = ['--apisock', sock, '--log-level', 'debug'];
  if (o.config !== undefined) {
    const cfg = path.join(o.dir, `${o.name ?? 'nydusd'}.json`);
    fs.writeFileSync(cfg, o.config);
    args.push('--config', cfg);
  }
  if (o.bootstrap) args.push('--bootstrap', o.bootstrap);
  if (o.mountpoint) {
    fs.mkdirSync(o.mountpoint, { recursive: true });
    args.push('--mountpoint', o.mountpoint);
  }
  args.push(...(o.extraArgs ?? []));
  const child = spawn(process.env['NYDUSD_BIN'] ?? path.join(REPO_ROOT, 'bin/nydusd'), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19)); });
  const mounts = new Set<string>(o.mountpoint ? [o.mountpoint] : []);
  const log = (): string => stderr;
  let stopped = false;
  const cleanup = async (): Promise<void> => {
    for (const m of mounts) if (isMounted(m)) await umount(m);
  };
  const h: NydusdHandle = {
    child, pid: child.pid as number, sock, mounts, log,
    api: (method, urlPath, body) => apiRequest(sock, method, urlPath, body),
    async stop() {
      if (!stopped) {
        stopped = true;
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(t);
        }
      }
      await cleanup();
    },
    async kill() {
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      await cleanup();
    },
  };
  try {
    await waitFor(async () => fs.existsSync(sock) && (await apiRequest(sock, 'GET', '/api/v1/daemon').then(() => true, () => false)), 20_000, 'the API socket', child, log);
    if (o.mountpoint) {
      const mp = o.mountpoint;
      await waitFor(() => isMounted(mp), 20_000, `the mount at ${mp}`, child, log);
      // The kernel lists the mount before the daemon has finished INIT and registered it.
      await waitFor(async () => {
        const r = await apiRequest(sock, 'GET', '/api/v1/daemon').catch(() => undefined);
        const mounts = (r?.body as { backend_collection?: Record<string, unknown> } | undefined)?.backend_collection ?? {};
        return Object.keys(mounts).includes(mp);
      }, 20_000, `the daemon to report the mount at ${mp}`, child, log);
    }
  } catch (e) {
    await h.kill();
    throw e;
  }
  return h;
}

/** Mount through the API; the handle will unmount it when stopped. */
export async function apiMount(h: NydusdHandle, mountpoint: string, source: string, config: string, prefetchFiles: string[] = []): Promise<ApiResponse> {
  fs.mkdirSync(mountpoint, { recursive: true });
  h.mounts.add(mountpoint);
  return h.api('POST', `/api/v1/mount?mountpoint=${encodeURIComponent(mountpoint)}`, { source, fs_type: 'rafs', config, prefetch_files: prefetchFiles });
}

/**
 * Mount `source` through the API, run `fn` with the mountpoint's `?id=` query, and unmount
 * through the API whatever happened (asserting both answers).
 */
export async function withApiMount(h: NydusdHandle, mountpoint: string, source: string, config: string, fn: (idQuery: string) => Promise<void>): Promise<void> {
  const r = await apiMount(h, mountpoint, source, config);
  if (r.status !== 204) throw new Error(`mount at ${mountpoint} answered ${r.status}: ${JSON.stringify(r.body)}`);
  try {
    await fn(`?id=${encodeURIComponent(mountpoint)}`);
  } finally {
    const u = await h.api('DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(mountpoint)}`);
    if (u.status !== 204) throw new Error(`unmount of ${mountpoint} answered ${u.status}: ${JSON.stringify(u.body)}`);
  }
}

/** What {@link imageWithDaemon} makes: a work dir, the source tree, `image.boot` + `blobs/`, a nydusd. */
export interface ImageWithDaemon {
  work: string;
  src: string;
  boot: string;
  blobs: string;
  d: NydusdHandle;
}

/**
 * For a describe block (call it in the block's body): before its tests, a temporary work dir, the
 * tree `fill` writes under `src`, its image built by `nydus-image create` and a nydusd without
 * mounts; after them, the daemon stopped (its mounts removed) and the work dir deleted.
 */
export function imageWithDaemon(prefix: string, fill: (src: string) => void | Promise<void>): ImageWithDaemon {
  const f = {} as ImageWithDaemon;
  before(async () => {
    f.work = await tempDir(undefined, prefix);
    f.src = path.join(f.work, 'src');
    fs.mkdirSync(f.src);
    await fill(f.src);
    f.boot = path.join(f.work, 'image.boot');
    f.blobs = path.join(f.work, 'blobs');
    const r = await runCli('nydus-image', ['create', '-t', 'dir-rafs', '-B', f.boot, '-D', f.blobs, f.src]);
    if (r.code !== 0) throw new Error(`nydus-image create failed: ${r.stderr.toString()}`);
    f.d = await startNydusd({ dir: f.work });
  });
  after(async () => {
    await f.d?.stop();
    if (f.work) await cleanupTempDir(f.work);
  });
  return f;
}

/**
 * Copy the blobs of image `boot` from `blobDir` to `badDir` and flip one byte in the middle of
 * the stored data of chunk `chunkNo` of file `filePath` there (a corrupt blob for EIO tests).
 */
export function corruptChunkCopy(boot: string, blobDir: string, badDir: string, filePath: string, chunkNo = 0): void {
  fs.cpSync(blobDir, badDir, { recursive: true });
  const img = new RafsImage(fileSource(boot));
  try {
    const ino = img.resolve(filePath);
    if (!ino) throw new Error(`${filePath} is not in ${boot}`);
    const c = img.chunkIndexes(ino)[chunkNo];
    if (!c) throw new Error(`${filePath} has no chunk ${chunkNo}`);
    const rec = img.chunkRecord(c);
    const at = rec.compressedOffset + Math.floor(rec.compressedSize / 2);
    const fd = fs.openSync(path.join(badDir, img.blobs[c.blobIndex]?.slot.blobId as string), 'r+');
    try {
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, at);
      b[0] = (b[0] as number) ^ 0xff;
      fs.writeSync(fd, b, 0, 1, at);
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    img.close();
  }
}
