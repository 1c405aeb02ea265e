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
/**
 * Bytes of the start-up set of bench:coldstart and bench:container: fixed, the same files at
 * every image size (a start-up set is fixed by the program, not by the image's size), so that
 * the growth of the start time across sizes measures what the image's size alone costs.
 */
export const STARTUP_BYTES = 5 * MiB;
/** Largest growth of the start time from the smallest to the largest image that counts as flat. */
export const FLAT_GROWTH = 1.3;
const MAX_FILE = 64 * MiB;

export const fmtMiB = (n: number): string => `${(n / MiB).toFixed(1)}`;
export const fmtS = (ms: number): string => `${(ms / 1000).toFixed(2)}`;

/** A regular file of this machine: absolute path, path without the leading "/", size, sort key. */
export interface SrcFile { abs: string; rel: string; size: number; key: string }

/**
 * Regular files under `roots` (default /usr/lib and /usr/share) in a fixed pseudo-random order (by
 * sha1 of the path). `skip` leaves out paths (directories or files); `uniqueInodes` keeps one
 * path of each inode (hard links of a file are one file's data).
 */
export function collectFiles(opts: { roots?: readonly string[]; skip?: (abs: string) => boolean; uniqueInodes?: boolean } = {}): SrcFile[] {
  const out: SrcFile[] = [];
  const seen = new Set<string>();
  const walk = (dir: string): void => {
    let ents: fs.Dirent[];
    try { ents = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      const abs = path.join(dir, e.name);
      if (opts.skip?.(abs)) continue;
      if (e.isDirectory()) walk(abs);
      else if (e.isFile()) {
        try {
          const st = fs.statSync(abs);
          if (st.size > 0 && st.size <= MAX_FILE) {
            fs.accessSync(abs, fs.constants.R_OK);
            if (opts.uniqueInodes) {
              const id = `${st.dev}:${st.ino}`;
              if (seen.has(id)) continue;
              seen.add(id);
            }
            out.push({ abs, rel: abs.slice(1), size: st.size, key: createHash('sha1').update(abs).digest('hex') });
          }
        } catch { /* unreadable: skip */ }
      }
    }
  };
  for (const r of opts.roots ?? ['/usr/lib', '/usr/share']) walk(r);
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The first files of `all` making at least `bytes` (all of them if they make less). */
export function pickFiles(all: readonly SrcFile[], bytes: number): { picked: SrcFile[]; total: number } {
  const picked: SrcFile[] = [];
  let total = 0;
  for (const f of all) {
    if (total >= bytes) break;
    picked.push(f);
    total += f.size;
  }
  return { picked, total };
}

/** Hard-link (copy across file systems) `files` into `layerDirs` at their paths, split in equal runs of files. */
export function linkIntoLayers(files: readonly SrcFile[], layerDirs: readonly string[]): void {
  files.forEach((f, k) => {
    const dst = path.join(layerDirs[Math.floor((k * layerDirs.length) / files.length)] as string, f.rel);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    try { fs.linkSync(f.abs, dst); } catch { fs.copyFileSync(f.abs, dst); }
  });
}

/** The files of an image and its start-up set (paths relative to the image root, no leading "/"). */
export interface ImagePlan { picked: SrcFile[]; total: number; startup: string[]; startupBytes: number }

/**
 * The first files (in `all`'s order) making about `sizeMiB`, and the start-up set: a fixed choice
 * (files whose second hash byte is < 64, none larger than 1/8 of the set) of about `startupBytes`
 * taken from the start of `all`'s order, so every size (all files of a smaller size are the first
 * ones of a larger one) has the same start-up files.
 */
export function planImage(all: readonly SrcFile[], sizeMiB: number, startupBytes = STARTUP_BYTES): ImagePlan {
  const { picked, total } = pickFiles(all, sizeMiB * MiB);
  const startup: string[] = [];
  let sBytes = 0;
  let k = 0;
  for (; k < all.length && sBytes < startupBytes; k++) {
    const f = all[k] as SrcFile;
    if (parseInt(f.key.slice(2, 4), 16) < 64 && f.size <= startupBytes / 8) {
      startup.push(f.rel);
      sBytes += f.size;
    }
  }
  if (k > picked.length) throw new Error(`Cannot plan a ${sizeMiB} MiB image: its ${picked.length} files do not hold the ${(startupBytes / MiB).toFixed(1)} MiB start-up set (the first ${k} files); use a larger size`);
  return { picked, total, startup, startupBytes: sBytes };
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
