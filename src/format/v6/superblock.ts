/**
 * The EROFS superblock (128 bytes at offset 1024) as RAFS v6 writes it.
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { getU64, setU64 } from '../../util/bytes.js';
import {
  EROFS_BLOCK_BITS, EROFS_DEVT_SLOT_OFF, EROFS_FEATURE_COMPAT_RAFS_V6, EROFS_SUPER_MAGIC, EROFS_SUPER_SIZE,
  RAFS_V6_FEATURE_INCOMPAT,
} from './constants.js';

/** Size of the encoded superblock. */
export const SUPERBLOCK_SIZE = EROFS_SUPER_SIZE;

/** Decoded EROFS superblock fields Nydus uses. */
export interface Superblock {
  /** @0 s_magic u32: 0xE0F5E1E2. */
  magic: number;
  /** @4 s_checksum u32: 0 (no sb checksum). */
  checksum: number;
  /** @8 s_feature_compat u32: 0x40000000 marks RAFS v6. */
  featureCompat: number;
  /** @12 s_blkszbits u8: 12. */
  blkszbits: number;
  /** @13 s_extslots u8: 0. */
  extslots: number;
  /** @14 s_root_nid u16. */
  rootNid: number;
  /** @16 s_inos u64: number of inodes. */
  inos: number;
  /** @24 s_build_time u64, @32 s_build_time_nsec u32. */
  buildTime: number;
  buildTimeNsec: number;
  /** @36 s_blocks u32: Σ blob uncompressed size / 4096. */
  blocks: number;
  /** @40 s_meta_blkaddr u32: start block of the inode area. */
  metaBlkaddr: number;
  /** @44 s_xattr_blkaddr u32: 0 (no shared xattrs). */
  xattrBlkaddr: number;
  /** @48 uuid[16]. */
  uuid: Uint8Array;
  /** @64 volume_name[16]. */
  volumeName: Uint8Array;
  /** @80 s_feature_incompat u32: exactly 0x0C. */
  featureIncompat: number;
  /** @86 s_extra_devices u16: number of blobs. */
  extraDevices: number;
  /** @88 s_devt_slotoff u16: 11. */
  devtSlotOff: number;
}

/** A superblock with Nydus's defaults. */
export function newSuperblock(fields: Partial<Superblock> = {}): Superblock {
  return {
    magic: EROFS_SUPER_MAGIC, checksum: 0, featureCompat: EROFS_FEATURE_COMPAT_RAFS_V6, blkszbits: EROFS_BLOCK_BITS,
    extslots: 0, rootNid: 0, inos: 0, buildTime: 0, buildTimeNsec: 0, blocks: 0, metaBlkaddr: 0, xattrBlkaddr: 0,
    uuid: new Uint8Array(16), volumeName: new Uint8Array(16), featureIncompat: RAFS_V6_FEATURE_INCOMPAT,
    extraDevices: 0, devtSlotOff: EROFS_DEVT_SLOT_OFF, ...fields,
  };
}

/** Decode the superblock from `view` at `off` (normally 1024). */
export function decodeSuperblock(view: DataView, off: number): Superblock {
  if (view.byteLength < off + SUPERBLOCK_SIZE) {
    throw new FormatError('ERR_TRUNCATED', `Cannot decode superblock: file has ${view.byteLength} bytes, needs ${off + SUPERBLOCK_SIZE}`, { offset: off });
  }
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  return {
    magic: view.getUint32(off, true),
    checksum: view.getUint32(off + 4, true),
    featureCompat: view.getUint32(off + 8, true),
    blkszbits: view.getUint8(off + 12),
    extslots: view.getUint8(off + 13),
    rootNid: view.getUint16(off + 14, true),
    inos: getU64(view, off + 16, 's_inos'),
    buildTime: getU64(view, off + 24, 's_build_time'),
    buildTimeNsec: view.getUint32(off + 32, true),
    blocks: view.getUint32(off + 36, true),
    metaBlkaddr: view.getUint32(off + 40, true),
    xattrBlkaddr: view.getUint32(off + 44, true),
    uuid: bytes.slice(off + 48, off + 64),
    volumeName: bytes.slice(off + 64, off + 80),
    featureIncompat: view.getUint32(off + 80, true),
    extraDevices: view.getUint16(off + 86, true),
    devtSlotOff: view.getUint16(off + 88, true),
  };
}

