import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTar } from '../../src/tar/parse-tar.js';
import { NydusError } from '../../src/util/errors.js';
import { byPath, collect, whole } from './helpers.js';
import { base256, concat, endOfArchive, fileEntry, header, metaEntry, padded, paxBody } from './tar-builder.js';

const enc = new TextEncoder();

test('base-256 numeric fields: large sizes, ids and negative times', async () => {
  const data = concat([
    header({ name: 'big', size: base256(5n, 12), uid: base256(2n ** 40n, 8), gid: base256(77n, 8), mtime: base256(-12345n, 12) }),
    padded(enc.encode('hello')),
    header({ name: 'far', mtime: base256(2n ** 45n, 12), magic: 'gnu' }),
    endOfArchive(),
  ]);
  const [big, far] = await collect(whole(data));
  assert.ok(big && far);
  assert.equal(big.size, 5);
  assert.equal(Buffer.from(big.content).toString(), 'hello');
  assert.equal(big.uid, 2 ** 40);
  assert.equal(big.gid, 77);
  assert.equal(big.mtime, -12345);
  assert.equal(far.mtime, 2 ** 45);
});

test('signed-sum checksums (historic tars with high-bit bytes) are accepted', async () => {
  const data = concat([fileEntry('ünï', 'x', { signedChecksum: true }), endOfArchive()]);
  const [e] = await collect(whole(data));
  assert.equal(e?.path, 'ünï');
});

test('ustar prefix joins the name; v7 headers and GNU dumpdirs', async () => {
  const data = concat([
    fileEntry('name.txt', 'p', { prefix: 'some/prefix' }),
    header({ name: 'olddir/', type: '\0', magic: 'v7', mode: 0o755 }),
    fileEntry('v7file', 'v7', { type: '\0', magic: 'v7' }),
    header({ name: 'dumpdir', type: 'D', size: 4, magic: 'gnu' }),
    padded(enc.encode('Yx\0\0')),
    endOfArchive(),
  ]);
  const entries = await collect(whole(data));
  assert.deepEqual(
    entries.map((e) => [e.path, e.type, e.size, e.uname]),
    [
      ['some/prefix/name.txt', 'file', 1, ''],
      ['olddir', 'dir', 0, ''],
      ['v7file', 'file', 2, ''],
      ['dumpdir', 'dir', 0, ''],
    ],
  );
});

test('PAX records override the header: path, linkpath, size, ids, names, times, devices', async () => {
  const pax = paxBody([
    ['path', '../../etc/passwd'],
    ['uid', '4000000000'],
    ['gid', '42'],
    ['uname', 'üser'],
    ['gname', 'grp'],
    ['mtime', '-1.25'],
    ['size', '6'],
    ['comment', 'ignored'],
  ]);
  const link = paxBody([['linkpath', '/abs/../target/./x'], ['SCHILY.devmajor', '300']]);
  const data = concat([
    metaEntry('x', pax),
    header({ name: 'short', size: 0 }),
    padded(enc.encode('abcdef')),
    metaEntry('x', link),
    header({ name: 'hl', type: '1', linkname: 'ignored' }),
    metaEntry('x', link),
    header({ name: 'sl', type: '2', linkname: 'ignored' }),
    metaEntry('x', link),
    header({ name: 'dev', type: '3', devmajor: 1, devminor: 9 }),
    endOfArchive(),
  ]);
  const entries = await collect(whole(data));
  const f = byPath(entries, 'etc/passwd');
  assert.equal(f.uid, 4000000000);
  assert.equal(f.gid, 42);
  assert.equal(f.uname, 'üser');
  assert.equal(f.gname, 'grp');
  assert.equal(f.mtime, -2);
  assert.equal(f.mtimeNsec, 750000000);
  assert.equal(Buffer.from(f.content).toString(), 'abcdef');
  assert.equal(f.headerOffset, 0);
  assert.equal(byPath(entries, 'hl').linkname, 'target/x');
  assert.equal(byPath(entries, 'sl').linkname, '/abs/../target/./x');
  assert.deepEqual([byPath(entries, 'dev').devmajor, byPath(entries, 'dev').devminor], [300, 9]);
});

test('PAX global headers apply to later entries; per-entry records win; empty values unset', async () => {
  const data = concat([
    metaEntry('g', paxBody([['uid', '7'], ['uname', 'global'], ['path', 'not-applied'], ['SCHILY.xattr.user.g', 'gv']]), 'pax_global_header'),
    fileEntry('a', 'a', { uid: 1, uname: 'hdr' }),
    metaEntry('x', paxBody([['uid', '8'], ['uname', '']])),
    fileEntry('b', 'b', { uid: 1, uname: 'hdr' }),
    endOfArchive(),
  ]);
  const entries = await collect(whole(data));
  assert.deepEqual(
    entries.map((e) => [e.path, e.uid, e.uname, Object.fromEntries([...e.xattrs].map(([k, v]) => [k, Buffer.from(v).toString()]))]),
    [
      ['a', 7, 'global', { 'user.g': 'gv' }],
      ['b', 8, 'global', { 'user.g': 'gv' }],
    ],
  );
  assert.equal(entries[0]?.headerOffset, 1024, 'the global header is not part of the entry');
});

