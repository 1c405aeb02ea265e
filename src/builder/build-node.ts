/**
 * The in-memory file tree a build or merge produces before it is laid out as a bootstrap.
 * A hard-linked file is one BuildNode object referenced under several names.
 * @module
 */
import type { Xattr } from '../format/v6/xattr.js';
import type { ChunkRecord } from '../format/v6/chunk-record.js';
import { S_IFDIR, S_IFMT } from '../format/v6/constants.js';

/** A chunk of a file: its record (shared between deduplicated users) and blob. */
export interface FileChunk {
  blobIndex: number;
  record: ChunkRecord;
}

/** One inode of the tree. */
export interface BuildNode {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  /** Device number (Linux new_encode_dev form) for chr/blk. */
  rdev: number;
  /** Logical size of a regular file. */
  size: number;
  xattrs: Xattr[];
  /** Symlink target. */
  target?: Uint8Array;
  /** Directory entries keyed by the raw name as a latin1 string (byte order = string order). */
  children?: Map<string, BuildNode>;
  /** Chunks of a regular file in file order. */
  chunks?: FileChunk[];
}

/** A new empty directory node. */
export function newDirNode(attrs: Partial<BuildNode> = {}): BuildNode {
  return { mode: S_IFDIR | 0o755, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, rdev: 0, size: 0, xattrs: [], children: new Map(), ...attrs };
}

/** True for directories. */
export function isDir(n: BuildNode): boolean {
  return (n.mode & S_IFMT) === S_IFDIR;
}

/** The map key of a name given as bytes. */
export function nameKey(name: Uint8Array): string {
  return Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('latin1');
}

/** The raw bytes of a map key. */
export function keyBytes(key: string): Uint8Array {
  return new Uint8Array(Buffer.from(key, 'latin1'));
}

/** The map key of a UTF-8 path component. */
export function utf8Key(name: string): string {
  return Buffer.from(name, 'utf8').toString('latin1');
}

/** Human-readable (UTF-8) form of a key. */
export function keyToString(key: string): string {
  return Buffer.from(key, 'latin1').toString('utf8');
}

/**
 * Find or create the directory at `parts` (UTF-8 components) under `root`. Missing parents are
 * created with `defaults`; a non-directory in the way is replaced.
 */
export function ensureDir(root: BuildNode, parts: readonly string[], defaults: Partial<BuildNode> = {}): BuildNode {
  let cur = root;
  for (const p of parts) {
    const children = cur.children as Map<string, BuildNode>;
    const k = utf8Key(p);
    let next = children.get(k);
    if (!next || !isDir(next)) {
      next = newDirNode(defaults);
      children.set(k, next);
    }
    cur = next;
  }
  return cur;
}
