/**
 * The request dispatcher without a kernel: requests are built with the ABI encoders, replies are
 * captured from the write callback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dispatcher, WANTED_INIT_FLAGS, type DispatcherOptions, type InitResult } from '../../src/fuse/dispatch.js';
import {
  FuseOpcode, IN_HEADER_SIZE, InitFlag, InitFlag2, OUT_HEADER_SIZE, decodeAttrOut, decodeDirentpluses, decodeDirents,
  decodeEntryOut, decodeInitOut, decodeOpenOut, decodeOutHeader, decodeStatfsOut, encodeAccessIn, encodeBatchForget,
  encodeGetxattrIn, encodeInHeader, encodeInitIn, encodeInterruptIn, encodeOpenIn, encodeReadIn, encodeReleaseIn,
} from '../../src/fuse/abi/index.js';
import { ERRNO, FuseError } from '../../src/fuse/file-system.js';
import { MemoryFs } from './memory-fs.js';

interface Reply {
  unique: bigint;
  error: number;
  body: Buffer;
  iov: number;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function harness(fs: MemoryFs, extra: Partial<DispatcherOptions> = {}) {
  const replies: Reply[] = [];
  const warnings: string[] = [];
  const inits: InitResult[] = [];
  const initErrors: Error[] = [];
  let unique = 100n;
  const d = new Dispatcher(fs, {
    write(chunks) {
      const all = Buffer.concat(chunks);
      const h = decodeOutHeader(new DataView(all.buffer, all.byteOffset, all.byteLength), 0);
      assert.equal(h.len, all.length, 'out_header.len is the reply length');
      replies.push({ unique: h.unique, error: h.error, body: all.subarray(OUT_HEADER_SIZE), iov: chunks.length });
    },
    logger: { debug() {}, info() {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
    onInit: (r) => inits.push(r),
    onInitError: (e) => initErrors.push(e),
    onDestroy() {},
    ...extra,
  });
  /** Sends a request; returns its unique. */
  const send = (opcode: number, nodeid: number, body: Uint8Array = new Uint8Array(0), u?: bigint): bigint => {
    const id = u ?? (unique += 2n);
    const msg = Buffer.alloc(IN_HEADER_SIZE + body.length);
    encodeInHeader({ len: msg.length, opcode, unique: id, nodeid, uid: 0, gid: 0, pid: 1, totalExtlen: 0 }, new DataView(msg.buffer, msg.byteOffset), 0);
    msg.set(body, IN_HEADER_SIZE);
    d.handle(msg);
    return id;
  };
  /** Sends a request and waits for its reply. */
  const call = async (opcode: number, nodeid: number, body?: Uint8Array): Promise<Reply> => {
    const id = send(opcode, nodeid, body);
    for (let i = 0; i < 20; i++) {
      const r = replies.find((x) => x.unique === id);
      if (r) return r;
      await tick();
    }
    throw new Error(`no reply to opcode ${opcode}`);
  };
  return { d, replies, warnings, inits, initErrors, send, call };
}

function bytes(n: number, fill: (v: DataView) => void): Uint8Array {
  const b = new Uint8Array(n);
  fill(new DataView(b.buffer));
  return b;
}
const initBody = (minor: number, flags: number, flags2: number, maxReadahead = 131072): Uint8Array =>
  bytes(64, (v) => encodeInitIn({ major: 7, minor, maxReadahead, flags, flags2 }, v, 0));
const readBody = (fh: number, offset: number, size: number): Uint8Array =>
  bytes(40, (v) => encodeReadIn({ fh, offset, size, readFlags: 0, lockOwner: 0n, flags: 0 }, v, 0));
const xattrBody = (size: number, name?: string): Uint8Array => {
  const n = name === undefined ? Buffer.alloc(0) : Buffer.from(`${name}\0`);
  const b = new Uint8Array(8 + n.length);
  encodeGetxattrIn({ size }, new DataView(b.buffer), 0);
  b.set(n, 8);
  return b;
};
const dv = (b: Buffer): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

