/**
 * Deterministic fuzzing of the bootstrap reader and checker, in process: every mutant of a few
 * valid bootstraps must either pass `checkImage` or fail with a NydusError carrying a message —
 * never a TypeError / RangeError / other crash, never a hang. A sample also goes through `unpack`
 * (in process) and through the real `nydus-image check` CLI (exit 1, one-line error). The blob ToC
 * reader gets the same treatment with mutated tails of the ToC fixture blob.
 *
 * Bases: the Nydus 2.2 fixture bootstrap (with its blob, so chunks are verified), the bootstrap
 * inlined in the ToC fixture blob (its data is in that same blob), and a bootstrap built here from a
 * tree with directories, symlinks, hardlinks, xattrs, a 300-entry directory (several dirent blocks),
 * a device, a fifo, chunked files (4 KiB chunks, lz4_block) and a prefetch table.
 *
 * Flipped bits in data no check covers (mtime, mode bits, uid, padding) legitimately pass.
 *
 * Knobs: NYDUS_FUZZ_COUNT (mutants per base, default 300), NYDUS_FUZZ_SEED (default 20240601).
 * A failure prints the base, the mutant number and its mutation, which reproduce it with the seed.
 * @module
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, runOk, tempDir } from '../helpers/mounts.js';
import { prngBytes } from '../helpers/make-tree.js';
import { RafsImage, type InodeInfo } from '../../src/image/rafs-image.js';
import { bufferSource, fileSource } from '../../src/image/byte-source.js';
import { checkImage } from '../../src/image/check-image.js';
import { walkImage } from '../../src/image/walk.js';
import { BlobResolver } from '../../src/blob/blob-resolver.js';
import { readBlobToc, readInlineBootstrap, readTocSection } from '../../src/blob/blob-toc.js';
import { unpackToTar } from '../../src/export/unpack.js';
import { decodeDirBlock } from '../../src/format/v6/dirent.js';
import { inodeSize } from '../../src/format/v6/inode.js';
import { EROFS_INODE_FLAT_INLINE } from '../../src/format/v6/constants.js';
import { NydusError } from '../../src/util/errors.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../../shared/fixtures/nydus');
const FIXTURE_BOOT = path.join(FIXTURES, 'rafs-v6-2.2.boot');
const FIXTURE_BLOBS = path.join(FIXTURES, 'blobs');
const TOC_BLOB = path.join(FIXTURES, 'toc/2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca');

const COUNT = Number(process.env.NYDUS_FUZZ_COUNT ?? 300);
const SEED = Number(process.env.NYDUS_FUZZ_SEED ?? 20240601);
/** Longest a single reader call may take before it counts as a hang. */
const MAX_CALL_MS = 3000;

/** mulberry32: a small deterministic PRNG. */
function prng(seed: number): { next(): number; int(n: number): number } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n) };
}

interface Base {
  name: string;
  boot: Uint8Array;
  /** Blobs of the image (chunk verification runs with them). */
  blobs: BlobResolver;
  /** Regions to aim at: [name, start, end). */
  regions: Array<[string, number, number]>;
}

/** Outcome of running one reader operation on a mutant. */
type Outcome = { kind: 'pass' } | { kind: 'error'; error: NydusError } | { kind: 'crash'; error: unknown };

function attempt(fn: () => void): Outcome {
  try {
    fn();
    return { kind: 'pass' };
  } catch (e) {
    if (e instanceof NydusError && e.message.trim().length > 0) return { kind: 'error', error: e };
    return { kind: 'crash', error: e };
  }
}

/** Open and fully check a bootstrap held in memory. */
function checkBuffer(buf: Uint8Array, blobs: BlobResolver | undefined): void {
  const img = new RafsImage(bufferSource(buf, 'mutant'));
  checkImage(img, blobs);
}

