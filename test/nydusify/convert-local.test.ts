/**
 * nydusify convert between OCI layouts: a real multi-layer OCI image (whiteouts, opaque dirs,
 * hardlinks, symlinks, xattrs, special files; gzip and zstd layers; a two-platform index) becomes
 * a Nydus image whose bootstrap layer mounts through nydusd and equals the OCI image's rootfs as
 * umoci unpacks it (the referee).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { makeMessyLayers } from '../helpers/make-tree.js';
import { RafsImage } from '../../src/image/rafs-image.js';
import { fileSource } from '../../src/image/byte-source.js';
import { walkImage } from '../../src/image/walk.js';
import { compareTrees } from '../helpers/compare-tree.js';
import { runCli, tempDir, cleanupTempDir } from '../helpers/mounts.js';
import { nydusdConfig, startNydusd } from '../helpers/nydusd.js';
import { buildOciImage, toZstdLayers, buildTwoPlatformIndex, readManifest } from '../helpers/oci-image.js';

interface Layout { index: { manifests: Array<{ digest: string; mediaType: string; platform?: { architecture: string }; artifactType?: string }> } }

function blob(layout: string, digest: string): Buffer {
  return fs.readFileSync(path.join(layout, 'blobs/sha256', digest.replace(/^sha256:/, '')));
}

describe('nydusify convert (OCI layout to OCI layout)', () => {
  let work: string;
  let layers: string[];

  before(async () => {
    work = await tempDir(undefined, 'nydusify-local-');
    layers = await makeMessyLayers(work);
  });
  after(async () => { await cleanupTempDir(work); });

  async function convertAndCompare(name: string, ref: string, srcLayout: string, refereeRef = ref): Promise<void> {
    const target = path.join(work, `${name}-nydus`);
    const r = await runCli('nydusify', ['convert', '--source', ref, '--target', `oci:${target}:nydus`, '--work-dir', path.join(work, `${name}-work`)]);
    assert.equal(r.code, 0, r.stderr);
    const index = JSON.parse(fs.readFileSync(path.join(target, 'index.json'), 'utf8')) as Layout['index'];
    const top = index.manifests[0];
    assert.ok(top);
    const manifests = top.mediaType.includes('index')
      ? (JSON.parse(blob(target, top.digest).toString()) as Layout['index']).manifests.map((m) => m.digest)
      : [top.digest];
    assert.ok(fs.existsSync(path.join(srcLayout, 'index.json')));
    for (const md of manifests) {
      const m = JSON.parse(blob(target, md).toString()) as { layers: Array<{ mediaType: string; digest: string; annotations?: Record<string, string> }>; config: { digest: string } };
      const last = m.layers[m.layers.length - 1];
      assert.ok(last);
      assert.equal(last.annotations?.['containerd.io/snapshot/nydus-bootstrap'], 'true');
      assert.equal(last.annotations?.['containerd.io/snapshot/nydus-fs-version'], '6');
      for (const l of m.layers.slice(0, -1)) {
        assert.equal(l.mediaType, 'application/vnd.oci.image.layer.nydus.blob.v1');
        assert.equal(l.annotations?.['containerd.io/snapshot/nydus-blob'], 'true');
      }
      const cfg = JSON.parse(blob(target, m.config.digest).toString()) as { rootfs: { diff_ids: string[] } };
      assert.equal(cfg.rootfs.diff_ids.length, m.layers.length);
      // The bootstrap layer holds image/image.boot.
      const bx = path.join(work, `${name}-${md.slice(7, 19)}-boot`);
      fs.mkdirSync(bx, { recursive: true });
      execFileSync('tar', ['-xzf', path.join(target, 'blobs/sha256', last.digest.slice(7)), '-C', bx]);
      const boot = path.join(bx, 'image/image.boot');
      assert.equal(fs.statSync(boot).mode & 0o777, 0o444);
      const check = await runCli('nydus-image', ['check', '-q', '-B', boot, '-D', path.join(target, 'blobs/sha256')]);
      assert.equal(check.code, 0, check.stderr);
      // Referee: the source image's rootfs as umoci unpacks it (umoci 0.4.7 reads gzip layers only).
      const bundle = path.join(work, `${name}-${md.slice(7, 19)}-bundle`);
      execFileSync('umoci', ['unpack', '--image', refereeRef.slice(4), bundle], { stdio: 'pipe' });
      const mnt = path.join(work, `${name}-${md.slice(7, 19)}-mnt`);
      const d = await startNydusd({ dir: bx, config: nydusdConfig({ backend: { type: 'localfs', dir: path.join(target, 'blobs/sha256') }, workDir: path.join(bx, 'cache') }), bootstrap: boot, mountpoint: mnt });
      try {
        const diffs = await compareTrees(path.join(bundle, 'rootfs'), mnt, { ignoreRootAttrs: true });
        assert.deepEqual(diffs, [], diffs.slice(0, 20).join('\n'));
      } finally {
        await d.stop();
      }
    }
  }

  test('a gzip multi-layer image converts and mounts equal to its rootfs', async () => {
    const img = await buildOciImage({ dir: path.join(work, 'gz'), layers, name: 'img' });
    assert.equal(readManifest(img.ref).layers.length, 3);
    await convertAndCompare('gz', img.ref, img.layout);
  });

  test('the same image with zstd layers converts alike', async () => {
    const img = await buildOciImage({ dir: path.join(work, 'gz2'), layers, name: 'img' });
    const z = await toZstdLayers(img.ref);
    assert.ok(readManifest(z.ref).layers.every((l) => l.mediaType.endsWith('+zstd')));
    await convertAndCompare('zst', z.ref, z.layout, img.ref);
  });

  test('a two-platform index converts into a Nydus index with both platforms', async () => {
    const idx = await buildTwoPlatformIndex({ dir: path.join(work, 'multi'), layers: [layers[1] as string, layers[2] as string] });
    const target = path.join(work, 'multi-nydus');
    const r = await runCli('nydusify', ['convert', '--all-platforms', '--source', idx.ref, '--target', `oci:${target}:nydus`, '--work-dir', path.join(work, 'multi-work')]);
    assert.equal(r.code, 0, r.stderr);
    const index = JSON.parse(fs.readFileSync(path.join(target, 'index.json'), 'utf8')) as Layout['index'];
    const top = JSON.parse(blob(target, (index.manifests[0] as { digest: string }).digest).toString()) as Layout['index'];
    assert.deepEqual(top.manifests.map((m) => m.platform?.architecture).sort(), ['amd64', 'arm64']);
    assert.ok(top.manifests.every((m) => m.artifactType === 'application/vnd.nydus.image.manifest.v1+json'));
  });

  test('--compressor, --chunk-size and --prefetch-patterns reach the image; bad values are refused naming the flag', async () => {
    const img = await buildOciImage({ dir: path.join(work, 'flags'), layers: [layers[1] as string, layers[2] as string], name: 'img' });
    const target = path.join(work, 'flags-nydus');
    const r = await runCli('nydusify', ['convert', '--compressor', 'lz4_block', '--chunk-size', '0x40000', '--prefetch-patterns', '--source', img.ref, '--target', `oci:${target}:nydus`, '--work-dir', path.join(work, 'flags-work')], { input: '/top.txt\n/deep/fresh.txt\n' });
    assert.equal(r.code, 0, r.stderr.toString());
    const index = JSON.parse(fs.readFileSync(path.join(target, 'index.json'), 'utf8')) as Layout['index'];
    const m = JSON.parse(blob(target, (index.manifests[0] as { digest: string }).digest).toString()) as { layers: Array<{ digest: string }> };
    const bx = path.join(work, 'flags-boot');
    fs.mkdirSync(bx, { recursive: true });
    execFileSync('tar', ['-xzf', path.join(target, 'blobs/sha256', (m.layers[m.layers.length - 1] as { digest: string }).digest.slice(7)), '-C', bx]);
    const image = new RafsImage(fileSource(path.join(bx, 'image/image.boot')));
    try {
      assert.equal(image.ext.chunkSize, 0x40000);
      assert.ok(image.blobs.length > 0 && image.blobs.every((b) => b.compressor === 'lz4_block'), image.blobs.map((b) => b.compressor).join(','));
      const pathOf = new Map<number, string>();
      for (const e of walkImage(image)) pathOf.set(e.inode.nid, e.path);
      assert.deepEqual(image.prefetchNids().map((n) => pathOf.get(n)), ['/top.txt', '/deep/fresh.txt']);
    } finally {
      image.close();
    }
    for (const [flag, value, re] of [['--compressor', 'gzip', /--compressor "gzip"/], ['--chunk-size', '0x3000', /--chunk-size 0x3000/], ['--fs-version', '5', /--fs-version must be 6/], ['--platform', 'linux', /--platform "linux"/]] as const) {
      const bad = await runCli('nydusify', ['convert', flag, value, '--source', img.ref, '--target', `oci:${target}:bad`, '--work-dir', path.join(work, 'flags-work')]);
      assert.notEqual(bad.code, 0, `${flag} ${value}`);
      assert.match(bad.stderr.toString(), re);
    }
  });

  test('a source layer whose digest does not match fails the conversion clearly and writes no target tag', async () => {
    const img = await buildOciImage({ dir: path.join(work, 'bad'), layers: [layers[1] as string, layers[2] as string], name: 'img' });
    const m = readManifest(img.ref);
    const layer = m.layers[0] as { digest: string };
    const file = path.join(img.layout, 'blobs/sha256', layer.digest.slice(7));
    const data = fs.readFileSync(file);
    data[data.length - 10] = (data[data.length - 10] as number) ^ 0xff;
    fs.writeFileSync(file, data);
    const target = path.join(work, 'bad-nydus');
    const r = await runCli('nydusify', ['convert', '--source', img.ref, '--target', `oci:${target}:nydus`, '--work-dir', path.join(work, 'bad-work')]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(layer.digest.slice(7, 19)));
    const index = fs.existsSync(path.join(target, 'index.json')) ? JSON.parse(fs.readFileSync(path.join(target, 'index.json'), 'utf8')) as Layout['index'] : { manifests: [] };
    assert.equal(index.manifests.length, 0, 'no tag was written');
  });

  test('converting the next version of an image reuses the layers that did not change, and never a damaged one', async () => {
    const img = await buildOciImage({ dir: path.join(work, 'v1'), layers, name: 'img' });
    const wd = path.join(work, 'cache-work');
    const count = (out: Buffer | string, kind: string): number => (out.toString().match(new RegExp(`${kind}`, 'g')) ?? []).length;
    const a = await runCli('nydusify', ['convert', '--source', img.ref, '--target', `oci:${work}/v1-nydus:a`, '--work-dir', wd]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(count(a.stdout, 'layer-cached'), 0, a.stdout.toString());
    // Version 2: the top layer changed.
    const l3b = path.join(work, 'l3-v2');
    fs.cpSync(layers[2] as string, l3b, { recursive: true });
    fs.writeFileSync(path.join(l3b, 'top.txt'), 'top, version 2\n');
    const img2 = await buildOciImage({ dir: path.join(work, 'v2'), layers: [layers[0] as string, layers[1] as string, l3b], name: 'img' });
    const b = await runCli('nydusify', ['convert', '--source', img2.ref, '--target', `oci:${work}/v2-nydus:b`, '--work-dir', wd]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(count(b.stdout, 'layer-cached'), 2, b.stdout.toString());
    assert.equal(count(b.stdout, 'layer-done'), 1, b.stdout.toString());
    // Damage one cached blob in place (same size): the next conversion builds that layer again.
    // The cached conversion of v2's bottom layer (also v1's): its directory is named by the source digest.
    const bottom = (readManifest(img2.ref).layers[0] as { digest: string }).digest.slice(7);
    const metas = fs.readdirSync(path.join(wd, 'cache')).filter((d) => d.startsWith(bottom)).map((d) => path.join(wd, 'cache', d, 'layer.json'));
    assert.equal(metas.length, 1, 'one cached conversion of the bottom layer');
    const victim = JSON.parse(fs.readFileSync(metas[0] as string, 'utf8')) as { blobPath: string; blobDigest: string };
    const bytes = fs.readFileSync(victim.blobPath);
    bytes[100] = (bytes[100] as number) ^ 0xff;
    fs.writeFileSync(victim.blobPath, bytes);
    const c = await runCli('nydusify', ['convert', '--source', img2.ref, '--target', `oci:${work}/v2-nydus:c`, '--work-dir', wd]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(count(c.stdout, 'layer-cached'), 2, c.stdout.toString());
    assert.equal(count(c.stdout, 'layer-done'), 1, c.stdout.toString());
    const rebuilt = JSON.parse(fs.readFileSync(metas[0] as string, 'utf8')) as { blobPath: string; blobDigest: string };
    assert.equal(rebuilt.blobDigest, victim.blobDigest, 'the same layer converts to the same blob');
    assert.equal(createHash('sha256').update(fs.readFileSync(rebuilt.blobPath)).digest('hex'), victim.blobDigest.slice(7));
  });
});