test('INIT answers 7.45 with the wanted flags the kernel offers, INIT_EXT and DIRECT_IO_ALLOW_MMAP', async () => {
  const { call, inits } = harness(new MemoryFs(), { maxReadahead: 65536 });
  const r = await call(FuseOpcode.INIT, 0, initBody(45, 0x73fffffb, 0x5fd));
  assert.equal(r.error, 0);
  assert.equal(r.body.length, 64);
  const out = decodeInitOut(dv(r.body), 0);
  assert.equal(out.major, 7);
  assert.equal(out.minor, 45);
  assert.equal(out.flags, ((WANTED_INIT_FLAGS & 0x73fffffb) | InitFlag.INIT_EXT) >>> 0);
  assert.equal(out.flags & InitFlag.AUTO_INVAL_DATA, 0);
  assert.equal(out.flags2, InitFlag2.DIRECT_IO_ALLOW_MMAP);
  assert.equal(out.maxReadahead, 65536);
  assert.equal(out.maxPages, 256);
  assert.equal(out.maxWrite, 1 << 20);
  assert.equal(out.timeGran, 1);
  assert.equal(inits.length, 1);
});

test('INIT never sets a flag the kernel did not offer, and caps the minor at 45', async () => {
  const { call } = harness(new MemoryFs());
  const offered = InitFlag.ASYNC_READ | InitFlag.MAX_PAGES; // no INIT_EXT
  const r = await call(FuseOpcode.INIT, 0, initBody(60, offered, 0xffff));
  const out = decodeInitOut(dv(r.body), 0);
  assert.equal(out.minor, 45);
  assert.equal(out.flags, offered);
  assert.equal(out.flags2, 0);
  assert.equal(out.maxReadahead, 131072);
});

test('INIT from a kernel older than 7.28 is refused with EPROTO', async () => {
  const { call, initErrors } = harness(new MemoryFs());
  const r = await call(FuseOpcode.INIT, 0, initBody(26, 1, 0).subarray(0, 16));
  assert.equal(r.error, -71);
  assert.equal(initErrors.length, 1);
});

test('LOOKUP answers entry_out, ENOENT, or a cacheable negative entry', async () => {
  const fs = new MemoryFs();
  fs.addFile(1, 'a', 'hello');
  const { call } = harness(fs);
  const ok = await call(FuseOpcode.LOOKUP, 1, Buffer.from('a\0'));
  assert.equal(ok.error, 0);
  const e = decodeEntryOut(dv(ok.body), 0);
  assert.equal(e.nodeid, 2);
  assert.equal(e.attr.size, 5);
  assert.equal((await call(FuseOpcode.LOOKUP, 1, Buffer.from('zz\0'))).error, -ERRNO.ENOENT);

  const neg = harness(fs, { negativeTimeout: 30, entryTimeout: 99 });
  const n = await neg.call(FuseOpcode.LOOKUP, 1, Buffer.from('zz\0'));
  assert.equal(n.error, 0);
  const ne = decodeEntryOut(dv(n.body), 0);
  assert.equal(ne.nodeid, 0);
  assert.equal(ne.entryValid, 30);
  // entryTimeout replaces the FileSystem's value.
  assert.equal(decodeEntryOut(dv((await neg.call(FuseOpcode.LOOKUP, 1, Buffer.from('a\0'))).body), 0).entryValid, 99);
});