const INTERESTING = [0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0x1000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

/** One mutant of `base`: returns the bytes and a description that reproduces it. */
function mutate(base: Base, r: ReturnType<typeof prng>): { buf: Uint8Array; what: string } {
  const kind = r.int(10);
  const buf = Uint8Array.from(base.boot);
  const flip = (lo: number, hi: number, n: number): string[] => {
    const at: string[] = [];
    for (let j = 0; j < n; j++) {
      const off = lo + r.int(hi - lo);
      const bit = r.int(8);
      buf[off] = (buf[off] as number) ^ (1 << bit);
      at.push(`${off}.${bit}`);
    }
    return at;
  };
  if (kind <= 2) return { buf, what: `flip ${flip(0, buf.length, 1 + r.int(8)).join(',')}` };
  if (kind === 3) {
    const at: string[] = [];
    for (let j = 0, n = 1 + r.int(8); j < n; j++) {
      const off = r.int(buf.length);
      buf[off] = r.int(256);
      at.push(`${off}=${buf[off]}`);
    }
    return { buf, what: `bytes ${at.join(',')}` };
  }
  if (kind === 4) {
    // Truncate: half the time at a block boundary (passes the size check, fails deeper).
    const len = r.int(2) === 0 ? r.int(buf.length / 4096) * 4096 : r.int(buf.length);
    return { buf: buf.subarray(0, len), what: `truncate ${len}` };
  }
  const [rname, lo, hi] = base.regions[r.int(base.regions.length)] as [string, number, number];
  if (kind <= 7) return { buf, what: `${rname} flip ${flip(lo, hi, 1 + r.int(8)).join(',')}` };
  // Write an interesting value as a u16/u32/u64 at an aligned offset of the region.
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const width = [2, 4, 8][r.int(3)] as number;
  const off = lo + Math.floor(r.int(Math.max(1, hi - lo - width + 1)) / width) * width;
  const v = INTERESTING[r.int(INTERESTING.length)] as number;
  if (width === 2) view.setUint16(off, v & 0xffff, true);
  else if (width === 4) view.setUint32(off, v >>> 0, true);
  else view.setBigUint64(off, BigInt(v) << BigInt(r.int(2) * 24), true);
  return { buf, what: `${rname} u${width * 8}@${off}=0x${v.toString(16)}` };
}

function regionsOf(boot: Uint8Array): Array<[string, number, number]> {
  const img = new RafsImage(bufferSource(boot));
  const x = img.ext;
  const out: Array<[string, number, number]> = [
    ['superblock', 1024, 1152],
    ['ext-superblock', 1152, 1408],
    ['device-table', 1408, 1408 + 128 * img.blobs.length],
    ['blob-table', x.blobTableOffset, x.blobTableOffset + x.blobTableSize],
    ['inodes', img.metaOffset, x.chunkTableSize > 0 ? x.chunkTableOffset : boot.length],
  ];
  if (x.chunkTableSize > 0) out.push(['chunk-table', x.chunkTableOffset, x.chunkTableOffset + x.chunkTableSize]);
  if (x.prefetchTableSize > 0) out.push(['prefetch-table', x.prefetchTableOffset, x.prefetchTableOffset + x.prefetchTableSize]);
  return out.filter(([, lo, hi]) => hi > lo);
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}\n${(e.stack ?? '').split('\n').slice(1, 6).join('\n')}`;
  return String(e);
}

let work: string;
const bases: Base[] = [];

before(async () => {
  work = await tempDir(undefined, 'nydus-fuzz-'); // removed at process exit
  // Our own image: every kind of entry the reader handles.
  const src = path.join(work, 'tree');
  const mk = (p: string): void => {
    fs.mkdirSync(path.join(src, p), { recursive: true });
  };
  mk('d/sub');
  mk('many');
  mk('e');
  fs.writeFileSync(path.join(src, 'a.txt'), 'hello\n');
  fs.symlinkSync('a.txt', path.join(src, 'link'));
  fs.symlinkSync(`/very/long/target/${'x'.repeat(300)}`, path.join(src, 'longlink'));
  fs.linkSync(path.join(src, 'a.txt'), path.join(src, 'd/hard'));
  fs.writeFileSync(path.join(src, 'd/chunked'), prngBytes('fuzz/chunked', 20_000));
  fs.linkSync(path.join(src, 'd/chunked'), path.join(src, 'd/sub/chunked-again'));
  fs.writeFileSync(path.join(src, 'e/compressible'), Buffer.from('all work and no play '.repeat(1000)));
  fs.writeFileSync(path.join(src, 'e/empty'), '');
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(src, 'many', `file-with-a-longer-name-${String(i).padStart(3, '0')}`), `${i}\n`);
  await runOk('mkfifo', [path.join(src, 'e/fifo')]);
  await runOk('mknod', [path.join(src, 'e/null'), 'c', '1', '3']);
  await runOk('setfattr', ['-n', 'user.foo', '-v', 'bar', path.join(src, 'a.txt')]);
  await runOk('setfattr', ['-n', 'user.two', '-v', '0x00ff00ff', path.join(src, 'a.txt')]);
  await runOk('setfattr', ['-n', 'trusted.x', '-v', '12345', path.join(src, 'd')]);
  await runOk('setfattr', ['-n', 'user.on-a-big-dir', '-v', 'y', path.join(src, 'many')]);
  const boot = path.join(work, 'ours.boot');
  const blobDir = path.join(work, 'blobs');
  const built = await runCli('nydus-image', ['create', '--chunk-size', '0x1000', '--compressor', 'lz4_block', '--features', 'blob-toc',
    '--prefetch-policy', 'fs', '-B', boot, '-D', blobDir, src], { input: '/d/chunked\n/many\n/a.txt\n' });
  assert.equal(built.code, 0, built.stderr);

  const tocSrc = fileSource(TOC_BLOB);
  let tocBoot: Uint8Array;
  try {
    tocBoot = readInlineBootstrap(tocSrc);
  } finally {
    tocSrc.close();
  }
  const add = (name: string, b: Uint8Array, blobs: BlobResolver): void => {
    bases.push({ name, boot: b, blobs, regions: regionsOf(b) });
  };
  add('rafs-v6-2.2', fs.readFileSync(FIXTURE_BOOT), new BlobResolver({ blobDir: FIXTURE_BLOBS }));
  add('toc-inline', tocBoot, new BlobResolver({ blob: TOC_BLOB }));
  add('ours', fs.readFileSync(boot), new BlobResolver({ blobDir }));
  // Every base is valid to begin with, blobs included.
  for (const b of bases) {
    const r = attempt(() => checkBuffer(b.boot, b.blobs));
    assert.equal(r.kind, 'pass', `${b.name}: ${r.kind === 'pass' ? '' : describe(r.error)}`);
  }
  const ours = new RafsImage(bufferSource(bases[2]?.boot as Uint8Array));
  const report = checkImage(ours);
  assert.ok(report.files > 300 && report.symlinks === 2 && report.dirs >= 5, JSON.stringify(report));
  assert.equal(ours.prefetchNids().length, 3);
  const many = ours.resolve('/many') as InodeInfo;
  assert.ok(many.size > 2 * 4096, 'the 300-entry directory spans several blocks');
});

after(() => {
  for (const b of bases) b.blobs.close();
});

test('mutated bootstraps pass the checker or fail with a NydusError, never crash or hang', () => {
  const crashes: string[] = [];
  const slow: string[] = [];
  const tally: Record<string, { pass: number; error: number }> = {};
  const codes = new Map<string, number>();
  for (const base of bases) {
    const r = prng(SEED ^ [...base.name].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0, 0x811c9dc5));
    const t = (tally[base.name] = { pass: 0, error: 0 });
    for (let k = 0; k < COUNT; k++) {
      const { buf, what } = mutate(base, r);
      const t0 = performance.now();
      const o = attempt(() => checkBuffer(buf, base.blobs));
      const ms = performance.now() - t0;
      const where = `${base.name} #${k} (${what}; seed ${SEED})`;
      if (ms > MAX_CALL_MS) slow.push(`${where}: ${ms.toFixed(0)} ms`);
      if (o.kind === 'crash') crashes.push(`${where}: ${describe(o.error)}`);
      else if (o.kind === 'pass') t.pass++;
      else {
        t.error++;
        codes.set(o.error.code, (codes.get(o.error.code) ?? 0) + 1);
      }
    }
  }
  assert.deepEqual(crashes, [], `reader crashes:\n${crashes.slice(0, 5).join('\n\n')}`);
  assert.deepEqual(slow, [], 'reader calls that took too long');
  for (const [name, t] of Object.entries(tally)) {
    assert.equal(t.pass + t.error, COUNT, name);
    assert.ok(t.error > COUNT / 10, `${name}: only ${t.error} of ${COUNT} mutants were rejected`);
  }
  assert.ok(codes.size >= 8, `few distinct error codes: ${[...codes.keys()].join(', ')}`);
});