/** Encode `sb` into `view` at `off`; reserved bytes are zeroed. */
export function encodeSuperblock(sb: Superblock, view: DataView, off: number): void {
  for (let i = 0; i < SUPERBLOCK_SIZE; i++) view.setUint8(off + i, 0);
  view.setUint32(off, sb.magic, true);
  view.setUint32(off + 4, sb.checksum, true);
  view.setUint32(off + 8, sb.featureCompat, true);
  view.setUint8(off + 12, sb.blkszbits);
  view.setUint8(off + 13, sb.extslots);
  view.setUint16(off + 14, sb.rootNid, true);
  setU64(view, off + 16, sb.inos);
  setU64(view, off + 24, sb.buildTime);
  view.setUint32(off + 32, sb.buildTimeNsec, true);
  view.setUint32(off + 36, sb.blocks, true);
  view.setUint32(off + 40, sb.metaBlkaddr, true);
  view.setUint32(off + 44, sb.xattrBlkaddr, true);
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  bytes.set(sb.uuid.subarray(0, 16), off + 48);
  bytes.set(sb.volumeName.subarray(0, 16), off + 64);
  view.setUint32(off + 80, sb.featureIncompat, true);
  view.setUint16(off + 86, sb.extraDevices, true);
  view.setUint16(off + 88, sb.devtSlotOff, true);
}

/** Check the invariants Nydus's reader enforces. Throws FormatError naming the field. */
export function validateSuperblock(sb: Superblock, fileSize: number): void {
  const bad = (field: string, why: string): never => {
    throw new FormatError('ERR_BAD_SUPERBLOCK', `Cannot use superblock: ${field} ${why}`, { offset: 1024 });
  };
  if (sb.magic !== EROFS_SUPER_MAGIC) bad('s_magic', `is 0x${sb.magic.toString(16)}, expected 0x${EROFS_SUPER_MAGIC.toString(16)}`);
  if (sb.checksum !== 0) bad('s_checksum', `is 0x${sb.checksum.toString(16)}, expected 0`);
  if (sb.featureCompat !== EROFS_FEATURE_COMPAT_RAFS_V6) bad('s_feature_compat', `is 0x${sb.featureCompat.toString(16)}, expected 0x40000000 (RAFS v6)`);
  if (sb.blkszbits !== EROFS_BLOCK_BITS && sb.blkszbits !== 9) bad('s_blkszbits', `is ${sb.blkszbits}, expected 12`);
  if (sb.extslots !== 0) bad('s_extslots', `is ${sb.extslots}, expected 0`);
  if (sb.inos === 0) bad('s_inos', 'is 0');
  if (sb.featureIncompat !== RAFS_V6_FEATURE_INCOMPAT) bad('s_feature_incompat', `is 0x${sb.featureIncompat.toString(16)}, expected 0xc`);
  if (sb.devtSlotOff !== EROFS_DEVT_SLOT_OFF) bad('s_devt_slotoff', `is ${sb.devtSlotOff}, expected 11`);
  if (sb.xattrBlkaddr !== 0) bad('s_xattr_blkaddr', `is ${sb.xattrBlkaddr}, expected 0 (no shared xattrs)`);
  const blksize = 1 << sb.blkszbits;
  if (sb.metaBlkaddr * blksize >= fileSize) bad('s_meta_blkaddr', `${sb.metaBlkaddr} points past the end of the ${fileSize}-byte bootstrap`);
  if (sb.metaBlkaddr * blksize + sb.rootNid * 32 + 32 > fileSize) bad('s_root_nid', `${sb.rootNid} points past the end of the bootstrap`);
}
