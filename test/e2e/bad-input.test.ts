/**
 * Bad input end to end, through the real `nydus-image` CLI:
 *
 * 1. truncated or garbage layer tarballs (tar, tar.gz, tar.zst) make `create -t tar-rafs` fail with a
 *    one-line error naming the entry / offset, and leave no file behind in the output directory;
 * 2. tar member names that are absolute or climb out with `..` are normalised under the root, and the
 *    tar `unpack` writes back extracts inside its target directory only;
 * 3. CLI misuse gives a one-line error and a non-zero exit;
 * 4. a corrupt chunk in a blob fails `check` (naming the chunk and the digest mismatch) and `unpack`
 *    (leaving no output tar).
 *
 * The 0-byte layer: GNU tar 1.34 and Python's tarfile reject a 0-byte file ("does not look like a tar
 * archive"), but Go's archive/tar (containerd, nydusify) and the Rust tar crate Nydus builds with read
 * it as an archive without entries, and Nydus's own test textures use a 0-byte `tar/empty.tar` as a
 * builder input. So `create` accepts it as an empty layer: a bootstrap holding only the root and no blob.
 * @module
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { runCli, run, runOk, tempDir } from '../helpers/mounts.js';
import { prngBytes } from '../helpers/make-tree.js';
import { RafsImage } from '../../src/image/rafs-image.js';
import { fileSource } from '../../src/image/byte-source.js';
import { walkImage } from '../../src/image/walk.js';
import { S_IFMT, S_IFREG } from '../../src/format/v6/constants.js';
import { CHUNK_FLAG_COMPRESSED, type ChunkRecord } from '../../src/format/v6/chunk-record.js';
import { decompressChunk } from '../../src/util/compress.js';
import { digest } from '../../src/util/digest.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../../shared/fixtures/nydus');

let work: string;
/** A plain tar of `src/` (./, ./big, ./d/, ./d/small, ./e, ./small) and its entry offsets. */
let goodTar: Buffer;
let headers: Array<{ name: string; offset: number; size: number }>;

/** Headers of a plain ustar/GNU archive: name, header offset, body size. */
function tarHeaders(buf: Buffer): Array<{ name: string; offset: number; size: number }> {
  const out: Array<{ name: string; offset: number; size: number }> = [];
  let off = 0;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    out.push({ name, offset: off, size });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** Every path under `dir` (relative, directories with a trailing '/'), sorted. */
function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const ent of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel + ent.name;
      if (ent.isDirectory()) {
        out.push(`${r}/`);
        walk(path.join(d, ent.name), `${r}/`);
      } else out.push(r);
    }
  };
  if (fs.existsSync(dir)) walk(dir, '');
  return out.sort();
}