test('mutated bootstraps unpack (in process) or fail with a NydusError, leaving no output', () => {
  const outDir = fs.mkdtempSync(path.join(work, 'unpack-'));
  const crashes: string[] = [];
  const n = Math.max(20, Math.floor(COUNT / 5));
  for (const base of bases) {
    const r = prng(SEED + 17 + base.name.length);
    for (let k = 0; k < n; k++) {
      const { buf, what } = mutate(base, r);
      const out = path.join(outDir, `${base.name}-${k}.tar`);
      const t0 = performance.now();
      const o = attempt(() => {
        const img = new RafsImage(bufferSource(buf, 'mutant'));
        unpackToTar(img, base.blobs, out);
      });
      const ms = performance.now() - t0;
      const where = `${base.name} #${k} (${what}; seed ${SEED + 17 + base.name.length})`;
      if (ms > MAX_CALL_MS) crashes.push(`${where}: took ${ms.toFixed(0)} ms`);
      if (o.kind === 'crash') crashes.push(`${where}: ${describe(o.error)}`);
      if (o.kind === 'error' && fs.existsSync(out)) crashes.push(`${where}: failed but left ${out}`);
      fs.rmSync(out, { force: true });
    }
  }
  assert.deepEqual(crashes, [], crashes.slice(0, 5).join('\n\n'));
  assert.deepEqual(fs.readdirSync(outDir), [], 'temporary files left behind');
});

