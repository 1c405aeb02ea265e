import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSuperblock, encodeSuperblock, newSuperblock, validateSuperblock } from '../../src/format/v6/superblock.js';
import { decodeExtSuperblock, encodeExtSuperblock, validateExtSuperblock } from '../../src/format/v6/ext-superblock.js';
import { decodeChunkIndex, encodeChunkIndex, chunkFormat } from '../../src/format/v6/chunk-index.js';
import { decodeInode, encodeInode } from '../../src/format/v6/inode.js';
import { decodeXattrs, encodeXattrs, xattrBodySize, xattrIcount } from '../../src/format/v6/xattr.js';
import { decodeDirBlock, encodeDirBlock } from '../../src/format/v6/dirent.js';
import { decodeChunkInfoV1, encodeChunkInfoV1 } from '../../src/format/blob/chunk-info.js';
import { decodeSectionHeader, encodeSectionHeader } from '../../src/format/blob/section-header.js';
import { buildVerityTree } from '../../src/export/verity.js';
import { FormatError } from '../../src/util/errors.js';

test('encodeSuperblock() writes magic, feature bits and slot offset at their offsets', () => {
  const buf = new Uint8Array(128);
  const v = new DataView(buf.buffer);
  encodeSuperblock(newSuperblock({ rootNid: 128, inos: 3, blocks: 9, metaBlkaddr: 2, extraDevices: 1 }), v, 0);
  assert.equal(Buffer.from(buf.subarray(0, 4)).toString('hex'), 'e2e1f5e0');
  assert.equal(v.getUint32(8, true), 0x40000000);
  assert.equal(buf[12], 12);
  assert.equal(v.getUint16(14, true), 128);
  assert.equal(v.getUint32(80, true), 0x0c);
  assert.equal(v.getUint16(86, true), 1);
  assert.equal(v.getUint16(88, true), 11);
  const back = decodeSuperblock(v, 0);
  assert.equal(back.metaBlkaddr, 2);
  assert.equal(back.inos, 3);
});

test('validateSuperblock() rejects bad magic and names the field', () => {
  const sb = newSuperblock({ rootNid: 128, inos: 3, metaBlkaddr: 2, magic: 0x1234 });
  assert.throws(() => validateSuperblock(sb, 20480), (e: unknown) => e instanceof FormatError && /s_magic/.test(e.message));
  assert.throws(() => validateSuperblock({ ...sb, magic: 0xe0f5e1e2, featureIncompat: 0x1 }, 20480), /s_feature_incompat/);
  assert.throws(() => validateSuperblock({ ...sb, magic: 0xe0f5e1e2, metaBlkaddr: 100 }, 20480), /s_meta_blkaddr/);
});

test('ext superblock round-trips and validates one compression bit', () => {
  const buf = new Uint8Array(256);
  const v = new DataView(buf.buffer);
  const x = { flags: 0x194, blobTableOffset: 4096, blobTableSize: 256, chunkSize: 0x100000, chunkTableOffset: 16384, chunkTableSize: 160, prefetchTableOffset: 0, prefetchTableSize: 0 };
  encodeExtSuperblock(x, v, 0);
  assert.deepEqual(decodeExtSuperblock(v, 0), x);
  validateExtSuperblock(x, 20480);
  assert.throws(() => validateExtSuperblock({ ...x, flags: 0x1 | 0x80 | 0x4 }, 20480), /compression bits/);
  assert.throws(() => validateExtSuperblock({ ...x, chunkSize: 3000 }, 20480), /chunk_size/);
});

test('chunk index encodes Nydus\'s address layout (blob 3, ci 0x123456, blk 0xa5a53412)', () => {
  const buf = new Uint8Array(8);
  const v = new DataView(buf.buffer);
  encodeChunkIndex({ blobIndex: 3, chunkIndex: 0x123456, blkaddr: 0xa5a53412 }, v, 0);
  assert.equal(Buffer.from(buf).toString('hex'), '5634' + '0412' + '1234a5a5');
  assert.deepEqual(decodeChunkIndex(v, 0), { blobIndex: 3, chunkIndex: 0x123456, blkaddr: 0xa5a53412 });
  assert.equal(chunkFormat(0x100000), 0x28);
  assert.equal(chunkFormat(0x1000), 0x20);
});

