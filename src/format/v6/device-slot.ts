/**
 * One EROFS device-table slot (128 bytes from offset 1408): a blob as an extra device.
 * @module
 */
import { FormatError } from '../../util/errors.js';
import { decodeCString, encodeCString } from '../../util/bytes.js';
import { EROFS_DEVSLOT_SIZE } from './constants.js';

/** Size of one slot. */
export const DEVICE_SLOT_SIZE = EROFS_DEVSLOT_SIZE;

/** Decoded device slot. */
export interface DeviceSlot {
  /** @0 blob_id[64]: ASCII hex, NUL-padded. */
  blobId: string;
  /** @64 blocks u32: uncompressed blob size / block size. */
  blocks: number;
  /** @68 mapped_blkaddr u32: where the blob starts on a flat block device. */
  mappedBlkaddr: number;
}

/** Decode a slot at `off`. */
export function decodeDeviceSlot(view: DataView, off: number): DeviceSlot {
  if (view.byteLength < off + DEVICE_SLOT_SIZE) throw new FormatError('ERR_TRUNCATED', `Cannot decode device slot at ${off}: bootstrap too short`, { offset: off });
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  return { blobId: decodeCString(bytes, off, 64), blocks: view.getUint32(off + 64, true), mappedBlkaddr: view.getUint32(off + 68, true) };
}

/** Encode a slot at `off`. */
export function encodeDeviceSlot(s: DeviceSlot, view: DataView, off: number): void {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  bytes.fill(0, off, off + DEVICE_SLOT_SIZE);
  encodeCString(s.blobId, bytes, off, 64);
  view.setUint32(off + 64, s.blocks, true);
  view.setUint32(off + 68, s.mappedBlkaddr, true);
}

/** Reject what Nydus rejects: empty ids, zero blocks. */
export function validateDeviceSlot(s: DeviceSlot, index: number): void {
  if (s.blobId.length === 0) throw new FormatError('ERR_BAD_DEVICE_SLOT', `Cannot use device slot ${index}: blob_id is empty`, { offset: 1408 + index * 128 });
  if (s.blocks === 0) throw new FormatError('ERR_BAD_DEVICE_SLOT', `Cannot use device slot ${index}: blocks is 0`, { offset: 1408 + index * 128 });
}