/** Offset of the dirent called `name` in directory `dir` of `img` (a base's bytes). */
function direntOffset(img: RafsImage, dir: InodeInfo, name: string): number {
  const bs = img.blockSize;
  const full = dir.layout === EROFS_INODE_FLAT_INLINE ? Math.floor(dir.size / bs) : Math.ceil(dir.size / bs);
  for (let b = 0; b * bs < dir.size; b++) {
    const len = Math.min(bs, dir.size - b * bs);
    const ents = decodeDirBlock(img.flatData(dir, b * bs, len), 'test');
    const k = ents.findIndex((e) => Buffer.from(e.name).toString() === name);
    if (k >= 0) return (b < full ? (dir.u + b) * bs : dir.offset + inodeSize(dir) + dir.xattrSize) + k * 12;
  }
  throw new Error(`no entry ${name}`);
}

test('hand-made hostile bootstraps fail fast with a FormatError naming the problem', (t) => {
  const base = bases[2] as Base;
  const img = new RafsImage(bufferSource(base.boot));
  const at = (p: string): InodeInfo => img.resolve(p) as InodeInfo;
  const root = at('/');
  const many = at('/many');
  const d = at('/d');
  const chunked = at('/d/chunked');
  const link = at('/longlink');
  const a = at('/a.txt');
  const x = img.ext;
  const cases: Array<[string, (v: DataView, b: Uint8Array) => void, RegExp]> = [
    ['root directory with a huge i_size', (v) => v.setBigUint64(root.offset + 8, 1n << 40n, true), /nid \d+/],
    ['multi-block directory with a huge i_size', (v) => v.setBigUint64(many.offset + 8, 1n << 40n, true), new RegExp(`nid ${many.nid}`)],
    ['directory blocks past the end (i_u)', (v) => v.setUint32(many.offset + 16, 0xffff_fff0, true), new RegExp(`nid ${many.nid}`)],
    ['file with 2^52 bytes of chunks', (v) => v.setBigUint64(chunked.offset + 8, 1n << 52n, true), /chunk indexes run past the end/],
    ['i_size above 2^53', (v) => v.setBigUint64(chunked.offset + 8, 1n << 60n, true), new RegExp(`nid ${chunked.nid}.*i_size`)],
    ['cycle: /d/sub is the root', (v) => v.setBigUint64(direntOffset(img, d, 'sub'), BigInt(root.nid), true), /reached twice|points to nid/],
    ['cycle: /d/sub is /d', (v) => v.setBigUint64(direntOffset(img, d, 'sub'), BigInt(d.nid), true), /reached twice|points to nid/],
    ['cycle: ".." of /d is /d/sub', (v) => v.setBigUint64(direntOffset(img, d, '..'), BigInt(at('/d/sub').nid), true), /"\.\." points to nid/],
    ['dirent nid into the empty first slot', (v) => v.setBigUint64(direntOffset(img, root, 'a.txt'), 0n, true), /file type|mode/],
    ['dirent nid far past the end', (v) => v.setBigUint64(direntOffset(img, root, 'a.txt'), 1n << 40n, true), /nid \d+ points past the end/],
    ['dirent nid above 2^53', (v) => v.setBigUint64(direntOffset(img, root, 'a.txt'), 1n << 62n, true), /nid of entry \d+ in directory nid/],
    ['root inode inside the superblock', (v) => { v.setUint32(1024 + 40, 0, true); v.setUint16(1024 + 14, 32, true); }, /./],
    ['meta area at block 0 (root in the blob table)', (v) => v.setUint32(1024 + 40, 0, true), /./],
    ['xattr icount 0xffff', (v) => v.setUint16(a.offset + 2, 0xffff, true), /./],
    ['symlink of 5000 bytes', (v) => v.setBigUint64(link.offset + 8, 5000n, true), /exceeds 4096/],
    ['directory made chunk-based', (v) => v.setUint16(d.offset, 1 | (4 << 1), true), /nid \d+/],
    ['blob chunk_count 0', (v) => v.setUint32(x.blobTableOffset + 72, 0, true), /chunk/],
    ['blob chunk_count above 2^24', (v) => v.setUint32(x.blobTableOffset + 72, (1 << 24) + 1, true), /chunk_count/],
    ['chunk record uncompressed size 4 GiB', (v) => v.setUint32(x.chunkTableOffset + 44, 0xffff_ffff, true), /bytes|size/],
    ['chunk record compressed range past the blob', (v) => v.setUint32(x.chunkTableOffset + 40, 0xffff_ffff, true), /./],
    ['chunk table covering the whole file', (v, b) => { v.setBigUint64(1152 + 24, 0n, true); v.setBigUint64(1152 + 32, BigInt(Math.floor(b.length / 80) * 80), true); }, /./],
    ['prefetch table of the whole file', (v, b) => { v.setBigUint64(1152 + 40, 0n, true); v.setUint32(1152 + 48, b.length, true); }, /./],
    ['s_extra_devices disagrees with the blob table', (v) => v.setUint16(1024 + 86, 7, true), /s_extra_devices/],
    ['not a bootstrap', (v) => v.setUint32(1024, 0x12345678, true), /s_magic/],
  ];
  const problems: string[] = [];
  for (const [what, poke, want] of cases) {
    const buf = Uint8Array.from(base.boot);
    poke(new DataView(buf.buffer), buf);
    for (const [op, fn] of [
      ['check', () => checkBuffer(buf, base.blobs)],
      ['unpack', () => unpackToTar(new RafsImage(bufferSource(buf)), base.blobs, path.join(work, 'hostile.tar'))],
    ] as Array<[string, () => void]>) {
      const t0 = performance.now();
      const o = attempt(fn);
      const ms = performance.now() - t0;
      if (ms > MAX_CALL_MS) problems.push(`${what} (${op}): took ${ms.toFixed(0)} ms`);
      if (o.kind === 'crash') problems.push(`${what} (${op}): ${describe(o.error)}`);
      else if (op === 'check') {
        if (o.kind === 'pass') problems.push(`${what} (check): passed`);
        else if (!want.test(o.error.message)) problems.push(`${what} (check): "${o.error.message}" does not match ${want}`);
        else t.diagnostic(`${what}: ${o.error.message} [${o.error.code}]`);
      }
    }
    fs.rmSync(path.join(work, 'hostile.tar'), { force: true });
  }
  assert.deepEqual(problems, []);
});

