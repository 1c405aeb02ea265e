/**
 * nydusd with `fs_driver: "erofs"`: the kernel's EROFS serves the bootstrap, and nydusd serves
 * only the blobs, on demand, as FUSE files: mounted by EROFS directly (file-backed, the default
 * where the kernel can) or through loop devices (`erofs_backing: "loop"`). The mounted tree must
 * equal the source (single and merged images, the real Nydus fixture), data must still come lazily
 * and be verified (a corrupt chunk is EIO, never wrong bytes), and an unmount must leave no mount
 * and no loop device behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { makeMessyTree } from '../helpers/make-tree.js';
import { compareTrees } from '../helpers/compare-tree.js';
import { run, runCli, tempDir, cleanupTempDir } from '../helpers/mounts.js';
import { nydusdConfig, startNydusd, apiMount, corruptChunkCopy, type NydusdHandle } from '../helpers/nydusd.js';
import { RafsImage } from '../../src/image/rafs-image.js';
import { fileSource } from '../../src/image/byte-source.js';

const FIX = path.resolve(import.meta.dirname, '../../../shared/fixtures/nydus');

async function nydusImage(args: string[]): Promise<void> {
  const r = await runCli('nydus-image', args);
  assert.equal(r.code, 0, `nydus-image ${args.join(' ')}: ${r.stderr}`);
}

function erofsConfig(blobDir: string, cacheDir: string, extra: Record<string, unknown> = {}): string {
  return nydusdConfig({ backend: { type: 'localfs', dir: blobDir }, workDir: cacheDir, extra: { fs_driver: 'erofs', ...extra } });
}

/** Loop devices whose backing file is one of nydusd's EROFS state files. */
async function nydusLoops(): Promise<string[]> {
  const r = await run('losetup', ['-a']);
  return r.stdout.toString().split('\n').filter((l) => l.includes('nydusd-erofs-'));
}

/** Type and source of the top mount at `mnt`. */
function mountAt(mnt: string): { type: string; source: string } | undefined {
  const lines = fs.readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n');
  let found: { type: string; source: string } | undefined;
  for (const l of lines) {
    const f = l.split(' ');
    const dash = f.indexOf('-');
    if (f[4] === mnt) found = { type: f[dash + 1] as string, source: f[dash + 2] as string };
  }
  return found;
}

const mountTypeAt = (mnt: string): string | undefined => mountAt(mnt)?.type;

