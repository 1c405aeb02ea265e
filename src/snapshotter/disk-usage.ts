/**
 * Disk usage of a directory tree the way containerd counts it: every inode once (hard links
 * too), its allocated blocks in bytes.
 * @module
 */
import { lstat, opendir } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotUsage } from './snapshot-types.js';

/** Usage of `dir` and everything below it; a missing directory uses nothing. */
export async function diskUsage(dir: string): Promise<SnapshotUsage> {
  const seen = new Set<string>();
  let size = 0;
  const visit = async (p: string): Promise<void> => {
    let st;
    try {
      st = await lstat(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    const id = `${st.dev}:${st.ino}`;
    if (!seen.has(id)) {
      seen.add(id);
      size += st.blocks * 512;
    }
    if (!st.isDirectory()) return;
    const d = await opendir(p);
    for await (const e of d) await visit(join(p, e.name));
  };
  await visit(dir);
  return { size, inodes: seen.size };
}
