/**
 * The file system rule of `nydusify check`: walk two trees without following symlinks and compare
 * the path set, type, mode, uid, gid, size, rdev, symlink target, xattrs, the sha256 of file
 * content, and which paths are hard links of each other. mtime is not compared and the root is skipped, as nydusify does.
 * @module
 */
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { listAttributesSync, getAttributeSync } from '@napi-rs/xattr';

interface NodeInfo {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  rdev: number;
  link: string;
  xattrs: string;
  abs: string;
  /** The first path (in walk order) of the inode this path is a hard link of; itself when it has none. */
  linkRep: string;
}

function typeOf(st: fs.Stats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

function xattrsOf(p: string, isLink: boolean): string {
  if (isLink) return '';
  const names = listAttributesSync(p).sort();
  return names.map((n) => `${n}=${(getAttributeSync(p, n) ?? Buffer.alloc(0)).toString('hex')}`).join(',');
}

function walk(root: string): Map<string, NodeInfo> {
  const out = new Map<string, NodeInfo>();
  const firstPathOfInode = new Map<string, string>();
  const visit = (rel: string): void => {
    const abs = rel === '' ? root : join(root, rel);
    for (const name of fs.readdirSync(abs).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const p = join(abs, name);
      const st = fs.lstatSync(p);
      const type = typeOf(st);
      let linkRep = r;
      if (type !== 'dir' && st.nlink > 1) {
        // Exact inode numbers (they can pass 2^53), with the device.
        const b = fs.lstatSync(p, { bigint: true });
        const key = `${b.dev}:${b.ino}`;
        linkRep = firstPathOfInode.get(key) ?? r;
        if (linkRep === r) firstPathOfInode.set(key, r);
      }
      out.set(r, {
        linkRep,
        type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: type === 'file' || type === 'symlink' ? st.size : 0,
        rdev: type === 'chardev' || type === 'blockdev' ? st.rdev : 0,
        link: type === 'symlink' ? fs.readlinkSync(p) : '', xattrs: xattrsOf(p, type === 'symlink'), abs: p,
      });
      if (type === 'dir') visit(r);
    }
  };
  visit('');
  return out;
}

async function sha256File(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of fs.createReadStream(p, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

/** Result of a comparison. */
export interface TreeDiff {
  /** Paths compared (the union of both trees). */
  entries: number;
  /** One line per difference, path first. */
  diffs: string[];
}

const oct = (m: number): string => m.toString(8).padStart(4, '0');

/** Compare `expected` (the source rootfs) with `actual` (the mounted Nydus image). */
export async function compareTrees(expected: string, actual: string): Promise<TreeDiff> {
  const a = walk(expected);
  const b = walk(actual);
  const diffs: string[] = [];
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const p of paths) {
    const x = a.get(p);
    const y = b.get(p);
    const name = `/${p}`;
    if (!y) { diffs.push(`${name}: missing in target (source has a ${x?.type ?? '?'})`); continue; }
    if (!x) { diffs.push(`${name}: only in target (a ${y.type})`); continue; }
    if (x.type !== y.type) { diffs.push(`${name}: type ${x.type} in source, ${y.type} in target`); continue; }
    if (x.mode !== y.mode) diffs.push(`${name}: mode ${oct(x.mode)} in source, ${oct(y.mode)} in target`);
    if (x.uid !== y.uid || x.gid !== y.gid) diffs.push(`${name}: owner ${x.uid}:${x.gid} in source, ${y.uid}:${y.gid} in target`);
    if (x.size !== y.size) diffs.push(`${name}: size ${x.size} in source, ${y.size} in target`);
    if (x.rdev !== y.rdev) diffs.push(`${name}: rdev ${x.rdev} in source, ${y.rdev} in target`);
    if (x.link !== y.link) diffs.push(`${name}: symlink target ${JSON.stringify(x.link)} in source, ${JSON.stringify(y.link)} in target`);
    if (x.xattrs !== y.xattrs) diffs.push(`${name}: xattrs {${x.xattrs}} in source, {${y.xattrs}} in target`);
    // Both trees are walked in the same order, so equal link groups have equal first paths.
    if (x.linkRep !== y.linkRep) diffs.push(`${name}: ${x.linkRep === p ? 'no hard link to an earlier path' : `a hard link of /${x.linkRep}`} in source, ${y.linkRep === p ? 'no hard link to an earlier path' : `a hard link of /${y.linkRep}`} in target`);
    if (x.type === 'file' && x.size === y.size) {
      const [hx, hy] = await Promise.all([sha256File(x.abs), sha256File(y.abs)]);
      if (hx !== hy) diffs.push(`${name}: content sha256 ${hx} in source, ${hy} in target`);
    }
  }
  return { entries: paths.length, diffs };
}