describe('nydusd fs_driver "erofs": kernel EROFS over on-demand blob files', () => {
  let work: string;
  let d: NydusdHandle;
  let src: string;

  before(async () => {
    work = await tempDir(undefined, 'nydusd-erofs-test-');
    d = await startNydusd({ dir: work });
    src = path.join(work, 'src');
    await makeMessyTree(src);
    await nydusImage(['create', '-t', 'dir-rafs', '--features', 'blob-toc', '-B', `${work}/one.boot`, '-D', `${work}/blobs`, src]);
  });
  after(async () => {
    await d?.stop();
    await cleanupTempDir(work);
    assert.deepEqual(await nydusLoops(), [], 'no loop device left');
  });

  test('file-backed (the default on this kernel): the mounted tree equals the source, no loop device; reading one file fetches only its chunks; unmount leaves nothing', async () => {
    const mnt = path.join(work, 'mnt-one');
    const r = await apiMount(d, mnt, `${work}/one.boot`, erofsConfig(`${work}/blobs`, `${work}/cache-one`, { amplify_io: 0 }));
    assert.equal(r.status, 204, JSON.stringify(r.body));
    try {
      const m = mountAt(mnt);
      assert.equal(m?.type, 'erofs');
      assert.match(m?.source ?? '', /\/nydusd-erofs-[^/]+\/bootstrap$/, 'EROFS mounts the bootstrap file itself');
      assert.deepEqual(await nydusLoops(), [], 'no loop device');
      const small = fs.readFileSync(path.join(mnt, 'files/one-byte'));
      assert.deepEqual(small, fs.readFileSync(path.join(src, 'files/one-byte')));
      const b = (await d.api('GET', `/api/v1/metrics/backend?id=${encodeURIComponent(mnt)}`)).body as { read_amount_total: number };
      const blobSize = fs.statSync(path.join(`${work}/blobs`, fs.readdirSync(`${work}/blobs`)[0] as string)).size;
      assert.ok(b.read_amount_total > 0 && b.read_amount_total < blobSize / 4, `one small file fetched ${b.read_amount_total} of ${blobSize} blob bytes`);
      const diffs = await compareTrees(src, mnt);
      assert.deepEqual(diffs, [], diffs.slice(0, 30).join('\n'));
    } finally {
      const u = await d.api('DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(mnt)}`);
      assert.equal(u.status, 204, JSON.stringify(u.body));
    }
    assert.equal(mountTypeAt(mnt), undefined, 'nothing mounted at the mountpoint');
    assert.deepEqual(await nydusLoops(), [], 'loop devices detached');
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes('fuse.nydusblob'), 'blob files unmounted');
  });

  test('erofs_backing "loop", a merged image: one loop device per blob, whiteouts applied, data from every layer; unmount detaches them', async () => {
    const layers = ['l1', 'l2'].map((l) => path.join(work, l));
    const [l1, l2] = layers as [string, string];
    fs.mkdirSync(`${l1}/etc/app`, { recursive: true });
    fs.writeFileSync(`${l1}/etc/app/a.conf`, 'a1');
    fs.writeFileSync(`${l1}/etc/app/b.conf`, 'b1');
    fs.writeFileSync(`${l1}/big`, Buffer.alloc(3 << 20, 7));
    fs.mkdirSync(`${l2}/etc/app`, { recursive: true });
    fs.writeFileSync(`${l2}/etc/app/.wh.b.conf`, '');
    fs.writeFileSync(`${l2}/etc/app/a.conf`, 'a2');
    fs.writeFileSync(`${l2}/z`, 'z2'.repeat(5000));
    for (const l of layers) await nydusImage(['create', '-t', 'dir-rafs', '--whiteout-spec', 'none', '-B', `${l}.boot`, '-D', `${work}/mblobs`, l]);
    await nydusImage(['merge', '-B', `${work}/merged.boot`, `${l1}.boot`, `${l2}.boot`]);
    const mnt = path.join(work, 'mnt-merged');
    const r = await apiMount(d, mnt, `${work}/merged.boot`, erofsConfig(`${work}/mblobs`, `${work}/mcache`, { erofs_backing: 'loop' }));
    assert.equal(r.status, 204, JSON.stringify(r.body));
    try {
      assert.match(mountAt(mnt)?.source ?? '', /^\/dev\/loop\d+$/);
      assert.equal((await nydusLoops()).length, 3, 'one loop device for the bootstrap and one per blob');
      assert.equal(fs.readFileSync(`${mnt}/etc/app/a.conf`, 'utf8'), 'a2');
      assert.equal(fs.existsSync(`${mnt}/etc/app/b.conf`), false);
      assert.equal(fs.readFileSync(`${mnt}/z`, 'utf8'), 'z2'.repeat(5000));
      const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
      assert.equal(sha(fs.readFileSync(`${mnt}/big`)), sha(Buffer.alloc(3 << 20, 7)));
    } finally {
      await d.api('DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(mnt)}`);
    }
    assert.equal(mountTypeAt(mnt), undefined, 'nothing mounted at the mountpoint');
    assert.deepEqual(await nydusLoops(), [], 'loop devices detached');
  });

  test('the real Nydus v2.2 fixture mounts through the kernel and reads its files', async () => {
    const mnt = path.join(work, 'mnt-fixture');
    const r = await apiMount(d, mnt, `${FIX}/rafs-v6-2.2.boot`, erofsConfig(`${FIX}/blobs`, `${work}/fcache`));
    assert.equal(r.status, 204, JSON.stringify(r.body));
    const img = new RafsImage(fileSource(`${FIX}/rafs-v6-2.2.boot`));
    try {
      // Every regular file reads in full with the size the bootstrap gives.
      let files = 0;
      const walk = (rel: string): void => {
        for (const e of fs.readdirSync(path.join(mnt, rel), { withFileTypes: true })) {
          const p = `${rel}/${e.name}`;
          if (e.isDirectory()) walk(p);
          else if (e.isFile()) {
            const ino = img.resolve(p);
            assert.ok(ino, p);
            assert.equal(fs.readFileSync(path.join(mnt, p)).length, ino.size, p);
            files++;
          }
        }
      };
      walk('');
      assert.ok(files > 0);
    } finally {
      img.close();
      await d.api('DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(mnt)}`);
    }
  });

  test('a killed nydusd leaves its state dir with a dead blob mount; once its image is unmounted, the next erofs mount removes both', async () => {
    const kdir = path.join(work, 'killed');
    fs.mkdirSync(kdir);
    const k = await startNydusd({ dir: kdir, name: 'victim' });
    const mnt = path.join(work, 'mnt-killed');
    let stateDir: string | undefined;
    const other = path.join(work, 'mnt-after');
    try {
      const r = await apiMount(k, mnt, `${work}/one.boot`, erofsConfig(`${work}/blobs`, `${work}/cache-killed`));
      assert.equal(r.status, 204, JSON.stringify(r.body));
      stateDir = path.dirname(mountAt(mnt)?.source ?? '');
      assert.match(path.basename(stateDir), /^nydusd-erofs-/);
      assert.equal(fs.readFileSync(path.join(stateDir, 'owner'), 'utf8').trim(), String(k.pid));
      // SIGKILL, then the helper unmounts the image, as nydus-snapshotter does when nydusd dies.
      await k.kill();
      assert.equal(mountAt(mnt), undefined);
      assert.equal(mountAt(path.join(stateDir, 'blobs'))?.type, 'fuse.nydusblob', 'the dead blob mount is still there');
      const r2 = await apiMount(d, other, `${work}/one.boot`, erofsConfig(`${work}/blobs`, `${work}/cache-after`));
      assert.equal(r2.status, 204, JSON.stringify(r2.body));
      assert.equal(mountAt(path.join(stateDir, 'blobs')), undefined, 'the dead blob mount is gone');
      assert.equal(fs.existsSync(stateDir), false, `${stateDir} is removed`);
      assert.deepEqual(fs.readFileSync(path.join(other, 'files/one-byte')), fs.readFileSync(path.join(src, 'files/one-byte')));
    } finally {
      await k.kill();
      await d.api('DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(other)}`);
      if (stateDir && fs.existsSync(stateDir)) {
        if (mountAt(path.join(stateDir, 'blobs'))) await run('umount', ['-l', path.join(stateDir, 'blobs')]);
        fs.rmSync(stateDir, { recursive: true, force: true });
      }
    }
  });

  test('a corrupt chunk reads as EIO through the kernel, other files still read, the daemon stays up', async () => {
    const bad = path.join(work, 'badblobs');
    const target = '/files/3m.bin';
    corruptChunkCopy(`${work}/one.boot`, `${work}/blobs`, bad, target, 1);
    const mnt = path.join(work, 'mnt-bad');
    const r = await apiMount(d, mnt, `${work}/one.boot`, erofsConfig(bad, `${work}/cache-bad`, { digest_validate: true, amplify_io: 0 }));
    assert.equal(r.status, 204, JSON.stringify(r.body));
    try {
      const cat = await run('cat', [path.join(mnt, target)]);
      assert.notEqual(cat.code, 0, 'reading the corrupt chunk fails');
      assert.match(cat.stderr, /Input\/output error/);
      assert.deepEqual(fs.readFileSync(path.join(mnt, 'files/one-byte')), fs.readFileSync(path.join(src, 'files/one-byte')));
      const st = await d.api('GET', '/api/v1/daemon');
      assert.equal(st.status, 200);
    } finally {
      await d.api('DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(mnt)}`);
    }
  });
});