test('GETATTR, STATFS, READLINK, OPEN and RELEASE', async () => {
  const fs = new MemoryFs();
  const f = fs.addFile(1, 'a', 'hello');
  const l = fs.addSymlink(1, 'l', 'a');
  const { call } = harness(fs, { attrTimeout: 7 });
  const ga = decodeAttrOut(dv((await call(FuseOpcode.GETATTR, f, new Uint8Array(16))).body), 0);
  assert.equal(ga.attr.ino, f);
  assert.equal(ga.attrValid, 7);
  assert.equal(decodeStatfsOut(dv((await call(FuseOpcode.STATFS, 1)).body), 0).namelen, 255);
  assert.equal((await call(FuseOpcode.READLINK, l)).body.toString(), 'a');
  const o = await call(FuseOpcode.OPEN, f, bytes(8, (v) => encodeOpenIn({ flags: 0x8000, openFlags: 0 }, v, 0)));
  assert.equal(o.error, 0);
  const oo = decodeOpenOut(dv(o.body), 0);
  assert.equal(oo.openFlags, 2, 'FOPEN_KEEP_CACHE');
  const rel = await call(FuseOpcode.RELEASE, f, bytes(24, (v) => encodeReleaseIn({ fh: oo.fh, flags: 0, releaseFlags: 0, lockOwner: 0n }, v, 0)));
  assert.equal(rel.error, 0);
  assert.equal(rel.body.length, 0);
  // Opening for writing is refused without asking the FileSystem.
  const opens = fs.calls.get('open');
  assert.equal((await call(FuseOpcode.OPEN, f, bytes(8, (v) => encodeOpenIn({ flags: 1, openFlags: 0 }, v, 0)))).error, -ERRNO.EROFS);
  assert.equal((await call(FuseOpcode.OPEN, f, bytes(8, (v) => encodeOpenIn({ flags: 0o1000, openFlags: 0 }, v, 0)))).error, -ERRNO.EROFS);
  assert.equal(fs.calls.get('open'), opens);
});

test('READ clamps to the requested size and sends all buffers in one writev', async () => {
  const fs = new MemoryFs();
  const f = fs.addFile(1, 'a', 'x');
  fs.read = async () => [Buffer.from('abc'), Buffer.from('defgh'), Buffer.from('ijk')];
  const { call, d } = harness(fs);
  const r = await call(FuseOpcode.READ, f, readBody(1, 0, 6));
  assert.equal(r.body.toString(), 'abcdef');
  assert.equal(r.iov, 3);
  assert.equal(d.stats.readBytes, 6);
  assert.equal((await call(FuseOpcode.READ, f, readBody(1, 0, 0))).body.length, 0);
});

test('GETXATTR and LISTXATTR: size 0 asks the size, too small is ERANGE, absent is ENODATA', async () => {
  const fs = new MemoryFs();
  fs.setXattr(1, 'user.k', 'value');
  fs.setXattr(1, 'trusted.x', '');
  const { call } = harness(fs);
  const q = await call(FuseOpcode.GETXATTR, 1, xattrBody(0, 'user.k'));
  assert.equal(q.error, 0);
  assert.equal(dv(q.body).getUint32(0, true), 5);
  assert.equal(q.body.length, 8);
  assert.equal((await call(FuseOpcode.GETXATTR, 1, xattrBody(4, 'user.k'))).error, -ERRNO.ERANGE);
  assert.equal((await call(FuseOpcode.GETXATTR, 1, xattrBody(64, 'user.k'))).body.toString(), 'value');
  assert.equal((await call(FuseOpcode.GETXATTR, 1, xattrBody(64, 'user.none'))).error, -ERRNO.ENODATA);
  const names = 'user.k\0trusted.x\0';
  assert.equal(dv((await call(FuseOpcode.LISTXATTR, 1, xattrBody(0))).body).getUint32(0, true), names.length);
  assert.equal((await call(FuseOpcode.LISTXATTR, 1, xattrBody(names.length - 1))).error, -ERRNO.ERANGE);
  assert.equal((await call(FuseOpcode.LISTXATTR, 1, xattrBody(names.length))).body.toString(), names);
});

