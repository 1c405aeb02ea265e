import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ATTR_OUT_SIZE, ATTR_SIZE, ENTRY_OUT_SIZE, FuseOpcode, GETXATTR_OUT_SIZE, INIT_OUT_SIZE, IN_HEADER_SIZE, OPEN_OUT_SIZE,
  OUT_HEADER_SIZE, READ_IN_SIZE, STATFS_OUT_SIZE, decodeAccessIn, decodeAttr, decodeAttrOut, decodeBatchForget,
  decodeDirentpluses, decodeDirents, decodeEntryOut, decodeForgetIn, decodeGetattrIn, decodeGetxattrIn,
  decodeGetxattrOut, decodeInHeader, decodeInitIn, decodeInitOut, decodeInterruptIn, decodeOpenIn, decodeOpenOut,
  decodeOutHeader, decodeReadIn, decodeReleaseIn, decodeStatfsOut, direntSize, direntplusSize, encodeAccessIn,
  encodeAttr, encodeAttrOut, encodeBatchForget, encodeDirent, encodeDirentplus, encodeEntryOut, encodeGetxattrIn,
  encodeGetxattrOut, encodeInHeader, encodeInitIn, encodeInitOut, encodeInterruptIn, encodeOpenIn, encodeOpenOut,
  encodeOutHeader, encodeReadIn, encodeReleaseIn, encodeStatfsOut, opcodeName, type InitOut,
} from '../../src/fuse/abi/index.js';
import type { Attr, Entry } from '../../src/fuse/file-system.js';
import { FormatError } from '../../src/util/errors.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
const zeros = (n: number): string => '00'.repeat(n);

const ATTR: Attr = {
  ino: 5, size: 0x1000, blocks: 8, atime: 1_700_000_000, mtime: -1, ctime: 16, atimeNsec: 1, mtimeNsec: 2, ctimeNsec: 3,
  mode: 0o100644, nlink: 1, uid: 1000, gid: 100, rdev: 0x0801, blksize: 4096,
};
const ATTR_HEX = `0500000000000000 0010000000000000 0800000000000000 00f1536500000000 ffffffffffffffff 1000000000000000
  01000000 02000000 03000000 a4810000 01000000 e8030000 64000000 01080000 00100000 00000000`;

test('opcodes match include/uapi/linux/fuse.h (7.45)', () => {
  assert.equal(FuseOpcode.LOOKUP, 1);
  assert.equal(FuseOpcode.MKNOD, 8);
  assert.equal(FuseOpcode.FSYNC, 20);
  assert.equal(FuseOpcode.INIT, 26);
  assert.equal(FuseOpcode.BATCH_FORGET, 42);
  assert.equal(FuseOpcode.READDIRPLUS, 44);
  assert.equal(FuseOpcode.STATX, 52);
  assert.equal(FuseOpcode.COPY_FILE_RANGE_64, 53);
  assert.equal(opcodeName(15), 'READ');
  assert.equal(opcodeName(999), 'OP_999');
});

test('decodeInHeader() reads the 40-byte fuse_in_header', () => {
  const b = hex('50000000 0f000000 0807060504030201 2211000000000000 e8030000 64000000 92100000 0300 0000');
  assert.equal(b.length, IN_HEADER_SIZE);
  const h = decodeInHeader(view(b), 0);
  assert.deepEqual(h, { len: 0x50, opcode: 15, unique: 0x0102030405060708n, nodeid: 0x1122, uid: 1000, gid: 100, pid: 4242, totalExtlen: 3 });
  const back = new Uint8Array(IN_HEADER_SIZE);
  encodeInHeader(h, view(back), 0);
  assert.equal(toHex(back), toHex(b));
  assert.throws(() => decodeInHeader(view(b.subarray(0, 39)), 0), (e: unknown) => e instanceof FormatError && e.code === 'ERR_TRUNCATED');
});

test('encodeOutHeader() writes the 16-byte fuse_out_header with a negative errno', () => {
  const b = new Uint8Array(OUT_HEADER_SIZE);
  encodeOutHeader({ len: 0x18, error: -2, unique: 0x0102030405060708n }, view(b), 0);
  assert.equal(toHex(b), '18000000feffffff0807060504030201');
  assert.deepEqual(decodeOutHeader(view(b), 0), { len: 0x18, error: -2, unique: 0x0102030405060708n });
});

test('decodeInitIn() reads the 64-byte form with flags2 and the 16-byte form without', () => {
  const b = hex(`07000000 2d000000 00000200 fbffff73 fd050000 ${zeros(44)}`);
  assert.equal(b.length, 64);
  const x = decodeInitIn(view(b), 0, 64);
  assert.deepEqual(x, { major: 7, minor: 45, maxReadahead: 131072, flags: 0x73fffffb, flags2: 0x5fd });
  const back = new Uint8Array(64);
  encodeInitIn(x, view(back), 0);
  assert.equal(toHex(back), toHex(b));
  assert.equal(decodeInitIn(view(b.subarray(0, 16)), 0, 16).flags2, 0);
});

