/**
 * Depth-first walk of a RAFS image, validating directory structure on the way: "." and ".."
 * entries, sorted names, valid names, no directory reached twice.
 * @module
 */
import { FormatError } from '../util/errors.js';
import { compareBytes } from '../util/bytes.js';
import { S_IFDIR, S_IFMT, fileTypeOfMode } from '../format/v6/constants.js';
import type { InodeInfo, RafsImage } from './rafs-image.js';

/** One visited entry. */
export interface WalkEntry {
  /** Absolute path, "/" for the root. */
  path: string;
  /** Raw name bytes ("" for the root). */
  name: Uint8Array;
  inode: InodeInfo;
  /** nid of the parent directory (root: itself). */
  parentNid: number;
  /** Depth, root 0. */
  depth: number;
}

const DOT = new Uint8Array([0x2e]);
const DOTDOT = new Uint8Array([0x2e, 0x2e]);

/** Options of walkImage. */
export interface WalkOptions {
  /** Check dirent file types against inode modes (check command). */
  strict?: boolean;
}

/**
 * Visit every entry of `image`, parents before children, children in name order.
 * Hardlinked files are visited once per name.
 */
export function* walkImage(image: RafsImage, options: WalkOptions = {}): Generator<WalkEntry> {
  const root = image.inode(image.rootNid);
  if ((root.mode & S_IFMT) !== S_IFDIR) throw new FormatError('ERR_BAD_ROOT', `Cannot walk image: root nid ${image.rootNid} is not a directory`);
  const seenDirs = new Set<number>([root.nid]);
  yield { path: '/', name: new Uint8Array(0), inode: root, parentNid: root.nid, depth: 0 };
  const stack: Array<{ dir: InodeInfo; path: string; parentNid: number; depth: number }> = [{ dir: root, path: '', parentNid: root.nid, depth: 0 }];
  while (stack.length > 0) {
    const { dir, path, parentNid, depth } = stack.pop() as { dir: InodeInfo; path: string; parentNid: number; depth: number };
    const subdirs: Array<{ dir: InodeInfo; path: string; parentNid: number; depth: number }> = [];
    let prev: Uint8Array | undefined;
    let sawDot = false;
    let sawDotDot = false;
    for (const e of image.dirents(dir)) {
      const where = path === '' ? '/' : path;
      if (prev && compareBytes(prev, e.name) >= 0) {
        throw new FormatError('ERR_BAD_DIR', `Cannot walk ${where}: entries are not sorted ("${Buffer.from(prev).toString()}" before "${Buffer.from(e.name).toString()}")`);
      }
      prev = e.name;
      if (compareBytes(e.name, DOT) === 0) {
        if (e.nid !== dir.nid) throw new FormatError('ERR_BAD_DIR', `Cannot walk ${where}: "." points to nid ${e.nid}, not ${dir.nid}`);
        sawDot = true;
        continue;
      }
      if (compareBytes(e.name, DOTDOT) === 0) {
        if (e.nid !== parentNid) throw new FormatError('ERR_BAD_DIR', `Cannot walk ${where}: ".." points to nid ${e.nid}, not ${parentNid}`);
        sawDotDot = true;
        continue;
      }
      if (e.name.includes(0x2f) || e.name.includes(0) || e.name.length > 255) {
        throw new FormatError('ERR_BAD_DIR', `Cannot walk ${where}: invalid entry name "${Buffer.from(e.name).toString()}"`);
      }
      const child = image.inode(e.nid);
      if (options.strict && fileTypeOfMode(child.mode) !== e.fileType) {
        throw new FormatError('ERR_BAD_DIR', `Cannot walk ${where}: entry "${Buffer.from(e.name).toString()}" has file type ${e.fileType} but its inode mode is 0${child.mode.toString(8)}`);
      }
      const childPath = `${path}/${Buffer.from(e.name).toString('utf8')}`;
      if ((child.mode & S_IFMT) === S_IFDIR) {
        if (seenDirs.has(child.nid)) throw new FormatError('ERR_BAD_DIR', `Cannot walk ${childPath}: directory nid ${child.nid} is reached twice (cycle or hardlinked directory)`);
        seenDirs.add(child.nid);
        subdirs.push({ dir: child, path: childPath, parentNid: dir.nid, depth: depth + 1 });
      }
      yield { path: childPath, name: e.name, inode: child, parentNid: dir.nid, depth: depth + 1 };
    }
    if (!sawDot || !sawDotDot) throw new FormatError('ERR_BAD_DIR', `Cannot walk ${path === '' ? '/' : path}: missing "." or ".." entry`);
    for (let k = subdirs.length - 1; k >= 0; k--) stack.push(subdirs[k] as { dir: InodeInfo; path: string; parentNid: number; depth: number });
  }
}