test('READDIR packs 8-aligned dirents up to the size and continues from the last off', async () => {
  const fs = new MemoryFs();
  const dir = fs.mkdir(1, 'big');
  const want: string[] = ['.', '..'];
  for (let i = 0; i < 1000; i++) {
    const name = `entry-${String(i).padStart(4, '0')}${'x'.repeat(i % 13)}`;
    fs.addFile(dir, name, '');
    want.push(name);
  }
  for (const plus of [false, true]) {
    const { call } = harness(fs);
    const got: string[] = [];
    let offset = 0;
    let replies = 0;
    for (;;) {
      const r = await call(plus ? FuseOpcode.READDIRPLUS : FuseOpcode.READDIR, dir, readBody(1, offset, 4096));
      assert.equal(r.error, 0);
      assert.ok(r.body.length <= 4096);
      assert.equal(r.body.length % 8, 0);
      if (r.body.length === 0) break;
      replies++;
      const ents = plus
        ? decodeDirentpluses(r.body).map((x) => ({ ...x.dirent, nodeid: x.entry.nodeid }))
        : decodeDirents(r.body).map((x) => ({ ...x, nodeid: -1 }));
      for (const e of ents) {
        const name = Buffer.from(e.name).toString();
        got.push(name);
        if (plus) assert.equal(e.nodeid, name === '.' || name === '..' ? 0 : e.ino);
      }
      offset = ents[ents.length - 1]!.off;
    }
    assert.deepEqual(got, want);
    assert.ok(replies > (plus ? 30 : 5), `${replies} replies`);
  }
});

test('write requests answer EROFS; FLUSH, FSYNC and unknown opcodes ENOSYS', async () => {
  const { call } = harness(new MemoryFs());
  for (const op of [FuseOpcode.SETATTR, FuseOpcode.MKDIR, FuseOpcode.UNLINK, FuseOpcode.CREATE, FuseOpcode.WRITE,
    FuseOpcode.SETXATTR, FuseOpcode.RENAME2, FuseOpcode.TMPFILE, FuseOpcode.COPY_FILE_RANGE_64]) {
    assert.equal((await call(op, 1, new Uint8Array(64))).error, -ERRNO.EROFS, `opcode ${op}`);
  }
  for (const op of [FuseOpcode.FLUSH, FuseOpcode.FSYNC, FuseOpcode.FSYNCDIR]) assert.equal((await call(op, 1, new Uint8Array(24))).error, -ERRNO.ENOSYS, `opcode ${op}`);
  for (const op of [FuseOpcode.STATX, FuseOpcode.LSEEK, FuseOpcode.GETLK, FuseOpcode.IOCTL, 999]) {
    assert.equal((await call(op, 1, new Uint8Array(64))).error, -ERRNO.ENOSYS, `opcode ${op}`);
  }
  assert.equal((await call(FuseOpcode.ACCESS, 1, bytes(8, (v) => encodeAccessIn({ mask: 2 }, v, 0)))).error, -ERRNO.EROFS);
  assert.equal((await call(FuseOpcode.ACCESS, 1, bytes(8, (v) => encodeAccessIn({ mask: 4 }, v, 0)))).error, 0);
});

test('FORGET and BATCH_FORGET reach the FileSystem and get no reply', async () => {
  const fs = new MemoryFs();
  const { send, replies } = harness(fs);
  send(FuseOpcode.FORGET, 5, bytes(8, (v) => v.setBigUint64(0, 3n, true)));
  const items = [{ nodeid: 6, nlookup: 1 }, { nodeid: 7, nlookup: 2 }];
  send(FuseOpcode.BATCH_FORGET, 0, bytes(8 + 16 * items.length, (v) => encodeBatchForget(items, v, 0)));
  send(FuseOpcode.NOTIFY_REPLY, 0, new Uint8Array(40));
  await tick();
  assert.equal(replies.length, 0);
  assert.deepEqual([fs.lookups.get(5), fs.lookups.get(6), fs.lookups.get(7)], [-3, -1, -2]);
});

