import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { RafsImage } from '../../src/image/rafs-image.js';
import { bufferSource, fileSource } from '../../src/image/byte-source.js';
import { walkImage } from '../../src/image/walk.js';
import { readInlineBootstrap } from '../../src/blob/blob-toc.js';
import { digest } from '../../src/util/digest.js';
import { toHex } from '../../src/util/bytes.js';

const F = join(import.meta.dirname, '../../../shared/fixtures/nydus');
const BOOT = join(F, 'rafs-v6-2.2.boot');
const BLOB_DIR = join(F, 'blobs');
const TOC_BLOB = join(F, 'toc/2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca');
const CLI = join(import.meta.dirname, '../../bin/nydus-image');

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(CLI, args, { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** Extract a tar with GNU tar into a fresh dir; return file -> bytes. */
function untar(tar: string): Map<string, Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-untar-'));
  try {
    const r = spawnSync('tar', ['-xf', tar, '-C', dir]);
    assert.equal(r.status, 0, r.stderr?.toString());
    const list = spawnSync('find', [dir, '-type', 'f'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
    return new Map(list.map((p) => [p.slice(dir.length), readFileSync(p)]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Per-file chunk digests Nydus stored in the bootstrap. */
function storedDigests(img: RafsImage): Map<string, { size: number; digests: string[] }> {
  const out = new Map<string, { size: number; digests: string[] }>();
  for (const e of walkImage(img)) {
    if ((e.inode.mode & 0o170000) !== 0o100000) continue;
    out.set(e.path, { size: e.inode.size, digests: img.chunkIndexes(e.inode).map((c) => toHex(img.chunkRecord(c).digest)) });
  }
  return out;
}

test('the v2.2 fixture opens with the values Nydus wrote', () => {
  const img = new RafsImage(fileSource(BOOT));
  try {
    assert.equal(img.sb.rootNid, 128);
    assert.equal(img.sb.metaBlkaddr, 2);
    assert.equal(img.ext.flags, 0x194);
    assert.equal(img.compressor, 'zstd');
    assert.equal(img.digester, 'blake3');
    assert.equal(img.blobs.length, 1);
    assert.equal(img.blobs[0]?.slot.mappedBlkaddr, 512);
    assert.equal(img.blobs[0]?.entry.features, 0x70000021);
    const root = img.inode(img.rootNid);
    assert.equal(root.layout, 2);
    assert.equal(root.size, 67);
    assert.deepEqual([...walkImage(img)].map((e) => e.path), ['/', '/lib.rs', '/sync_io.rs']);
    assert.equal(img.resolve('/lib.rs')?.size, 16931);
    assert.equal(img.resolve('/missing'), undefined);
  } finally {
    img.close();
  }
});

test('nydus-image check accepts the v2.2 fixture with its blob and the ToC blob\'s inline bootstrap', () => {
  const a = cli(['check', '-B', BOOT, '-D', BLOB_DIR]);
  assert.equal(a.code, 0, a.err);
  assert.match(a.out, /2 chunks verified/);
  const b = cli(['check', '--blob', TOC_BLOB]);
  assert.equal(b.code, 0, b.err);
  assert.match(b.out, /error\.rs/);
  assert.match(b.out, /3 chunks verified/);
});

for (const [name, open, blobArgs] of [
  ['v2.2 fixture', () => new RafsImage(fileSource(BOOT)), ['-B', BOOT, '-D', BLOB_DIR]],
  ['ToC blob inline bootstrap', () => new RafsImage(bufferSource(readInlineBootstrap(fileSource(TOC_BLOB)))), ['--blob', TOC_BLOB]],
] as const) {
  test(`unpack of the ${name} yields files whose chunk digests equal Nydus's`, () => {
    const img = open();
    const stored = storedDigests(img);
    const dir = mkdtempSync(join(tmpdir(), 'nydus-fx-'));
    try {
      const tar = join(dir, 'out.tar');
      const r = cli(['unpack', ...blobArgs, '--output', tar]);
      assert.equal(r.code, 0, r.err);
      const files = untar(tar);
      assert.equal(files.size, stored.size);
      const cs = img.ext.chunkSize;
      for (const [path, s] of stored) {
        const data = files.get(path);
        assert.ok(data, `${path} missing from the tar`);
        assert.equal(data.length, s.size);
        const got = [];
        for (let off = 0; off < data.length; off += cs) got.push(toHex(digest(img.digester, data.subarray(off, off + cs))));
        assert.deepEqual(got, s.digests, path);
      }
    } finally {
      img.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('export --block --verity of the v2.2 fixture is byte-identical to Nydus\'s (sha256 5684c330…)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-fx-'));
  try {
    const out = join(dir, 'disk');
    const r = cli(['export', '--block', '--verity', '-B', BOOT, '-D', BLOB_DIR, '-O', out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /--data-blocks 521 --hash-offset 2134016/);
    assert.equal(createHash('sha256').update(readFileSync(out)).digest('hex'), '5684c330c622350c12d633d0773201f862b9955375d806670e1aaf36ef038b31');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the ToC blob serves its data from -D when named by the id its inline bootstrap holds', () => {
  const boot = readInlineBootstrap(fileSource(TOC_BLOB));
  const img = new RafsImage(bufferSource(boot));
  const dir = mkdtempSync(join(tmpdir(), 'nydus-fx-'));
  try {
    const id = img.blobs[0]?.slot.blobId as string;
    assert.match(id, /^d788a0ea/);
    copyFileSync(TOC_BLOB, join(dir, id));
    writeFileSync(join(dir, 'boot'), boot);
    const r = cli(['check', '-B', join(dir, 'boot'), '-D', dir]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /3 chunks verified/);
  } finally {
    img.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