test('a sample of rejected mutants fails the real CLI check with exit 1 and one line', async () => {
  const picked: Array<{ file: string; message: string; what: string }> = [];
  const perBase = 7;
  for (const base of bases) {
    const r = prng(SEED + 99);
    let got = 0;
    for (let k = 0; k < 500 && got < perBase; k++) {
      const { buf, what } = mutate(base, r);
      // Without blobs, as the CLI below runs.
      const o = attempt(() => checkBuffer(buf, undefined));
      if (o.kind !== 'error') continue;
      const file = path.join(work, `cli-${base.name}-${k}.boot`);
      fs.writeFileSync(file, buf);
      picked.push({ file, message: o.error.message, what: `${base.name} #${k} (${what})` });
      got++;
    }
  }
  assert.ok(picked.length >= 20, `only ${picked.length} mutants picked`);
  const results = await Promise.all(picked.map((p) => runCli('nydus-image', ['check', '-q', '-B', p.file])));
  picked.forEach((p, k) => {
    const r = results[k] as { code: number; stderr: string };
    assert.equal(r.code, 1, `${p.what}: exit ${r.code}, ${r.stderr}`);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `${p.what}: ${r.stderr}`);
    assert.ok((lines[0] as string).startsWith(`nydus-image: error: ${p.message}`), `${p.what}: "${lines[0]}" vs "${p.message}"`);
  });
});