test('encodeInitOut() writes the 64-byte fuse_init_out', () => {
  const x: InitOut = {
    major: 7, minor: 45, maxReadahead: 0x20000, flags: 0x42c4e021, maxBackground: 64, congestionThreshold: 48,
    maxWrite: 0x100000, timeGran: 1, maxPages: 256, mapAlignment: 0, flags2: 0x10, maxStackDepth: 0, requestTimeout: 0,
  };
  const b = new Uint8Array(INIT_OUT_SIZE).fill(0xee);
  encodeInitOut(x, view(b), 0);
  assert.equal(toHex(b), toHex(hex(`07000000 2d000000 00000200 21e0c442 4000 3000 00001000 01000000 0001 0000 10000000 00000000 0000 ${zeros(22)}`)));
  assert.deepEqual(decodeInitOut(view(b), 0), x);
});

test('encodeAttr() writes the 88-byte fuse_attr (negative times as two\'s complement)', () => {
  const b = new Uint8Array(ATTR_SIZE);
  encodeAttr(ATTR, view(b), 0);
  assert.equal(toHex(b), toHex(hex(ATTR_HEX)));
  assert.deepEqual(decodeAttr(view(b), 0), ATTR);
});

test('encodeAttrOut() splits the timeout into seconds and nanoseconds', () => {
  const b = new Uint8Array(ATTR_OUT_SIZE);
  encodeAttrOut({ attrValid: 1.5, attr: ATTR }, view(b), 0);
  assert.equal(toHex(b), toHex(hex(`0100000000000000 0065cd1d 00000000 ${ATTR_HEX}`)));
  assert.deepEqual(decodeAttrOut(view(b), 0), { attrValid: 1.5, attr: ATTR });
});

test('encodeEntryOut() writes the 128-byte fuse_entry_out', () => {
  const e: Entry = { nodeid: 5, generation: 1, entryValid: 2, attrValid: 0.25, attr: ATTR };
  const b = new Uint8Array(ENTRY_OUT_SIZE);
  encodeEntryOut(e, view(b), 0);
  assert.equal(toHex(b), toHex(hex(`0500000000000000 0100000000000000 0200000000000000 0000000000000000 00000000 80b2e60e ${ATTR_HEX}`)));
  assert.deepEqual(decodeEntryOut(view(b), 0), e);
  // Negative or NaN timeouts become 0; huge ones saturate.
  encodeEntryOut({ ...e, entryValid: -1, attrValid: Number.POSITIVE_INFINITY }, view(b), 0);
  assert.equal(view(b).getBigUint64(16, true), 0n);
  assert.equal(view(b).getBigUint64(24, true), BigInt(Number.MAX_SAFE_INTEGER));
});

test('decodeGetattrIn() reads flags and fh', () => {
  assert.deepEqual(decodeGetattrIn(view(hex('01000000 00000000 0900000000000000')), 0), { getattrFlags: 1, fh: 9 });
});

test('open_in / open_out / release_in codecs', () => {
  const oi = hex('00800000 00000000');
  assert.deepEqual(decodeOpenIn(view(oi), 0), { flags: 0x8000, openFlags: 0 });
  const oi2 = new Uint8Array(8);
  encodeOpenIn({ flags: 0x8000, openFlags: 0 }, view(oi2), 0);
  assert.equal(toHex(oi2), toHex(oi));

  const oo = new Uint8Array(OPEN_OUT_SIZE);
  encodeOpenOut({ fh: 7, openFlags: 0xa }, view(oo), 0);
  assert.equal(toHex(oo), '07000000000000000a00000000000000');
  assert.deepEqual(decodeOpenOut(view(oo), 0), { fh: 7, openFlags: 0xa });

  const ri = hex('0700000000000000 00800000 01000000 9900000000000000');
  const r = decodeReleaseIn(view(ri), 0);
  assert.deepEqual(r, { fh: 7, flags: 0x8000, releaseFlags: 1, lockOwner: 0x99n });
  const ri2 = new Uint8Array(24);
  encodeReleaseIn(r, view(ri2), 0);
  assert.equal(toHex(ri2), toHex(ri));
});

test('decodeReadIn() reads the 40-byte fuse_read_in; huge offsets saturate', () => {
  const b = hex('0300000000000000 0000100000000000 00000200 02000000 0000000000000000 00800000 00000000');
  assert.equal(b.length, READ_IN_SIZE);
  const r = decodeReadIn(view(b), 0);
  assert.deepEqual(r, { fh: 3, offset: 0x100000, size: 0x20000, readFlags: 2, lockOwner: 0n, flags: 0x8000 });
  const back = new Uint8Array(READ_IN_SIZE);
  encodeReadIn(r, view(back), 0);
  assert.equal(toHex(back), toHex(b));
  view(back).setBigUint64(8, 0xffffffffffffffffn, true);
  assert.equal(decodeReadIn(view(back), 0).offset, Number.MAX_SAFE_INTEGER);
  assert.throws(() => decodeReadIn(view(b.subarray(0, 30)), 0), FormatError);
});

