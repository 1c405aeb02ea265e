/**
 * Running bin/nydusd for `nydusify check` and `nydusify mount`: a config whose backend reads the
 * image's blobs where the image lives (the registry backend for a registry, localfs for an OCI
 * layout) with a blobcache in the work dir; the daemon is a child process stopped by its PID, and
 * its mountpoint is unmounted afterwards whatever happened.
 * @module
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import * as fs from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NydusError } from '../util/errors.js';
import { encodeBasicAuth } from '../registry/credentials.js';
import { canonicalMountpoint, topMountAt, unmountPath } from '../fuse/mount.js';
import type { StoreLocation } from './image-store.js';

/** The nydusd launcher of this checkout (`bin/nydusd`), unless `$NYDUSD` names another. */
export function defaultNydusdPath(): string {
  const env = process.env['NYDUSD'];
  if (env) return env;
  // src/nydusify/ and dist/nydusify/ are both two levels under the repository root.
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'nydusd');
}

/** nydusd's JSON config for an image stored at `location`. */
export function nydusdConfigFor(location: StoreLocation | undefined, o: { plainHttp: boolean; insecure: boolean; cacheDir: string }): string {
  let backend: Record<string, unknown>;
  if (location?.kind === 'registry') {
    backend = {
      type: 'registry',
      config: {
        scheme: o.plainHttp ? 'http' : 'https', host: location.apiHost, repo: location.repo,
        ...(location.credentials ? { auth: encodeBasicAuth(location.credentials) } : {}),
        ...(o.insecure ? { skip_verify: true } : {}), ...(location.caFiles?.length ? { ca_cert_files: location.caFiles } : {}), timeout: 30, retry_limit: 3,
      },
    };
  } else if (location?.kind === 'oci') {
    backend = { type: 'localfs', config: { dir: resolve(location.dir, 'blobs', 'sha256') } };
  } else {
    throw new NydusError('ERR_USAGE', 'Cannot configure nydusd: the image store has no known location');
  }
  return JSON.stringify({
    device: { backend, cache: { type: 'blobcache', config: { work_dir: o.cacheDir } } },
    mode: 'direct', digest_validate: true, enable_xattr: true, iostats_files: false, access_pattern: false,
    latest_read_files: false, amplify_io: 1048576,
    fs_prefetch: { enable: false, threads_count: 4, merging_size: 1048576, bandwidth_rate: 0, prefetch_all: false },
  });
}

/** A running, mounted nydusd. */
export interface RunningNydusd {
  child: ChildProcess;
  pid: number;
  mountpoint: string;
  /** The last part of nydusd's stderr (when piped). */
  log(): string;
  /** Resolves when the daemon exits by itself or after stop. */
  exited: Promise<void>;
  /** SIGTERM by PID (SIGKILL after 10 s), then unmount whatever is left. Safe to call twice. */
  stop(): Promise<void>;
}

/** Start nydusd on `bootstrap` at `mountpoint` and wait until it is mounted. */
export async function startNydusdMount(o: {
  nydusd: string; config: string; configPath: string; bootstrap: string; mountpoint: string;
  stdio: 'inherit' | 'pipe'; timeoutMs?: number; logLevel?: string;
}): Promise<RunningNydusd> {
  fs.mkdirSync(o.mountpoint, { recursive: true });
  fs.mkdirSync(dirname(o.configPath), { recursive: true });
  fs.writeFileSync(o.configPath, o.config);
  const mnt = await canonicalMountpoint(o.mountpoint);
  const stdio: StdioOptions = o.stdio === 'inherit' ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'ignore', 'pipe'];
  const child = spawn(o.nydusd, ['--config', o.configPath, '--bootstrap', o.bootstrap, '--mountpoint', mnt, '--log-level', o.logLevel ?? 'warn'], { stdio });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); if (stderr.length > 65536) stderr = stderr.slice(-32768); });
  const exited = new Promise<void>((res) => {
    child.once('exit', () => res());
    child.once('error', (e) => { stderr += `${e.message}\n`; res(); });
  });
  const alive = (): boolean => child.exitCode === null && child.signalCode === null && child.pid !== undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (!stopped) {
      stopped = true;
      if (alive() && child.pid !== undefined) {
        process.kill(child.pid, 'SIGTERM');
        const t = setTimeout(() => { if (alive() && child.pid !== undefined) process.kill(child.pid, 'SIGKILL'); }, 10_000);
        await exited;
        clearTimeout(t);
      }
    }
    await unmountPath(mnt);
  };
  const end = Date.now() + (o.timeoutMs ?? 30_000);
  try {
    for (;;) {
      if (await topMountAt(mnt).then((m) => m !== undefined && (m.fstype.startsWith('fuse') || m.fstype === 'erofs'))) break;
      if (!alive()) throw new NydusError('ERR_NYDUSD', `Cannot mount with nydusd: it exited (${child.exitCode ?? child.signalCode ?? 'not started'}) before mounting ${mnt}${stderr ? `:\n${stderr.trim()}` : ''}`);
      if (Date.now() > end) throw new NydusError('ERR_NYDUSD', `Cannot mount with nydusd: ${mnt} is not mounted after ${o.timeoutMs ?? 30_000} ms${stderr ? `:\n${stderr.trim()}` : ''}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { child, pid: child.pid as number, mountpoint: mnt, log: () => stderr, exited, stop };
}

/** A directory under `workDir`, created. */
export function workSubdir(workDir: string, name: string): string {
  const p = join(resolve(workDir), name);
  fs.mkdirSync(p, { recursive: true });
  return p;
}
