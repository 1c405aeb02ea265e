/**
 * The private state directories of erofs-driver mounts (`$TMPDIR/nydusd-erofs-*`): each holds
 * the bootstrap the kernel mounts, the FUSE mount of the blob files (`blobs/`) and an `owner`
 * file with the PID of the nydusd that made it. A nydusd that is killed leaves its directories
 * behind, with a dead FUSE mount in each. The sweep removes those of daemons that are gone once
 * no EROFS mount or loop device uses them any more (whoever mounted the image, e.g.
 * nydus-snapshotter, unmounts it when the daemon dies): it unmounts the dead blob mount and
 * deletes the directory.
 * @module
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';
import { readMountTable, unmountPath } from '../fuse/mount.js';
import { processAlive } from '../util/process-alive.js';

const PREFIX = 'nydusd-erofs-';
const OWNER = 'owner';

/** A new state directory owned by this process. */
export function createErofsStateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), PREFIX));
  writeFileSync(join(dir, OWNER), `${process.pid}\n`);
  return dir;
}


/** Backing files of the attached loop devices (an EROFS mount through loop devices names those, not the files). */
function loopBackingFiles(): string[] {
  const out: string[] = [];
  try {
    for (const d of readdirSync('/sys/block')) {
      if (!d.startsWith('loop')) continue;
      try {
        out.push(readFileSync(`/sys/block/${d}/loop/backing_file`, 'utf8').trim());
      } catch { /* not attached */ }
    }
  } catch { /* no sysfs */ }
  return out;
}

/**
 * Remove the state directories left by nydusd processes that are gone and no longer used by any
 * EROFS mount. Returns the directories removed. Failures are logged; nothing is thrown.
 */
export async function sweepErofsStateDirs(logger: Logger): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith(PREFIX));
  } catch {
    return removed;
  }
  if (names.length === 0) return removed;
  const mounts = await readMountTable();
  const loops = loopBackingFiles();
  for (const n of names) {
    const dir = join(tmpdir(), n);
    let owner: number;
    try {
      owner = Number.parseInt(readFileSync(join(dir, OWNER), 'utf8'), 10);
    } catch {
      continue; // being created, or not ours
    }
    if (!Number.isSafeInteger(owner) || owner <= 0 || owner === process.pid || processAlive(owner)) continue;
    const inside = (p: string): boolean => p === dir || p.startsWith(`${dir}/`);
    if (mounts.some((m) => m.fstype === 'erofs' && inside(m.source)) || loops.some(inside)) continue;
    try {
      for (const m of mounts.filter((x) => inside(x.mountpoint)).reverse()) await unmountPath(m.mountpoint);
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
      logger.info('removed the state of a dead nydusd', { dir, pid: owner });
    } catch (e) {
      logger.warn('cannot remove the state of a dead nydusd', { dir, pid: owner, error: (e as Error).message });
    }
  }
  return removed;
}
