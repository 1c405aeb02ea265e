/**
 * Whiteout conventions of layered images: OCI (`.wh.NAME`, `.wh..wh..opq`) and overlayfs
 * (a 0:0 character device, `trusted.overlay.opaque = y`).
 * @module
 */
import { S_IFCHR, S_IFMT } from '../format/v6/constants.js';
import { copyAttrs, isDir, makeNode, type BuildNode } from './build-node.js';

/** How whiteouts are spelled in a layer. */
export type WhiteoutSpec = 'oci' | 'overlayfs' | 'none';

/** Type guard for CLI input. */
export function isWhiteoutSpec(s: string): s is WhiteoutSpec {
  return s === 'oci' || s === 'overlayfs' || s === 'none';
}

/** OCI whiteout prefix. */
export const OCI_WHITEOUT_PREFIX = '.wh.';
/** OCI opaque marker name. */
export const OCI_OPAQUE = '.wh..wh..opq';
/** overlayfs opaque xattr. */
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

/** What a directory entry means under a whiteout spec. */
export type WhiteoutKind =
  | { kind: 'remove'; target: string }
  | { kind: 'opaque-marker' }
  | { kind: 'opaque-dir' }
  | undefined;

/** Classify entry `key` (latin1 name key) holding `node`. */
export function whiteoutKind(spec: WhiteoutSpec, key: string, node: BuildNode): WhiteoutKind {
  if (spec === 'oci') {
    if (key === OCI_OPAQUE) return { kind: 'opaque-marker' };
    if (key.startsWith(OCI_WHITEOUT_PREFIX) && key.length > OCI_WHITEOUT_PREFIX.length) return { kind: 'remove', target: key.slice(OCI_WHITEOUT_PREFIX.length) };
    return undefined;
  }
  if (spec === 'overlayfs') {
    if ((node.mode & S_IFMT) === S_IFCHR && node.rdev === 0) return { kind: 'remove', target: key };
    if (isDir(node) && node.xattrs.some((x) => x.name === OVERLAY_OPAQUE_XATTR && Buffer.from(x.value).toString() === 'y')) return { kind: 'opaque-dir' };
  }
  return undefined;
}

/** Remove whiteout entries from a bottom layer (nothing below them to hide). */
export function dropWhiteouts(spec: WhiteoutSpec, dir: BuildNode): void {
  if (spec === 'none' || !dir.children) return;
  for (const [k, c] of [...dir.children]) {
    const w = whiteoutKind(spec, k, c);
    if (w && w.kind !== 'opaque-dir') dir.children.delete(k);
    else if (isDir(c)) dropWhiteouts(spec, c);
  }
}

/**
 * Merge `upper` into `lower` (both directories) in place, applying whiteouts: removals and
 * opaque markers act on the lower entries first, then upper entries replace or join them;
 * directories present in both merge recursively with the upper attributes.
 */
export function applyLayer(spec: WhiteoutSpec, lower: BuildNode, upper: BuildNode): void {
  const lowerKids = lower.children as Map<string, BuildNode>;
  const added: Array<[string, BuildNode]> = [];
  for (const [k, u] of upper.children ?? []) {
    const w = whiteoutKind(spec, k, u);
    if (w?.kind === 'remove') { lowerKids.delete(w.target); continue; }
    if (w?.kind === 'opaque-marker') { lowerKids.clear(); continue; }
    if (w?.kind === 'opaque-dir') {
      const l = lowerKids.get(k);
      if (l?.children) l.children.clear();
      u.xattrs = u.xattrs.filter((x) => x.name !== OVERLAY_OPAQUE_XATTR);
    }
    added.push([k, u]);
  }
  for (const [k, u] of added) {
    const l = lowerKids.get(k);
    if (l && isDir(l) && isDir(u)) {
      copyAttrs(l, u);
      applyLayer(spec, l, u);
    } else if (isDir(u)) {
      const fresh = makeNode(u, { children: new Map() });
      lowerKids.set(k, fresh);
      applyLayer(spec, fresh, u);
    } else {
      lowerKids.set(k, u);
    }
  }
}