test('getxattr_in / getxattr_out codecs', () => {
  const gi = hex('40000000 00000000');
  assert.deepEqual(decodeGetxattrIn(view(gi), 0), { size: 0x40 });
  const gi2 = new Uint8Array(8);
  encodeGetxattrIn({ size: 0x40 }, view(gi2), 0);
  assert.equal(toHex(gi2), toHex(gi));
  const go = new Uint8Array(GETXATTR_OUT_SIZE).fill(0xff);
  encodeGetxattrOut({ size: 5 }, view(go), 0);
  assert.equal(toHex(go), '0500000000000000');
  assert.deepEqual(decodeGetxattrOut(view(go), 0), { size: 5 });
});

test('encodeStatfsOut() writes the 80-byte fuse_kstatfs', () => {
  const s = { blocks: 1000, bfree: 1, bavail: 2, files: 3, ffree: 4, bsize: 4096, namelen: 255, frsize: 4096 };
  const b = new Uint8Array(STATFS_OUT_SIZE).fill(0xaa);
  encodeStatfsOut(s, view(b), 0);
  assert.equal(toHex(b), toHex(hex(`e803000000000000 0100000000000000 0200000000000000 0300000000000000 0400000000000000
    00100000 ff000000 00100000 00000000 ${zeros(24)}`)));
  assert.deepEqual(decodeStatfsOut(view(b), 0), s);
});

test('encodeDirent() pads the name to 8 bytes; direntplus prefixes an entry_out', () => {
  const d = { ino: 5, off: 3, type: 8, name: Buffer.from('abc') };
  assert.equal(direntSize(3), 32);
  assert.equal(direntSize(8), 32);
  assert.equal(direntSize(9), 40);
  const b = new Uint8Array(32).fill(0xff);
  assert.equal(encodeDirent(d, b, 0), 32);
  assert.equal(toHex(b), toHex(hex('0500000000000000 0300000000000000 03000000 08000000 616263 0000000000')));
  assert.deepEqual(decodeDirents(b).map((x) => ({ ...x, name: Buffer.from(x.name).toString() })), [{ ino: 5, off: 3, type: 8, name: 'abc' }]);

  const e: Entry = { nodeid: 5, generation: 1, entryValid: 2, attrValid: 0.25, attr: ATTR };
  assert.equal(direntplusSize(3), 160);
  const p = new Uint8Array(direntplusSize(3) + direntplusSize(1));
  let off = encodeDirentplus(e, d, p, 0);
  assert.equal(off, 160);
  assert.equal(toHex(p.subarray(0, 128)), toHex(hex(`0500000000000000 0100000000000000 0200000000000000 0000000000000000 00000000 80b2e60e ${ATTR_HEX}`)));
  assert.equal(toHex(p.subarray(128, 160)), toHex(b));
  off += encodeDirentplus(undefined, { ino: 1, off: 1, type: 4, name: Buffer.from('.') }, p, off);
  assert.equal(off, p.length);
  const back = decodeDirentpluses(p);
  assert.equal(back.length, 2);
  assert.deepEqual(back[0]!.entry, e);
  assert.equal(back[1]!.entry.nodeid, 0);
  assert.equal(Buffer.from(back[1]!.dirent.name).toString(), '.');
});

test('forget_in and batch_forget codecs', () => {
  assert.deepEqual(decodeForgetIn(view(hex('0300000000000000')), 0), { nlookup: 3 });
  const b = hex('02000000 00000000 0500000000000000 0100000000000000 0600000000000000 0200000000000000');
  const items = decodeBatchForget(view(b), 0);
  assert.deepEqual(items, [{ nodeid: 5, nlookup: 1 }, { nodeid: 6, nlookup: 2 }]);
  const back = new Uint8Array(b.length);
  assert.equal(encodeBatchForget(items, view(back), 0), b.length);
  assert.equal(toHex(back), toHex(b));
  // A count larger than the message is refused.
  assert.throws(() => decodeBatchForget(view(b.subarray(0, 24)), 0), FormatError);
});

test('interrupt_in and access_in codecs', () => {
  const i = hex('1000000000000000');
  assert.deepEqual(decodeInterruptIn(view(i), 0), { unique: 16n });
  const i2 = new Uint8Array(8);
  encodeInterruptIn({ unique: 16n }, view(i2), 0);
  assert.equal(toHex(i2), toHex(i));
  const a = hex('04000000 00000000');
  assert.deepEqual(decodeAccessIn(view(a), 0), { mask: 4 });
  const a2 = new Uint8Array(8);
  encodeAccessIn({ mask: 4 }, view(a2), 0);
  assert.equal(toHex(a2), toHex(a));
});
