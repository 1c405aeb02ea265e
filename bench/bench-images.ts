/**
 * What bench:coldstart and bench:container share: the real files their images are made of, the
 * image plan of a given size with its start-up set, and small measuring helpers.
 * @module
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { runOk } from '../test/helpers/mounts.js';

export const MiB = 2 ** 20;
/** Share of an image's bytes that its start-up set reads. */
export const STARTUP_SHARE = 0.05;
const MAX_FILE = 64 * MiB;

export const fmtMiB = (n: number): string => `${(n / MiB).toFixed(1)}`;
export const fmtS = (ms: number): string => `${(ms / 1000).toFixed(2)}`;

/** A regular file of this machine: absolute path, path without the leading "/", size, sort key. */
export interface SrcFile { abs: string; rel: string; size: number; key: string }

/** Regular files of /usr/lib and /usr/share in a fixed pseudo-random order (by sha1 of the path). */
export function collectFiles(): SrcFile[] {
  const out: SrcFile[] = [];
  const walk = (dir: string): void => {
    let ents: fs.Dirent[];
    try { ents = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      const abs = path.join(dir, e.name);
      if (e.isDirectory()) walk(abs);
      else if (e.isFile()) {
        try {
          const st = fs.statSync(abs);
          if (st.size > 0 && st.size <= MAX_FILE) {
            fs.accessSync(abs, fs.constants.R_OK);
            out.push({ abs, rel: abs.slice(1), size: st.size, key: createHash('sha1').update(abs).digest('hex') });
          }
        } catch { /* unreadable: skip */ }
      }
    }
  };
  walk('/usr/lib');
  walk('/usr/share');
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The files of an image and its start-up set (paths relative to the image root, no leading "/"). */
export interface ImagePlan { picked: SrcFile[]; total: number; startup: string[]; startupBytes: number }

/**
 * The first files (in `all`'s order) making about `sizeMiB`, and the start-up set: a fixed choice
 * (files whose second hash byte is < 64, none larger than 1/8 of the set) up to 5% of the bytes.
 */
export function planImage(all: readonly SrcFile[], sizeMiB: number): ImagePlan {
  const target = sizeMiB * MiB;
  const picked: SrcFile[] = [];
  let total = 0;
  for (const f of all) {
    if (total >= target) break;
    picked.push(f);
    total += f.size;
  }
  const startup: string[] = [];
  let startupBytes = 0;
  for (const f of picked) {
    if (startupBytes >= total * STARTUP_SHARE) break;
    if (parseInt(f.key.slice(2, 4), 16) < 64 && f.size <= total * STARTUP_SHARE / 8) {
      startup.push(f.rel);
      startupBytes += f.size;
    }
  }
  return { picked, total, startup, startupBytes };
}

/** `fn`'s result and how long it took (ms). */
export function elapsed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  return fn().then((v) => [v, performance.now() - t0]);
}

/** Drop the page, dentry and inode caches (root). */
export async function dropCaches(): Promise<void> {
  await runOk('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']);
}

/** Whether bin/ runs the compiled dist/ or the sources through tsx (dist/ older than src/). */
export function launcherMode(): string {
  const newest = (dir: string): number => {
    let t = 0;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      t = Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
    }
    return t;
  };
  const root = path.resolve(import.meta.dirname, '..');
  try {
    return fs.statSync(path.join(root, 'dist/.stamp')).mtimeMs >= newest(path.join(root, 'src')) && !process.env['NYDUS_TS_SOURCE'] ? 'dist/ (compiled)' : 'src/ through tsx (dist/ is older than src/: run npm run build)';
  } catch {
    return 'src/ through tsx (no dist/)';
  }
}
