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
  target: Uint8Array | undefined;
  /** Directory entries keyed by the raw name as a latin1 string (byte order = string order). */
  children: Map<string, BuildNode> | undefined;
  /** Chunks of a regular file in file order. */
  chunks: FileChunk[] | undefined;
}

/** The attributes every node has. */
export type NodeAttrs = Pick<BuildNode, 'mode' | 'uid' | 'gid' | 'mtime' | 'mtimeNsec' | 'rdev' | 'size' | 'xattrs'>;

/** Shared empty xattr list (never mutated; replace it to add xattrs). */
export const NO_XATTRS: Xattr[] = [];

/**
 * A node with every field set in one fixed order, so all nodes share one hidden class (a
 * million-entry tree must not carry a shape per object).
 */
export function makeNode(a: NodeAttrs, extra: Partial<Pick<BuildNode, 'target' | 'children' | 'chunks'>> = {}): BuildNode {
  return {
    mode: a.mode, uid: a.uid, gid: a.gid, mtime: a.mtime, mtimeNsec: a.mtimeNsec, rdev: a.rdev, size: a.size,
    xattrs: a.xattrs.length === 0 ? NO_XATTRS : a.xattrs, target: extra.target, children: extra.children, chunks: extra.chunks,
  };
}

/** Copy the attributes (not target, children or chunks) of `from` onto `to`. */
export function copyAttrs(to: BuildNode, from: NodeAttrs): void {
  to.mode = from.mode; to.uid = from.uid; to.gid = from.gid; to.mtime = from.mtime; to.mtimeNsec = from.mtimeNsec;
  to.rdev = from.rdev; to.size = from.size; to.xattrs = from.xattrs;
}

/** A new empty directory node. */
export function newDirNode(attrs: Partial<NodeAttrs> = {}): BuildNode {
  return makeNode({ mode: S_IFDIR | 0o755, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, rdev: 0, size: 0, xattrs: NO_XATTRS, ...attrs }, { children: new Map() });
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
export function ensureDir(root: BuildNode, parts: readonly string[], defaults: Partial<NodeAttrs> = {}): BuildNode {
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

/** The node at a relative or absolute UTF-8 path under `root` (no symlinks followed). */
export function lookupPath(root: BuildNode, path: string): BuildNode | undefined {
  let cur: BuildNode | undefined = root;
  for (const part of path.split('/')) {
    if (part.length === 0) continue;
    cur = cur?.children?.get(utf8Key(part));
    if (!cur) return undefined;
  }
  return cur;
}