test('FileSystem errors map to errno: FuseError, errno property, anything else EIO', async () => {
  const fs = new MemoryFs();
  const f = fs.addFile(1, 'a', 'x');
  const { call, warnings } = harness(fs);
  const throwing = (e: unknown) => async () => { throw e; };
  fs.getattr = throwing(new FuseError(ERRNO.EACCES, 'no'));
  assert.equal((await call(FuseOpcode.GETATTR, f, new Uint8Array(16))).error, -ERRNO.EACCES);
  fs.getattr = throwing(Object.assign(new Error('x'), { errno: 36 }));
  assert.equal((await call(FuseOpcode.GETATTR, f, new Uint8Array(16))).error, -36);
  fs.getattr = throwing(Object.assign(new Error('node style'), { errno: -2, code: 'ENOENT' }));
  assert.equal((await call(FuseOpcode.GETATTR, f, new Uint8Array(16))).error, -ERRNO.EIO);
  fs.getattr = throwing(new TypeError('bug'));
  assert.equal((await call(FuseOpcode.GETATTR, f, new Uint8Array(16))).error, -ERRNO.EIO);
  fs.getattr = throwing('a string');
  assert.equal((await call(FuseOpcode.GETATTR, f, new Uint8Array(16))).error, -ERRNO.EIO);
  assert.ok(warnings.length >= 3);
});

test('a truncated request is answered EINVAL; a reply that fails with ENOENT is ignored', async () => {
  const fs = new MemoryFs();
  const { call, d } = harness(fs);
  assert.equal((await call(FuseOpcode.READ, 1, new Uint8Array(10))).error, -ERRNO.EINVAL);
  assert.equal((await call(FuseOpcode.BATCH_FORGET, 1, bytes(8, (v) => v.setUint32(0, 5, true)))).error, -ERRNO.EINVAL);
  assert.ok(d.stats.errors.READ === 1);

  let thrown = 0;
  const quiet = new Dispatcher(fs, {
    write() { thrown++; throw Object.assign(new Error('gone'), { code: 'ENOENT' }); },
    logger: { debug() {}, info() {}, warn() {}, error() { assert.fail('ENOENT on reply must not be logged as an error'); } },
    onInit() {}, onInitError() {}, onDestroy() {},
  });
  const msg = Buffer.alloc(40);
  encodeInHeader({ len: 40, opcode: FuseOpcode.STATFS, unique: 2n, nodeid: 1, uid: 0, gid: 0, pid: 0, totalExtlen: 0 }, dv(msg), 0);
  quiet.handle(msg);
  await tick();
  assert.equal(thrown, 1);
});

test('INTERRUPT answers a pending READ with EINTR at once; its late result is dropped', async () => {
  const fs = new MemoryFs();
  const f = fs.addFile(1, 'a', 'x');
  let finish!: (b: Uint8Array) => void;
  fs.read = () => new Promise((r) => { finish = r; });
  const { send, replies, d } = harness(fs);
  const u = send(FuseOpcode.READ, f, readBody(1, 0, 10));
  await tick();
  assert.equal(d.stats.inflight, 1);
  send(FuseOpcode.INTERRUPT, 0, bytes(8, (v) => encodeInterruptIn({ unique: u }, v, 0)), u | 1n);
  assert.equal(replies.length, 1);
  assert.equal(replies[0]!.unique, u);
  assert.equal(replies[0]!.error, -ERRNO.EINTR);
  finish(Buffer.from('late'));
  await tick();
  assert.equal(replies.length, 1);
  assert.equal(d.stats.inflight, 0);
  assert.equal(d.stats.interrupted, 1);
  // Interrupting something unknown does nothing.
  send(FuseOpcode.INTERRUPT, 0, bytes(8, (v) => encodeInterruptIn({ unique: 12345n }, v, 0)));
  assert.equal(replies.length, 1);
});

test('after close() no reply is written', async () => {
  const fs = new MemoryFs();
  const { send, replies, d } = harness(fs);
  d.close();
  send(FuseOpcode.STATFS, 1);
  await tick();
  assert.equal(replies.length, 0);
});
