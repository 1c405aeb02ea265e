/**
 * Applying OCI layers to a directory, bottom first, as a container runtime unpacks an image:
 * files, directories, symlinks, hardlinks, devices, fifos, xattrs, modes, owners and mtimes;
 * `.wh.NAME` removes NAME of the lower layers and `.wh..wh..opq` clears a directory's lower
 * contents. Never writes outside the root: parent components are created as directories and
 * checked with lstat, so a symlink planted by a layer is never followed.
 * @module
 */
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import xattr from '@napi-rs/xattr';
import { FormatError } from '../util/errors.js';
import { openLayer } from '../tar/open-layer.js';
import { parseTar } from '../tar/parse-tar.js';
import type { TarEntry } from '../tar/types.js';

const WH_PREFIX = '.wh.';
const WH_OPAQUE = '.wh..wh..opq';

function unsafe(path: string, why: string): FormatError {
  return new FormatError('ERR_UNSAFE_PATH', `Cannot apply layer entry ${path}: ${why}`, { path });
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Make sure every parent of `rel` under `root` is a real directory (created 0755 when absent). */
function ensureParents(root: string, rel: string): void {
  const parts = rel.split('/');
  let cur = root;
  for (let k = 0; k < parts.length - 1; k++) {
    cur = join(cur, parts[k] as string);
    const st = lstatOrUndefined(cur);
    if (!st) fs.mkdirSync(cur, { mode: 0o755 });
    else if (!st.isDirectory()) {
      if (st.isSymbolicLink()) throw unsafe(rel, `parent ${parts.slice(0, k + 1).join('/')} is a symlink`);
      fs.rmSync(cur, { force: true });
      fs.mkdirSync(cur, { mode: 0o755 });
    }
  }
}

/** True when every parent of `rel` exists as a real directory (nothing to remove otherwise). */
function parentsAreDirs(root: string, rel: string): boolean {
  const parts = rel.split('/');
  let cur = root;
  for (let k = 0; k < parts.length - 1; k++) {
    cur = join(cur, parts[k] as string);
    const st = lstatOrUndefined(cur);
    if (!st || !st.isDirectory()) return false;
  }
  return true;
}

/** Remove the contents of `dir` that this layer did not add (recursing into directories it did). */
function clearLower(root: string, dirRel: string, added: Set<string>): void {
  const abs = dirRel === '' ? root : join(root, dirRel);
  for (const name of fs.readdirSync(abs)) {
    const rel = dirRel === '' ? name : `${dirRel}/${name}`;
    if (!added.has(rel)) fs.rmSync(join(root, rel), { recursive: true, force: true });
    else if (fs.lstatSync(join(root, rel)).isDirectory()) clearLower(root, rel, added);
  }
}

async function writeFile(p: string, e: TarEntry): Promise<void> {
  const fd = fs.openSync(p, 'w', 0o600);
  try {
    for await (const seg of e.body()) {
      let off = 0;
      while (off < seg.data.length) off += fs.writeSync(fd, seg.data, off, seg.data.length - off, seg.offset + off);
    }
    fs.ftruncateSync(fd, e.size);
  } finally {
    fs.closeSync(fd);
  }
}

function setMeta(p: string, e: TarEntry): void {
  fs.lchownSync(p, e.uid, e.gid);
  if (e.type !== 'symlink') {
    fs.chmodSync(p, e.mode);
    for (const [name, value] of e.xattrs) xattr.setAttributeSync(p, name, value);
  }
  const t = e.mtime + e.mtimeNsec / 1e9;
  fs.lutimesSync(p, t, t);
}

/** Counts of what a layer did. */
export interface ApplyStats {
  entries: number;
  whiteouts: number;
}

/** Apply one layer (any compression) to `root`. */
export async function applyLayer(root: string, stream: AsyncIterable<Uint8Array>): Promise<ApplyStats> {
  const added = new Set<string>();
  const opaque: string[] = [];
  const stats: ApplyStats = { entries: 0, whiteouts: 0 };
  for await (const e of parseTar(openLayer(stream))) {
    stats.entries++;
    const rel = e.path;
    if (rel === '') continue; // the root keeps the attributes it has
    const slash = rel.lastIndexOf('/');
    const dirRel = slash < 0 ? '' : rel.slice(0, slash);
    const base = rel.slice(slash + 1);
    if (base === WH_OPAQUE) {
      stats.whiteouts++;
      if (dirRel !== '') { ensureParents(root, `${dirRel}/x`); added.add(dirRel); }
      opaque.push(dirRel);
      continue;
    }
    if (base.startsWith(WH_PREFIX)) {
      stats.whiteouts++;
      const victim = dirRel === '' ? base.slice(WH_PREFIX.length) : `${dirRel}/${base.slice(WH_PREFIX.length)}`;
      if (parentsAreDirs(root, victim)) fs.rmSync(join(root, victim), { recursive: true, force: true });
      continue;
    }
    ensureParents(root, rel);
    for (let k = rel.indexOf('/'); k >= 0; k = rel.indexOf('/', k + 1)) added.add(rel.slice(0, k));
    added.add(rel);
    const p = join(root, rel);
    const old = lstatOrUndefined(p);
    if (old && !(e.type === 'dir' && old.isDirectory())) fs.rmSync(p, { recursive: true, force: true });
    switch (e.type) {
      case 'dir':
        if (!old || !old.isDirectory()) fs.mkdirSync(p, { mode: 0o700 });
        break;
      case 'file':
        await writeFile(p, e);
        break;
      case 'symlink':
        fs.symlinkSync(e.linkname, p);
        break;
      case 'hardlink': {
        if (!parentsAreDirs(root, e.linkname)) throw unsafe(rel, `hardlink target ${e.linkname} is not under a real directory`);
        const target = lstatOrUndefined(join(root, e.linkname));
        if (!target) throw unsafe(rel, `hardlink target ${e.linkname} does not exist`);
        if (target.isDirectory()) throw unsafe(rel, `hardlink target ${e.linkname} is a directory`);
        fs.linkSync(join(root, e.linkname), p);
        continue; // shares the target's inode and attributes
      }
      case 'chardev':
      case 'blockdev':
        execFileSync('mknod', [p, e.type === 'chardev' ? 'c' : 'b', String(e.devmajor), String(e.devminor)], { stdio: 'pipe' });
        break;
      case 'fifo':
        execFileSync('mkfifo', [p], { stdio: 'pipe' });
        break;
    }
    setMeta(p, e);
  }
  for (const d of opaque) {
    const abs = d === '' ? root : join(root, d);
    if (lstatOrUndefined(abs)?.isDirectory()) clearLower(root, d, added);
  }
  return stats;
}
