/**
 * Builds a tree from a directory on the local file system (`--type dir-rafs`): lstat of every
 * entry (nanosecond mtimes), xattrs, symlink targets, device numbers, hard-link groups; file data
 * is chunked as it is read.
 * @module
 */
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { listAttributesSync, getAttributeSync } from '@napi-rs/xattr';
import { FormatError } from '../../util/errors.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../../format/v6/constants.js';
import type { Xattr } from '../../format/v6/xattr.js';
import { splitXattrName } from '../../format/v6/xattr.js';
import type { BlobWriter } from '../blob-writer.js';
import { chunkLocalFile } from '../file-chunker.js';
import { makeNode as newNode, nameKey, type BuildNode } from '../build-node.js';

/** Options of a directory walk. */
export interface DirSourceOptions {
  /** Called for skipped xattrs etc. */
  onWarn?: (code: string, message: string) => void;
  /** Read files in this order first (prefetch files first in the blob). */
  firstFiles?: readonly string[];
}

function readXattrs(path: string, onWarn: DirSourceOptions['onWarn']): Xattr[] {
  let names: string[];
  try {
    names = listAttributesSync(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return [];
    throw new FormatError('ERR_XATTR_READ', `Cannot list xattrs of ${path}: ${(e as Error).message}`, { path, cause: e });
  }
  const out: Xattr[] = [];
  for (const name of names) {
    if (!splitXattrName(name)) {
      onWarn?.('ERR_XATTR_PREFIX', `xattr "${name}" of ${path} is not in an EROFS namespace; skipped`);
      continue;
    }
    const v = getAttributeSync(path, name);
    out.push({ name, value: new Uint8Array(v ?? Buffer.alloc(0)) });
  }
  return out;
}

function makedevToNew(rdev: number): number {
  // glibc dev_t → major/minor → Linux new_encode_dev, the form EROFS stores.
  const major = Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
  const minor = Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** Walk `root` and return the tree; file data goes to `writer` (in tree order). */
export function buildFromDir(root: string, writer: BlobWriter | undefined, options: DirSourceOptions = {}): { root: BuildNode } {
  const byIno = new Map<string, BuildNode>();
  const pending: Array<{ node: BuildNode; path: string }> = [];
  const makeNode = (path: string): BuildNode => {
    let st;
    try {
      st = lstatSync(path, { bigint: true });
    } catch (e) {
      throw new FormatError('ERR_SOURCE_READ', `Cannot stat ${path}: ${(e as Error).message}`, { path, cause: e });
    }
    const mode = Number(st.mode);
    const type = mode & S_IFMT;
    if (type === S_IFREG && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const existing = byIno.get(key);
      if (existing) return existing;
    }
    const node = newNode({
      mode, uid: Number(st.uid), gid: Number(st.gid),
      mtime: Number(st.mtimeNs / 1_000_000_000n) - (st.mtimeNs < 0n && st.mtimeNs % 1_000_000_000n !== 0n ? 1 : 0),
      mtimeNsec: Number(((st.mtimeNs % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n),
      rdev: type === S_IFCHR || type === S_IFBLK ? makedevToNew(Number(st.rdev)) : 0,
      size: type === S_IFREG ? Number(st.size) : 0,
      xattrs: readXattrs(path, options.onWarn),
    });
    if (type === S_IFLNK) node.target = new Uint8Array(readlinkSync(path, { encoding: 'buffer' }));
    if (type === S_IFREG) {
      node.chunks = [];
      if (st.nlink > 1n) byIno.set(`${st.dev}:${st.ino}`, node);
      pending.push({ node, path });
    }
    if (type === S_IFDIR) {
      node.children = new Map();
      const names = readdirSync(path, { encoding: 'buffer' });
      names.sort(Buffer.compare);
      for (const n of names) {
        const child = makeNode(join(path, n.toString('utf8')));
        (node.children as Map<string, BuildNode>).set(nameKey(n), child);
      }
    }
    return node;
  };
  const rootNode = makeNode(root);
  if ((rootNode.mode & S_IFMT) !== S_IFDIR) throw new FormatError('ERR_SOURCE_TYPE', `Cannot build from ${root}: not a directory`, { path: root });
  if (writer) {
    const first = new Set(options.firstFiles ?? []);
    const ordered = [...pending.filter((p) => first.has(p.path.slice(root.length))), ...pending.filter((p) => !first.has(p.path.slice(root.length)))];
    for (const p of ordered) p.node.chunks = chunkLocalFile(writer, p.path, p.node.size);
  }
  return { root: rootNode };
}