/** Asserts a failed CLI run printed exactly one line and no stack trace; returns that line. */
function oneLineError(r: { code: number; stderr: string }, what: string): string {
  assert.notEqual(r.code, 0, `${what}: expected a non-zero exit`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: stderr is not one line:\n${r.stderr}`);
  const line = lines[0] as string;
  assert.match(line, /^nydus-image: error: \S/, `${what}: ${line}`);
  assert.doesNotMatch(line, /\bat .*\.(ts|js):\d+/, `${what}: stack trace in ${line}`);
  return line;
}

/** Runs `create -t tar-rafs input -B out/boot -D out/blobs` in a fresh out dir that must fail and
 * leave no file; returns the error line. */
async function createMustFail(name: string, input: Buffer): Promise<string> {
  const dir = fs.mkdtempSync(path.join(work, `${name}-`));
  const src = path.join(dir, 'layer');
  fs.writeFileSync(src, input);
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const r = await runCli('nydus-image', ['create', '-t', 'tar-rafs', src, '-B', path.join(out, 'boot'), '-D', path.join(out, 'blobs')]);
  const line = oneLineError(r, name);
  const left = listTree(out);
  // No bootstrap, no blob, no temporary file. (The blob directory itself may have been created.)
  assert.deepEqual(left.filter((p) => !p.endsWith('/')), [], `${name}: files left in out/: ${left.join(', ')}`);
  return line;
}

before(async () => {
  work = await tempDir(undefined, 'nydus-bad-input-'); // removed at process exit
  const src = path.join(work, 'src');
  fs.mkdirSync(path.join(src, 'd'), { recursive: true });
  fs.writeFileSync(path.join(src, 'big'), prngBytes('bad-input/big', 100_000));
  fs.writeFileSync(path.join(src, 'small'), 'hi\n');
  fs.writeFileSync(path.join(src, 'd', 'small'), 'there\n');
  fs.writeFileSync(path.join(src, 'e'), prngBytes('bad-input/e', 7000));
  await runOk('tar', ['--sort=name', '--format=gnu', '--owner=0', '--group=0', '--mtime=@0', '-cf', path.join(work, 'good.tar'), '-C', src, '.']);
  goodTar = fs.readFileSync(path.join(work, 'good.tar'));
  headers = tarHeaders(goodTar);
  assert.deepEqual(headers.map((h) => h.name), ['./', './big', './d/', './d/small', './e', './small']);
});

function entry(name: string): { name: string; offset: number; size: number } {
  return headers.find((h) => h.name === name) as { name: string; offset: number; size: number };
}

test('a tar cut inside a file body fails naming the entry and its offset', async () => {
  const big = entry('./big');
  const line = await createMustFail('cut-body', goodTar.subarray(0, big.offset + 512 + 30_000));
  assert.match(line, /"(\.\/)?big"/, line);
  assert.match(line, new RegExp(`offset ${big.offset}\\b`), line);
  assert.match(line, /\[ERR_TRUNCATED\]$/, line);
});

test('a tar cut inside a header fails naming the entry and its offset', async () => {
  const e = entry('./e');
  const line = await createMustFail('cut-header', goodTar.subarray(0, e.offset + 300));
  assert.match(line, new RegExp(`offset ${e.offset}\\b`), line);
  assert.match(line, /"(\.\/)?e"/, line);
  assert.match(line, /\[ERR_TRUNCATED\]$/, line);
});

test('a tar.gz cut inside the gzip stream fails with the offset, leaving no file', async () => {
  const gz = gzipSync(goodTar);
  const line = await createMustFail('cut-gzip', gz.subarray(0, Math.floor(gz.length / 2)));
  assert.match(line, /gzip/, line);
  assert.match(line, /offset \d+/, line);
  assert.match(line, /\[ERR_TRUNCATED\]$/, line);
});

test('a tar.zst cut inside the zstd stream fails with the offset, leaving no file', async () => {
  const zst = path.join(work, 'good.tar.zst');
  await runOk('zstd', ['-q', '-f', '-o', zst, path.join(work, 'good.tar')]);
  const buf = fs.readFileSync(zst);
  const line = await createMustFail('cut-zstd', buf.subarray(0, Math.floor(buf.length / 2)));
  assert.match(line, /zstd/, line);
  assert.match(line, /offset \d+/, line);
  assert.match(line, /\[ERR_TRUNCATED\]$/, line);
});

// The decompressor's errors carry the compressed offset; the builder adds the tar entry being read.
test('a cut compressed layer names the tar entry being read', async () => {
  const gz = gzipSync(goodTar);
  const line = await createMustFail('cut-gzip-entry', gz.subarray(0, Math.floor(gz.length / 2)));
  assert.match(line, /"(\.\/)?big"/, line);
});

test('random bytes fail at offset 0', async () => {
  const line = await createMustFail('random', prngBytes('bad-input/random', 5000));
  assert.match(line, /offset 0\b/, line);
});

test('random bytes behind a gzip magic fail with an offset, leaving no file', async () => {
  const buf = Buffer.concat([Buffer.from([0x1f, 0x8b]), prngBytes('bad-input/random-gz', 5000)]);
  const line = await createMustFail('random-gzip', buf);
  assert.match(line, /gzip/, line);
  assert.match(line, /offset \d+/, line);
});

// A gzip header with a bad compression method is rejected as the header at offset 0.
test('random bytes behind a gzip magic fail at offset 0', async () => {
  const buf = Buffer.concat([Buffer.from([0x1f, 0x8b]), prngBytes('bad-input/random-gz', 5000)]);
  const line = await createMustFail('random-gzip-0', buf);
  assert.match(line, /offset 0\b/, line);
});

test('random bytes behind a zstd magic fail with an offset, leaving no file', async () => {
  const buf = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), prngBytes('bad-input/random-zst', 5000)]);
  const line = await createMustFail('random-zstd', buf);
  assert.match(line, /zstd/, line);
  assert.match(line, /offset \d+/, line);
});

test('an empty (0-byte) layer and an end-of-archive-only tar are empty layers: root only, no blob', async () => {
  const cases: Array<[string, Buffer]> = [
    ['nydus-texture-empty', fs.readFileSync(path.join(FIXTURES, 'tar/empty.tar'))],
    ['zero-bytes', Buffer.alloc(0)],
    ['eof-blocks', Buffer.alloc(1024)],
  ];
  assert.equal(cases[0]?.[1].length, 0, 'Nydus\'s tar/empty.tar texture is a 0-byte file');
  await Promise.all(cases.map(async ([name, buf]) => {
    const dir = fs.mkdtempSync(path.join(work, `${name}-`));
    fs.writeFileSync(path.join(dir, 'layer'), buf);
    const r = await runCli('nydus-image', ['create', '-t', 'tar-rafs', path.join(dir, 'layer'), '-B', path.join(dir, 'out/boot'), '-D', path.join(dir, 'out/blobs')]);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.deepEqual(listTree(path.join(dir, 'out')), ['blobs/', 'boot'], name);
    const img = new RafsImage(fileSource(path.join(dir, 'out/boot')));
    try {
      assert.deepEqual([...walkImage(img)].map((e) => e.path), ['/'], name);
      assert.equal(img.blobs.length, 0, name);
    } finally {
      img.close();
    }
    const c = await runCli('nydus-image', ['check', '-q', '-B', path.join(dir, 'out/boot')]);
    assert.equal(c.code, 0, `${name}: ${c.stderr}`);
  }));
});

/** Writes a tar of `members` with Python's tarfile (names kept exactly as given). */
async function pythonTar(file: string, members: Array<{ name: string; data?: string; symlink?: string }>): Promise<void> {
  const py = [
    'import io, json, sys, tarfile',
    'with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:',
    '    for m in json.loads(sys.argv[2]):',
    '        ti = tarfile.TarInfo(m["name"]); ti.mode = 0o644',
    '        if "symlink" in m:',
    '            ti.type = tarfile.SYMTYPE; ti.linkname = m["symlink"]; t.addfile(ti)',
    '        else:',
    '            data = m["data"].encode(); ti.size = len(data); t.addfile(ti, io.BytesIO(data))',
  ].join('\n');
  await runOk('python3', ['-c', py, file, JSON.stringify(members)]);
}

/** Builds `tarFile`, unpacks the image to a tar, checks its member names are relative, and extracts
 * it with GNU tar into `<dir>/parent/x`; returns the image paths and the extraction directory.
 * Asserts nothing appears in `dir` or `parent` beside what the test made. */
async function buildUnpackExtract(dir: string, tarFile: string): Promise<{ paths: string[]; target: string }> {
  const boot = path.join(dir, 'out/boot');
  const blobs = path.join(dir, 'out/blobs');
  const r = await runCli('nydus-image', ['create', '-t', 'tar-rafs', tarFile, '-B', boot, '-D', blobs]);
  assert.equal(r.code, 0, r.stderr);
  const img = new RafsImage(fileSource(boot));
  let paths: string[];
  try {
    paths = [...walkImage(img)].map((e) => e.path);
  } finally {
    img.close();
  }
  for (const p of paths) assert.doesNotMatch(p, /(^|\/)\.\.?(\/|$)/, p);

  const tarOut = path.join(dir, 'unpacked.tar');
  const u = await runCli('nydus-image', ['unpack', '-B', boot, '-D', blobs, '--output', tarOut]);
  assert.equal(u.code, 0, u.stderr);
  const members = (await runOk('tar', ['-tf', tarOut])).stdout.toString('utf8').trim().split('\n');
  for (const m of members) {
    assert.ok(m === './' || m.startsWith('./'), `member "${m}" is not relative`);
    assert.doesNotMatch(m, /(^|\/)\.\.(\/|$)/, m);
  }

  // Extract into a fresh directory inside an otherwise empty parent: nothing appears beside it.
  const parent = path.join(dir, 'parent');
  const target = path.join(parent, 'x');
  fs.mkdirSync(target, { recursive: true });
  const x = await run('tar', ['-xf', tarOut, '-C', target]);
  assert.equal(x.code, 0, x.stderr);
  assert.deepEqual(listTree(parent).filter((p) => !/^x\/./.test(p)), ['x/']);
  assert.deepEqual(listTree(dir).filter((p) => !/^(out|parent)\/./.test(p)), [path.basename(tarFile), 'out/', 'parent/', 'unpacked.tar']);
  return { paths, target };
}

test('absolute and ".." member names are normalised under the root, and unpack stays inside its directory', async () => {
  const dir = fs.mkdtempSync(path.join(work, 'evil-'));
  const evilTar = path.join(dir, 'evil.tar');
  const names = ['/etc/evil', '../../escape', 'a/../../b', './c'];
  await pythonTar(evilTar, names.map((name) => ({ name, data: `${name}\n` })));
  // The crafted names are really in the archive, unnormalised.
  const raw = fs.readFileSync(evilTar).toString('latin1');
  for (const n of names) assert.ok(raw.includes(n), n);

  const { paths, target } = await buildUnpackExtract(dir, evilTar);
  assert.deepEqual([...paths].sort(), ['/', '/b', '/c', '/escape', '/etc', '/etc/evil']);
  assert.equal(fs.readFileSync(path.join(target, 'etc/evil'), 'utf8'), '/etc/evil\n');
  assert.equal(fs.readFileSync(path.join(target, 'escape'), 'utf8'), '../../escape\n');
  assert.equal(fs.readFileSync(path.join(target, 'b'), 'utf8'), 'a/../../b\n');
  assert.equal(fs.readFileSync(path.join(target, 'c'), 'utf8'), './c\n');
});

test('a member under a symlink to an absolute path writes nothing through the symlink', async () => {
  const dir = fs.mkdtempSync(path.join(work, 'symlink-'));
  const outside = path.join(work, `outside-${path.basename(dir)}`);
  const tarFile = path.join(dir, 'link.tar');
  await pythonTar(tarFile, [{ name: 'lnk', symlink: outside }, { name: 'lnk/x', data: 'x\n' }, { name: 'ok', data: 'ok\n' }]);
  const { paths, target } = await buildUnpackExtract(dir, tarFile);
  assert.ok(paths.includes('/ok'), paths.join(', '));
  assert.ok(!fs.existsSync(outside), 'something was written through the symlink');
  assert.equal(fs.readFileSync(path.join(target, 'ok'), 'utf8'), 'ok\n');
});

test('CLI misuse: one-line errors with a non-zero exit', async () => {
  const dir = fs.mkdtempSync(path.join(work, 'usage-'));
  const srcDir = path.join(work, 'src');
  const rand8k = path.join(dir, 'random-8k');
  const rand100 = path.join(dir, 'random-100');
  fs.writeFileSync(rand8k, prngBytes('bad-input/8k', 8192));
  fs.writeFileSync(rand100, prngBytes('bad-input/100', 100));
  const b = path.join(dir, 'o/boot');
  const cases: Array<[string, string[], RegExp]> = [
    ['unknown flag', ['create', '--bogus', srcDir, '-B', b], /--bogus/],
    ['unknown command', ['frobnicate'], /frobnicate/],
    ['chunk size not a power of two', ['create', '--chunk-size', '0x1234', srcDir, '-B', b], /--chunk-size 0x1234/],
    ['chunk size too large', ['create', '--chunk-size', '0x2000000', srcDir, '-B', b], /--chunk-size 0x2000000/],
    ['unknown compressor', ['create', '--compressor', 'brotli', srcDir, '-B', b], /--compressor "brotli"/],
    ['gzip is read-only', ['create', '--compressor', 'gzip', srcDir, '-B', b], /--compressor "gzip"/],
    ['missing SOURCE', ['create', '-B', b], /SOURCE/],
    ['nonexistent directory source', ['create', path.join(dir, 'nope'), '-B', b], /does not exist/],
    ['nonexistent tar source', ['create', '-t', 'tar-rafs', path.join(dir, 'nope.tar'), '-B', b], /does not exist/],
    ['unknown source type', ['create', '-t', 'squashfs', srcDir, '-B', b], /squashfs/],
    ['check: random 8 KiB', ['check', '-B', rand8k], /s_magic .*not a RAFS v6 bootstrap/],
    ['check: 100-byte file', ['check', '-B', rand100], /100 bytes/],
    ['check: nonexistent bootstrap', ['check', '-B', path.join(dir, 'nope')], /Cannot open .*nope: no such file/],
    ['check: a directory', ['check', '-B', dir], /is a directory/],
    ['check: nothing to check', ['check'], /bootstrap/],
    ['unpack: random 8 KiB', ['unpack', '-B', rand8k, '--output', path.join(dir, 'o.tar')], /s_magic/],
    ['unpack: no --output', ['unpack', '-B', rand8k], /--output/],
    ['inspect: 100-byte file', ['inspect', '-B', rand100], /100 bytes/],
    ['stat: random 8 KiB', ['stat', '-B', rand8k], /s_magic/],
  ];
  const results = await Promise.all(cases.map(([, args]) => runCli('nydus-image', args)));
  cases.forEach(([what, , want], k) => {
    const r = results[k] as { code: number; stderr: string };
    const line = oneLineError(r, what);
    assert.match(line, want, `${what}: ${line}`);
  });
  assert.deepEqual(listTree(dir), ['random-100', 'random-8k'], 'a failed command left files behind');
});

/** Builds an image of a compressible multi-chunk file, returns its paths and chunk records. */
async function buildForCorruption(dir: string): Promise<{ boot: string; blobs: string; blobPath: string; recs: ChunkRecord[] }> {
  const src = path.join(dir, 'src');
  fs.mkdirSync(src, { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < 4000; i++) lines.push(`line ${i} of a compressible file ${(i * 7919) % 1013}`);
  fs.writeFileSync(path.join(src, 'text'), lines.join('\n'));
  fs.writeFileSync(path.join(src, 'small'), 'small\n');
  const boot = path.join(dir, 'out/boot');
  const blobs = path.join(dir, 'out/blobs');
  await runOk(path.join(import.meta.dirname, '../../bin/nydus-image'), ['create', '--chunk-size', '0x10000', '--compressor', 'zstd', '-B', boot, '-D', blobs, src]);
  const img = new RafsImage(fileSource(boot));
  try {
    const text = [...walkImage(img)].find((e) => e.path === '/text');
    assert.ok(text && (text.inode.mode & S_IFMT) === S_IFREG);
    const recs = img.chunkIndexes(text.inode).map((c) => img.chunkRecord(c));
    const blobId = img.blobs[0]?.slot.blobId as string;
    return { boot, blobs, blobPath: path.join(blobs, blobId), recs };
  } finally {
    img.close();
  }
}

test('a corrupt chunk fails check (naming the chunk and the digest mismatch) and unpack (no output tar)', async () => {
  const dir = fs.mkdtempSync(path.join(work, 'corrupt-'));
  const { boot, blobs, blobPath, recs } = await buildForCorruption(dir);
  assert.ok(recs.length >= 2, 'the file should span several chunks');
  const rec = recs[1] as ChunkRecord;
  assert.ok((rec.flags & CHUNK_FLAG_COMPRESSED) !== 0, 'chunk 1 should be stored compressed');
  const good = fs.readFileSync(blobPath);
  const ok = await runCli('nydus-image', ['check', '-q', '-B', boot, '-D', blobs]);
  assert.equal(ok.code, 0, ok.stderr);

  // Pick a byte of the compressed frame whose flip still decompresses (a literal), so that only the
  // digest can tell: deterministic for a given zstd build, searched rather than hard-coded.
  const frame = good.subarray(rec.compressedOffset, rec.compressedOffset + rec.compressedSize);
  let flipAt = -1;
  for (let k = Math.floor(frame.length / 2); k < frame.length && flipAt < 0; k++) {
    const m = Buffer.from(frame);
    m[k] = (m[k] as number) ^ 0x01;
    try {
      const d = decompressChunk('zstd', m, rec.uncompressedSize);
      if (Buffer.compare(digest('blake3', d), rec.digest) !== 0) flipAt = k;
    } catch {
      /* this byte breaks the frame: try the next */
    }
  }
  assert.ok(flipAt >= 0, 'no byte of the frame flips into a digest mismatch');
  const bad = Buffer.from(good);
  bad[rec.compressedOffset + flipAt] = (bad[rec.compressedOffset + flipAt] as number) ^ 0x01;
  fs.writeFileSync(blobPath, bad);

  const c = await runCli('nydus-image', ['check', '-q', '-B', boot, '-D', blobs]);
  const line = oneLineError(c, 'check of a corrupt chunk');
  assert.equal(c.code, 1);
  assert.match(line, new RegExp(`chunk ${rec.index} of blob [0-9a-f]{64}`), line);
  assert.match(line, /blake3 [0-9a-f]{64} differs from the stored [0-9a-f]{64}/, line);
  assert.match(line, /\[ERR_CHUNK_DIGEST\]$/, line);

  const outDir = path.join(dir, 'unpack');
  fs.mkdirSync(outDir);
  const u = await runCli('nydus-image', ['unpack', '-B', boot, '-D', blobs, '--output', path.join(outDir, 'out.tar')]);
  const uline = oneLineError(u, 'unpack of a corrupt chunk');
  assert.match(uline, /\/text/, uline);
  assert.match(uline, /differs from the stored/, uline);
  assert.deepEqual(listTree(outDir), [], 'unpack left output behind');

  // A flip that breaks the zstd frame itself: still one line, naming the chunk.
  const broken = Buffer.from(good);
  for (let k = 0; k < 8; k++) broken[rec.compressedOffset + k] = 0xff;
  fs.writeFileSync(blobPath, broken);
  const c2 = await runCli('nydus-image', ['check', '-q', '-B', boot, '-D', blobs]);
  const line2 = oneLineError(c2, 'check of a broken frame');
  assert.match(line2, new RegExp(`chunk ${rec.index} of blob [0-9a-f]{64}`), line2);
  const u2 = await runCli('nydus-image', ['unpack', '-B', boot, '-D', blobs, '--output', path.join(outDir, 'out.tar')]);
  oneLineError(u2, 'unpack of a broken frame');
  assert.deepEqual(listTree(outDir), [], 'unpack left output behind');
});
