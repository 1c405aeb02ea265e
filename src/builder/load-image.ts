/**
 * Loads a bootstrap into a BuildNode tree (for merge): attributes, xattrs, symlink targets and
 * chunk references, with blob indexes remapped into a shared blob list.
 * @module
 */
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../format/v6/constants.js';
import type { RafsImage } from '../image/rafs-image.js';
import type { InodeInfo } from '../image/rafs-image.js';
import { walkImage } from '../image/walk.js';
import type { ChunkRecord } from '../format/v6/chunk-record.js';
import { makeNode, nameKey, type BuildNode, type FileChunk } from './build-node.js';

/** Load every entry of `image`; `blobMap[i]` is the merged index of the image's blob i. */
export function loadImageTree(image: RafsImage, blobMap: readonly number[]): BuildNode {
  const byNid = new Map<number, BuildNode>();
  const records = new Map<string, ChunkRecord>();
  const toNode = (i: InodeInfo): BuildNode => {
    const type = i.mode & S_IFMT;
    const node = makeNode({
      mode: i.mode, uid: image.uidOf(i), gid: image.gidOf(i), mtime: i.mtime, mtimeNsec: i.mtimeNsec,
      rdev: image.rdev(i), size: type === S_IFREG ? i.size : 0, xattrs: image.xattrs(i),
    });
    if (type === S_IFDIR) node.children = new Map();
    if (type === S_IFLNK) node.target = image.readlink(i);
    if (type === S_IFREG) {
      node.chunks = image.chunkIndexes(i).map((c): FileChunk => {
        const blobIndex = blobMap[c.blobIndex] as number;
        const key = `${blobIndex}:${c.chunkIndex}`;
        let rec = records.get(key);
        if (!rec) {
          rec = { ...image.chunkRecord(c), blobIndex };
          records.set(key, rec);
        }
        return { blobIndex, record: rec };
      });
    }
    return node;
  };
  let root: BuildNode | undefined;
  for (const e of walkImage(image)) {
    if (e.path === '/') {
      root = toNode(e.inode);
      byNid.set(e.inode.nid, root);
      continue;
    }
    const parent = byNid.get(e.parentNid) as BuildNode;
    let node = (e.inode.mode & S_IFMT) === S_IFREG ? byNid.get(e.inode.nid) : undefined;
    if (!node) {
      node = toNode(e.inode);
      byNid.set(e.inode.nid, node);
    }
    (parent.children as Map<string, BuildNode>).set(nameKey(e.name), node);
  }
  return root as BuildNode;
}