/** The ToC fixture blob, its ToC entry offsets. */
function tocLayout(blob: Uint8Array): { hdrOff: number; start: number } {
  const hdrOff = blob.length - 512;
  const toc = readBlobToc(bufferSource(blob));
  return { hdrOff, start: hdrOff - toc.length * 128 };
}

test('mutated blob ToCs read or fail with a NydusError, never crash or hang', () => {
  const base = new Uint8Array(fs.readFileSync(TOC_BLOB));
  const { hdrOff, start } = tocLayout(base);
  const r = prng(SEED + 7);
  const crashes: string[] = [];
  let errors = 0;
  const n = COUNT * 2;
  for (let k = 0; k < n; k++) {
    let buf = Uint8Array.from(base);
    const kind = r.int(5);
    let what: string;
    if (kind === 0) {
      const at: number[] = [];
      for (let j = 0, m = 1 + r.int(8); j < m; j++) {
        const off = buf.length - 1 - r.int(1024);
        buf[off] = (buf[off] as number) ^ (1 << r.int(8));
        at.push(off);
      }
      what = `tail flip ${at.join(',')}`;
    } else if (kind === 1) {
      const view = new DataView(buf.buffer);
      const off = start + 128 * r.int((hdrOff - start) / 128) + 8 * r.int(16);
      const v = [0, 1, 4, 0xffff_ffff, 2 ** 40, 2 ** 53 - 1, 9000, 20480][r.int(8)] as number;
      view.setBigUint64(off, BigInt(v), true);
      what = `entry u64@${off}=${v}`;
    } else if (kind === 2) {
      const len = buf.length - 1 - r.int(2048);
      buf = buf.subarray(0, len);
      what = `truncate ${len}`;
    } else if (kind === 3) {
      const off = hdrOff + r.int(512);
      buf[off] = r.int(256);
      what = `header byte ${off}`;
    } else {
      const at: number[] = [];
      for (let j = 0, m = 1 + r.int(8); j < m; j++) {
        const off = r.int(buf.length);
        buf[off] = r.int(256);
        at.push(off);
      }
      what = `bytes ${at.join(',')}`;
    }
    const t0 = performance.now();
    const o = attempt(() => {
      const src = bufferSource(buf, 'blob');
      const toc = readBlobToc(src);
      for (const e of toc) if (e.name !== 'image.blob') readTocSection(src, e);
      const boot = readInlineBootstrap(src);
      new RafsImage(bufferSource(boot));
    });
    const ms = performance.now() - t0;
    const where = `#${k} (${what}; seed ${SEED + 7})`;
    if (ms > MAX_CALL_MS) crashes.push(`${where}: took ${ms.toFixed(0)} ms`);
    if (o.kind === 'crash') crashes.push(`${where}: ${describe(o.error)}`);
    if (o.kind === 'error') errors++;
  }
  assert.deepEqual(crashes, [], crashes.slice(0, 5).join('\n\n'));
  assert.ok(errors > n / 4, `only ${errors} of ${n} ToC mutants were rejected`);
});

