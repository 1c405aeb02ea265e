/**
 * dm-verity hash tree (format 1, sha256, 4 KiB blocks, empty salt, no superblock) laid out as
 * Nydus writes it: top level first, level 1 (data block digests) last, unused digest slots
 * filled with the digest of a zero block.
 * @module
 */
import { createHash } from 'node:crypto';

const PAGE = 4096;
const PER_PAGE = PAGE / 32;

/** sha256 of a 4 KiB zero block: fills unused slots. */
export const ZERO_PAGE_DIGEST = createHash('sha256').update(new Uint8Array(PAGE)).digest();

/** Page counts per level (index 1 = digests of data pages). */
export function verityLevels(dataPages: number): number[] {
  const pages = [dataPages];
  let n = dataPages;
  while (n > 1) {
    n = Math.ceil(n / PER_PAGE);
    pages.push(n);
  }
  return pages;
}

/**
 * Build the hash tree from the digests of every data page (in order). Returns the tree bytes
 * and the root digest.
 */
export function buildVerityTree(dataDigests: readonly Uint8Array[]): { tree: Uint8Array; root: Uint8Array } {
  const levels = verityLevels(dataDigests.length);
  const maxLevel = levels.length - 1;
  if (maxLevel === 0) {
    return { tree: new Uint8Array(0), root: dataDigests.length === 1 ? (dataDigests[0] as Uint8Array) : ZERO_PAGE_DIGEST };
  }
  let total = 0;
  for (let l = 1; l <= maxLevel; l++) total += levels[l] as number;
  const tree = new Uint8Array(total * PAGE);
  for (let k = 0; k < tree.length; k += 32) tree.set(ZERO_PAGE_DIGEST, k);
  const base = (level: number): number => {
    let off = 0;
    for (let l = maxLevel; l > level; l--) off += (levels[l] as number) * PAGE;
    return off;
  };
  dataDigests.forEach((d, k) => tree.set(d, base(1) + k * 32));
  for (let l = 2; l <= maxLevel; l++) {
    const src = base(l - 1);
    const dst = base(l);
    const count = levels[l - 1] as number;
    for (let k = 0; k < count; k++) {
      tree.set(createHash('sha256').update(tree.subarray(src + k * PAGE, src + (k + 1) * PAGE)).digest(), dst + k * 32);
    }
  }
  return { tree, root: new Uint8Array(createHash('sha256').update(tree.subarray(0, PAGE)).digest()) };
}