test('LIBARCHIVE.xattr records: URL-encoded names, base64 values', async () => {
  const value = Uint8Array.from([0, 1, 2, 255, 61, 10]);
  const data = concat([
    metaEntry(
      'x',
      paxBody([
        ['LIBARCHIVE.xattr.user.a%3Db%20c', Buffer.from(value).toString('base64')],
        ['SCHILY.xattr.security.capability', Uint8Array.from([1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])],
      ]),
    ),
    fileEntry('f', ''),
    endOfArchive(),
  ]);
  const [e] = await collect(whole(data));
  assert.ok(e);
  assert.deepEqual([...e.xattrs.keys()], ['user.a=b c', 'security.capability']);
  assert.deepEqual(e.xattrs.get('user.a=b c'), value);
  assert.equal(e.xattrs.get('security.capability')?.length, 20);
});

test('GNU long name and long link headers ("L", "K") with unsafe paths', async () => {
  const long = `../${'x'.repeat(300)}`;
  const data = concat([
    metaEntry('L', enc.encode(`${long}\0`), '././@LongLink'),
    fileEntry('trunc', 'body'),
    metaEntry('K', enc.encode(`/${'y'.repeat(200)}/../z\0`), '././@LongLink'),
    metaEntry('L', enc.encode('link\0'), '././@LongLink'),
    header({ name: 'l', type: '1', linkname: 'short' }),
    endOfArchive(),
  ]);
  const entries = await collect(whole(data));
  assert.deepEqual(
    entries.map((e) => [e.path, e.type, e.linkname, e.headerOffset]),
    [
      ['x'.repeat(300), 'file', '', 0],
      ['link', 'hardlink', 'z', 2048],
    ],
  );
});

test('unknown entry types are skipped with a warning; trailing data after the end is reported', async () => {
  const warnings: Array<[string, string, unknown]> = [];
  const data = concat([
    header({ name: 'label', type: 'V', size: 3 }),
    padded(enc.encode('vol')),
    fileEntry('a', 'a'),
    header({ name: 'cont', type: 'M', size: 700 }),
    padded(new Uint8Array(700)),
    fileEntry('b', 'b'),
    endOfArchive(),
    enc.encode('junk'),
  ]);
  const entries = await collect(whole(data), { onWarn: (code, message, info) => warnings.push([code, message, info]) });
  assert.deepEqual(
    entries.map((e) => e.path),
    ['a', 'b'],
  );
  assert.deepEqual(
    warnings.map(([c, , info]) => [c, info]),
    [
      ['TAR_UNKNOWN_TYPE', { offset: 0, path: 'label', typeflag: 'V' }],
      ['TAR_UNKNOWN_TYPE', { offset: 2048, path: 'cont', typeflag: 'M' }],
      ['TAR_TRAILING_DATA', { offset: 4608 + 1024 }],
    ],
  );
  assert.match(warnings[0]?.[1] ?? '', /^Skipping tar entry "label" at offset 0: type 'V' is not supported$/);
});

test('a lone zero block then EOF ends the archive; non-file entries with data are skipped', async () => {
  const data = concat([header({ name: 'd', type: '5', size: 600 }), padded(new Uint8Array(600)), fileEntry('f', 'f'), new Uint8Array(512)]);
  const entries = await collect(whole(data));
  assert.deepEqual(
    entries.map((e) => [e.path, e.type, e.size, e.content.length]),
    [
      ['d', 'dir', 0, 0],
      ['f', 'file', 1, 1],
    ],
  );
});

test('PAX 1.0 sparse map written by hand, and the root entry', async () => {
  const map = enc.encode('2\n0\n3\n10\n2\n');
  const stored = concat([padded(map), enc.encode('abcde')]);
  const data = concat([
    header({ name: './', type: '5' }),
    metaEntry('x', paxBody([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.name', 'dir/sp'], ['GNU.sparse.realsize', '20']])),
    header({ name: 'GNUSparseFile.0/sp', size: stored.length }),
    padded(stored),
    endOfArchive(),
  ]);
  const [root, sp] = await collect(whole(data));
  assert.equal(root?.path, '');
  assert.equal(root?.type, 'dir');
  assert.ok(sp);
  assert.equal(sp.path, 'dir/sp');
  assert.equal(sp.size, 20);
  assert.equal(sp.sparse, true);
  assert.equal(Buffer.from(sp.content).toString('latin1'), 'abc\0\0\0\0\0\0\0de\0\0\0\0\0\0\0\0');
  assert.equal(sp.segments, 2);
});

test('reading a body concurrently with advancing the parser is refused', async () => {
  const data = concat([fileEntry('a', 'x'.repeat(2000)), fileEntry('b', 'b'), endOfArchive()]);
  async function* slow(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < data.length; i += 100) {
      await new Promise((r) => setTimeout(r, 1));
      yield data.subarray(i, i + 100);
    }
  }
  const it = parseTar(slow());
  const first = await it.next();
  assert.ok(first.done !== true);
  const body = first.value.body()[Symbol.asyncIterator]();
  await body.next();
  const pendingBody = body.next();
  const advancing = it.next();
  const results = await Promise.allSettled([pendingBody, advancing]);
  const codes = results.map((r) => (r.status === 'rejected' && r.reason instanceof NydusError ? r.reason.code : r.status));
  assert.ok(codes.includes('ERR_TAR_BODY'), JSON.stringify(codes));
});