test('hostile ToC entries fail fast: lz4 bomb size, offsets past the end, huge ToC size', (t) => {
  const base = new Uint8Array(fs.readFileSync(TOC_BLOB));
  const { start } = tocLayout(base);
  const toc = readBlobToc(bufferSource(base));
  const bootAt = start + 128 * toc.findIndex((e) => e.name === 'image.boot');
  const cases: Array<[string, (v: DataView) => void, RegExp]> = [
    ['image.boot as lz4 of 4 GiB', (v) => { v.setUint32(bootAt, 4, true); v.setBigUint64(bootAt + 72, 0xffff_ffffn, true); }, /implausible/],
    ['image.boot as lz4 of 2 GiB', (v) => { v.setUint32(bootAt, 4, true); v.setBigUint64(bootAt + 72, 0x7fff_ffffn, true); }, /implausible/],
    ['image.boot of 2^52 bytes', (v) => v.setBigUint64(bootAt + 72, 1n << 52n, true), /implausible/],
    ['image.boot offset past the end', (v) => v.setBigUint64(bootAt + 56, 1n << 40n, true), /overlaps the ToC|past|offset/],
    ['image.boot size past the end', (v) => v.setBigUint64(bootAt + 64, 1n << 40n, true), /overlaps the ToC/],
    ['unknown flags', (v) => v.setUint32(bootAt, 0x40, true), /flags/],
  ];
  const problems: string[] = [];
  for (const [what, poke, want] of cases) {
    const buf = Uint8Array.from(base);
    poke(new DataView(buf.buffer));
    const t0 = performance.now();
    const o = attempt(() => readInlineBootstrap(bufferSource(buf)));
    const ms = performance.now() - t0;
    if (ms > 1000) problems.push(`${what}: took ${ms.toFixed(0)} ms`);
    if (o.kind !== 'error') problems.push(`${what}: ${o.kind === 'pass' ? 'passed' : describe(o.error)}`);
    else if (!want.test(o.error.message)) problems.push(`${what}: "${o.error.message}" does not match ${want}`);
    else t.diagnostic(`${what}: ${o.error.message} [${o.error.code}]`);
  }
  assert.deepEqual(problems, []);
});