test('extended inode round-trips through its 64-byte form', () => {
  const buf = new Uint8Array(64);
  const v = new DataView(buf.buffer);
  const i = { extended: true, layout: 4, xattrIcount: 5, mode: 0o104755, nlink: 3, size: 5 * 2 ** 30, u: 0x28, ino: 7, uid: 100000, gid: 65534, mtime: 4102444800, mtimeNsec: 123456789 };
  encodeInode(i, v, 0);
  assert.equal(v.getUint16(0, true), 0x9);
  assert.deepEqual(decodeInode(v, 0), i);
});

test('xattrs encode to Nydus sizes ({user.a=[1], trusted.b=[2]} is 28 bytes, icount 5)', () => {
  const xs = [{ name: 'user.a', value: new Uint8Array([1]) }, { name: 'trusted.b', value: new Uint8Array([2]) }];
  assert.equal(xattrBodySize(xs), 28);
  assert.equal(xattrIcount(28), 5);
  const buf = new Uint8Array(28);
  encodeXattrs(xs, buf, 0);
  const back = decodeXattrs(buf, 0, 28, 'test');
  assert.deepEqual(back.map((x) => x.name).sort(), ['trusted.b', 'user.a']);
  assert.throws(() => xattrBodySize([{ name: 'foo.bar', value: new Uint8Array(1) }]), /namespace/);
});

test('directory blocks round-trip and reject bad name offsets', () => {
  const names = ['.', '..', 'a', 'bb'].map((n) => new Uint8Array(Buffer.from(n)));
  const block = new Uint8Array(4096);
  const used = encodeDirBlock(names.map((name, k) => ({ name, nid: 128 + k, fileType: 1 })), block);
  assert.equal(used, 4 * 12 + 6);
  const back = decodeDirBlock(block.subarray(0, used), 'test');
  assert.deepEqual(back.map((d) => Buffer.from(d.name).toString()), ['.', '..', 'a', 'bb']);
  const bad = block.slice(0, used);
  new DataView(bad.buffer).setUint16(8, 7, true);
  assert.throws(() => decodeDirBlock(bad, 'test'), /nameoff/);
});

test('chunk info v1 packs sizes and offsets as Nydus does', () => {
  const buf = new Uint8Array(16);
  const v = new DataView(buf.buffer);
  const c = { compressedOffset: 4828, compressedSize: 2974, uncompressedOffset: 20480, uncompressedSize: 13400, compressed: true };
  encodeChunkInfoV1(c, v, 0);
  assert.deepEqual(decodeChunkInfoV1(v, 0), c);
  const big = { compressedOffset: 2 ** 39, compressedSize: 0x1000000, uncompressedOffset: 2 ** 43, uncompressedSize: 0x1000000, compressed: false };
  encodeChunkInfoV1(big, v, 0);
  assert.deepEqual(decodeChunkInfoV1(v, 0), big);
});

test('section header encodes a GNU header with checksum, as the fixture blob has', () => {
  const h = encodeSectionHeader('rafs.blob.toc', 512);
  assert.equal(Buffer.from(h.subarray(148, 156)).toString('latin1'), '0006255\0');
  assert.deepEqual(decodeSectionHeader(h, 0), { name: 'rafs.blob.toc', size: 512 });
  const bad = h.slice();
  bad[0] = 0x41;
  assert.throws(() => decodeSectionHeader(bad, 0), /checksum/);
});

test('buildVerityTree() of one page is that page\'s digest; two levels put the top first', () => {
  const d = new Uint8Array(32).fill(7);
  assert.deepEqual(buildVerityTree([d]).root, d);
  const many = Array.from({ length: 200 }, () => d);
  const { tree } = buildVerityTree(many);
  assert.equal(tree.length, 3 * 4096);
});
