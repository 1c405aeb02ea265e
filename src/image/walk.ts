/**
 * Pre-order walk of a RAFS image, validating directory structure on the way: "." and ".."
 * entries, sorted names, valid names, no directory reached twice.
 * @module
 */
import { FormatError } from '../util/errors.js';
import { compareBytes } from '../util/bytes.js';
import { S_IFDIR, S_IFMT, fileTypeOfMode } from '../format/v6/constants.js';
import type { InodeInfo, RafsImage } from './rafs-image.js';
import type { Dirent } from '../format/v6/dirent.js';

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

interface Frame {
  dir: InodeInfo;
  path: string;
  parentNid: number;
  depth: number;
  entries: Iterator<Dirent>;
  prev: Uint8Array | undefined;
  sawDot: boolean;
  sawDotDot: boolean;
}

/**
 * Visit every entry of `image` in pre-order: each directory, then its whole subtree, children in
 * name order (the order a tar archive wants, so directory mtimes set on extraction stay set).
 * Only one directory iterator per level is held, so memory follows the depth, not the size.
 * Hardlinked files are visited once per name.
 */
export function* walkImage(image: RafsImage, options: WalkOptions = {}): Generator<WalkEntry> {
  const root = image.inode(image.rootNid);
  if ((root.mode & S_IFMT) !== S_IFDIR) throw new FormatError('ERR_BAD_ROOT', `Cannot walk image: root nid ${image.rootNid} is not a directory`);
  const seenDirs = new Set<number>([root.nid]);
  yield { path: '/', name: new Uint8Array(0), inode: root, parentNid: root.nid, depth: 0 };
  const frame = (dir: InodeInfo, path: string, parentNid: number, depth: number): Frame => ({
    dir, path, parentNid, depth, entries: image.dirents(dir), prev: undefined, sawDot: false, sawDotDot: false,
  });
  const stack: Frame[] = [frame(root, '', root.nid, 0)];
  while (stack.length > 0) {
    const f = stack[stack.length - 1] as Frame;
    const where = f.path === '' ? '/' : f.path;
    const r = f.entries.next();
    if (r.done) {
      if (!f.sawDot || !f.sawDotDot) throw new FormatError('ERR_BAD_DIR', `Cannot walk ${where}: missing "." or ".." entry`);
      stack.pop();
      continue;
    }
    const e = r.value;
    if (f.prev && compareBytes(f.prev, e.name) >= 0) {
      throw new FormatError('ERR_BAD_DIR', `Cannot walk ${where}: entries are not sorted ("${Buffer.from(f.prev).toString()}" before "${Buffer.from(e.name).toString()}")`);
    }
    f.prev = e.name;
    if (compareBytes(e.name, DOT) === 0) {
      if (e.nid !== f.dir.nid) throw new FormatError('ERR_BAD_DIR', `Cannot walk ${where}: "." points to nid ${e.nid}, not ${f.dir.nid}`);
      f.sawDot = true;
      continue;
    }
    if (compareBytes(e.name, DOTDOT) === 0) {
      if (e.nid !== f.parentNid) throw new FormatError('ERR_BAD_DIR', `Cannot walk ${where}: ".." points to nid ${e.nid}, not ${f.parentNid}`);
      f.sawDotDot = true;
      continue;
    }
    if (e.name.includes(0x2f) || e.name.includes(0) || e.name.length > 255) {
      throw new FormatError('ERR_BAD_DIR', `Cannot walk ${where}: invalid entry name "${Buffer.from(e.name).toString()}"`);
    }
    const child = image.inode(e.nid);
    if (options.strict && fileTypeOfMode(child.mode) !== e.fileType) {
      throw new FormatError('ERR_BAD_DIR', `Cannot walk ${where}: entry "${Buffer.from(e.name).toString()}" has file type ${e.fileType} but its inode mode is 0${child.mode.toString(8)}`);
    }
    const childPath = `${f.path}/${Buffer.from(e.name).toString('utf8')}`;
    yield { path: childPath, name: e.name, inode: child, parentNid: f.dir.nid, depth: f.depth + 1 };
    if ((child.mode & S_IFMT) === S_IFDIR) {
      if (seenDirs.has(child.nid)) throw new FormatError('ERR_BAD_DIR', `Cannot walk ${childPath}: directory nid ${child.nid} is reached twice (cycle or hardlinked directory)`);
      seenDirs.add(child.nid);
      stack.push(frame(child, childPath, f.dir.nid, f.depth + 1));
    }
  }
}
