/**
 * Builds a tree from an OCI layer tarball (plain, gzip or zstd), streaming: entry data is chunked
 * into the blob as it arrives, never extracted or held whole.
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from '../../format/v6/constants.js';
import { splitXattrName, type Xattr } from '../../format/v6/xattr.js';
import { openLayer } from '../../tar/open-layer.js';
import { parseTar, type TarEntry } from '../../tar/parse-tar.js';
import type { BlobWriter } from '../blob-writer.js';
import { chunkSegments } from '../file-chunker.js';
import { copyAttrs, ensureDir, isDir, lookupPath, makeNode, newDirNode, utf8Key, type BuildNode } from '../build-node.js';

/** Options of a tar build. */
export interface TarSourceOptions {
  onWarn?: (code: string, message: string) => void;
  /**
   * Paths of the prefetch table (absolute; a directory stands for everything under it), in the
   * order the workload opens them. Data of the files they cover is placed together after the
   * other chunks of the blob, in that order, since a stream cannot be reordered as it passes
   * (see blob-writer.ts). "/" alone (everything) changes nothing.
   */
  prefetch?: readonly string[];
}

/**
 * Rank of a tar path in the prefetch table: the position of the first pattern that covers it (the
 * path itself or a directory above it), or undefined when none does. The whole function is
 * undefined when the table covers nothing or everything ("/").
 */
export function prefetchMatcher(paths: readonly string[]): ((tarPath: string) => number | undefined) | undefined {
  const rank = new Map<string, number>();
  for (const p of paths) {
    const clean = p.split('/').filter((x) => x !== '' && x !== '.').join('/');
    if (clean === '') return undefined;
    if (!rank.has(clean)) rank.set(clean, rank.size);
  }
  if (rank.size === 0) return undefined;
  return (tarPath: string): number | undefined => {
    let best: number | undefined;
    let p = tarPath;
    for (;;) {
      const r = rank.get(p);
      if (r !== undefined && (best === undefined || r < best)) best = r;
      const cut = p.lastIndexOf('/');
      if (cut < 0) return best;
      p = p.slice(0, cut);
    }
  };
}

const TYPE_BITS: Record<TarEntry['type'], number> = {
  file: S_IFREG, hardlink: S_IFREG, symlink: S_IFLNK, chardev: S_IFCHR, blockdev: S_IFBLK, dir: S_IFDIR, fifo: S_IFIFO,
};

/** Linux new_encode_dev. */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

function xattrsOf(e: TarEntry, onWarn: TarSourceOptions['onWarn']): Xattr[] {
  const out: Xattr[] = [];
  for (const [name, value] of e.xattrs) {
    if (!splitXattrName(name)) {
      onWarn?.('ERR_XATTR_PREFIX', `xattr "${name}" of ${e.path} is not in an EROFS namespace; skipped`);
      continue;
    }
    out.push({ name, value });
  }
  return out;
}

/** Read a layer stream and return the tree; file data goes to `writer`. */
export async function buildFromTar(input: AsyncIterable<Uint8Array>, writer: BlobWriter, options: TarSourceOptions = {}): Promise<{ root: BuildNode }> {
  const root = newDirNode();
  const inPrefetch = prefetchMatcher(options.prefetch ?? []);
  let current: TarEntry | undefined;
  try {
    await readEntries();
  } catch (err) {
    // Decompression errors come from below the tar parser: name the entry being read.
    if (err instanceof FormatError && err.path === undefined && current) {
      throw new FormatError(err.code, `Cannot read tar entry "${current.path}" (header at offset ${current.headerOffset}): ${err.message}`, { cause: err, path: current.path, offset: err.offset ?? current.headerOffset });
    }
    throw err;
  }
  return { root };

  async function readEntries(): Promise<void> {
    for await (const e of parseTar(openLayer(input), options.onWarn ? { onWarn: (c, m) => options.onWarn?.(c, m) } : {})) {
      current = e;
      const parts = e.path === '' ? [] : e.path.split('/');
      const attrs = {
        mode: TYPE_BITS[e.type] | (e.mode & 0o7777), uid: e.uid, gid: e.gid, mtime: e.mtime, mtimeNsec: e.mtimeNsec,
        rdev: e.type === 'chardev' || e.type === 'blockdev' ? encodeDev(e.devmajor, e.devminor) : 0,
        size: 0, xattrs: xattrsOf(e, options.onWarn),
      };
      if (parts.length === 0) {
        if (e.type !== 'dir') throw new FormatError('ERR_TAR_ROOT', `Cannot build from tar: entry at offset ${e.headerOffset} names the root but is a ${e.type}`, { offset: e.headerOffset });
        copyAttrs(root, attrs);
        continue;
      }
      const parent = ensureDir(root, parts.slice(0, -1));
      const children = parent.children as Map<string, BuildNode>;
      const key = utf8Key(parts[parts.length - 1] as string);
      let node: BuildNode;
      if (e.type === 'dir') {
        const existing = children.get(key);
        if (existing && isDir(existing)) {
          copyAttrs(existing, attrs);
          node = existing;
        } else {
          node = makeNode(attrs, { children: new Map() });
        }
      } else if (e.type === 'hardlink') {
        const target = lookupPath(root, e.linkname);
        if (!target || (target.mode & S_IFMT) !== S_IFREG) throw new FormatError('ERR_TAR_HARDLINK', `Cannot build from tar: hardlink "${e.path}" at offset ${e.headerOffset} points to "${e.linkname}", which is not an earlier regular file`, { path: e.path, offset: e.headerOffset });
        node = target;
      } else {
        node = makeNode(attrs);
        if (e.type === 'symlink') node.target = new Uint8Array(Buffer.from(e.linkname, 'utf8'));
        if (e.type === 'file') {
          node.size = e.size;
          node.chunks = await chunkSegments(writer, e.body(), e.size, e.path, inPrefetch?.(e.path));
        }
      }
      children.set(key, node);
    }
  }
}
