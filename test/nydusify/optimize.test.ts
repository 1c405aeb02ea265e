/**
 * nydusify optimize against a real docker-registry: a three-layer image converted to Nydus is
 * optimized into another repository of the same registry. The registry's access log shows the
 * old blobs mounted, never uploaded, and exactly the new blob, the new bootstrap layer and the
 * config uploaded; only ranged reads of old blobs; `nydusify check` passes against the OCI
 * source; the new bootstrap's prefetch table is the list.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { cleanupTempDir, runCliText, tempDir } from '../helpers/mounts.js';
import { makeMessyLayers } from '../helpers/make-tree.js';
import { buildOciImage, pushImage } from '../helpers/oci-image.js';
import { startRegistry } from '../helpers/registry.js';
import { RegistryClient } from '../../src/registry/registry-client.js';
import { openRegistryStore } from '../../src/nydusify/registry-store.js';
import { bootstrapLayerOf, fetchBootstrap, readConfig, resolveManifest } from '../../src/nydusify/image-parts.js';
import { RafsImage } from '../../src/image/rafs-image.js';
import { fileSource } from '../../src/image/byte-source.js';

/** Regular non-empty files under `root` as absolute image paths, sorted. */
function regularFiles(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const p = `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...regularFiles(root, p));
    else if (e.isFile() && fs.statSync(path.join(root, p)).size > 0 && /^[\x21-\x7e/]+$/.test(p)) out.push(p);
  }
  return out.sort();
}

describe('nydusify optimize with a registry', () => {
  let work: string;
  let reg: Awaited<ReturnType<typeof startRegistry>>;
  let rootfs: string;

  before(async () => {
    work = await tempDir(undefined, 'nydusify-optimize-');
    reg = await startRegistry({ dir: path.join(work, 'registry') });
    const layers = await makeMessyLayers(path.join(work, 'layers'));
    const img = await buildOciImage({ dir: path.join(work, 'img'), layers, name: 'app' });
    await pushImage(img.ref, `${reg.host}/src/app:1`, { tlsVerify: false });
    const bundle = path.join(work, 'bundle');
    execFileSync('umoci', ['unpack', '--image', img.ref.slice(4), bundle], { stdio: 'pipe' });
    rootfs = path.join(bundle, 'rootfs');
    const conv = await runCliText('nydusify', ['convert', '--plain-http', '--source', `${reg.host}/src/app:1`, '--target', `${reg.host}/nydus/app:1`, '--work-dir', path.join(work, 'conv')]);
    assert.equal(conv.code, 0, conv.stderr);
  });
  after(async () => {
    await reg?.stop();
    await cleanupTempDir(work);
  });

  test('optimize into another repo: old blobs mounted (never uploaded), one new blob + bootstrap layer pushed, check passes', async () => {
    const files = regularFiles(rootfs);
    assert.ok(files.length >= 4, files.join(' '));
    // Reverse order (not the build order), one missing path.
    const list = [...files.slice(-4).reverse(), '/does/not/exist', (files[0] as string)];
    const listFile = path.join(work, 'list.txt');
    fs.writeFileSync(listFile, `${list.join('\n')}\n`);

    const client = new RegistryClient(reg.host, { plainHttp: true });
    const srcStore = openRegistryStore(client, reg.host, 'nydus/app');
    const dstStore = openRegistryStore(client, reg.host, 'opt/app');
    try {
      const src = await resolveManifest(srcStore, '1', { platform: { os: 'linux', architecture: 'amd64' }, nydus: true });
      const oldBlobs = src.manifest.layers.slice(0, -1).map((l) => l.digest);
      assert.equal(oldBlobs.length, 3);

      const logFile = path.join(work, 'registry', 'registry.log');
      const logStart = fs.statSync(logFile).size;
      const r = await runCliText('nydusify', ['optimize', '--plain-http', '--source', `${reg.host}/nydus/app:1`, '--target', `${reg.host}/opt/app:1`, '--prefetch-files', listFile, '--work-dir', path.join(work, 'opt')]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.equal(r.stderr.split('\n').filter((l) => l.includes('warning')).length, 1, r.stderr);
      assert.match(r.stderr, /\/does\/not\/exist/);
      const log = fs.readFileSync(logFile, 'utf8').slice(logStart).split('\n');
      const requests = log.map((l) => /"(GET|HEAD|POST|PATCH|PUT|DELETE) (\S+) HTTP/.exec(l)).filter((m): m is RegExpExecArray => m !== null).map((m) => ({ method: m[1] as string, url: m[2] as string }));
      assert.ok(requests.length > 0, `no access log lines in ${logFile}:\n${log.slice(0, 20).join('\n')}`);

      const dst = await resolveManifest(dstStore, '1', { platform: { os: 'linux', architecture: 'amd64' }, nydus: true });
      const layers = dst.manifest.layers.map((l) => l.digest);
      assert.deepEqual(layers.slice(0, 3), oldBlobs, 'old blob layers kept in order');
      assert.equal(layers.length, 5, 'old blobs + the new blob + the bootstrap layer');
      const newBlob = layers[3] as string;
      const bootLayer = layers[4] as string;
      const config = dst.manifest.config.digest;

      // Uploads: the closing PUT of each names its digest. Only the new blob, bootstrap layer and config.
      const uploaded = requests.filter((q) => q.method === 'PUT' && q.url.includes('/blobs/uploads/')).map((q) => decodeURIComponent(/[?&]digest=([^&]+)/.exec(q.url)?.[1] ?? ''));
      assert.deepEqual(uploaded.sort(), [newBlob, bootLayer, config].sort(), requests.map((q) => `${q.method} ${q.url}`).join('\n'));
      // Every upload started (POST without mount) belongs to one of those three: no PATCH of an old blob either.
      const uploadStarts = requests.filter((q) => q.method === 'POST' && q.url.includes('/blobs/uploads/') && !q.url.includes('mount='));
      assert.equal(uploadStarts.length, 3, uploadStarts.map((q) => q.url).join('\n'));
      for (const b of oldBlobs) {
        const mounts = requests.filter((q) => q.method === 'POST' && q.url.startsWith('/v2/opt/app/blobs/uploads/') && decodeURIComponent(q.url).includes(`mount=${b}`));
        assert.equal(mounts.length, 1, `old blob ${b} mounted once`);
        assert.equal(requests.some((q) => (q.method === 'PUT' || q.method === 'PATCH') && decodeURIComponent(q.url).includes(b)), false, `old blob ${b} never uploaded`);
      }
      // The old blobs were read only for the listed files' chunks: far less than their size.
      assert.ok(log.some((l) => oldBlobs.some((b) => l.includes(`GET /v2/nydus/app/blobs/${b}`))), 'chunks read from the source repo');
      const read = Number(/(\d+) chunk bytes read in (\d+) requests/.exec(r.stdout)?.[1] ?? NaN);
      const oldSize = src.manifest.layers.slice(0, -1).reduce((n, l) => n + l.size, 0);
      assert.ok(read > 0 && read < oldSize / 2, `read ${read} of ${oldSize} bytes of old blobs`);

      // The new bootstrap: prefetch table = the list (minus the missing path); the config's diff_ids match.
      const boot = path.join(work, 'opt.boot');
      await fetchBootstrap(dstStore, bootstrapLayerOf(dst.manifest, 'target'), boot);
      const image = new RafsImage(fileSource(boot));
      try {
        const present = list.filter((p) => p !== '/does/not/exist');
        assert.deepEqual(image.prefetchNids(), present.map((p) => (image.resolve(p) ?? assert.fail(p)).nid));
        assert.deepEqual(image.blobs.map((b) => `sha256:${b.slot.blobId}`), [...oldBlobs, newBlob]);
        for (const p of present) for (const c of image.chunkIndexes(image.resolve(p) ?? assert.fail())) assert.equal(c.blobIndex, 3, `${p} reads from the new blob`);
      } finally {
        image.close();
      }
      const cfg = await readConfig(dstStore, dst.manifest);
      assert.equal(cfg.rootfs.diff_ids.length, 5);
      assert.deepEqual(cfg.rootfs.diff_ids.slice(0, 4), layers.slice(0, 4));
    } finally {
      await client.close();
    }

    const chk = await runCliText('nydusify', ['check', '--plain-http', '--source', `${reg.host}/src/app:1`, '--target', `${reg.host}/opt/app:1`, '--work-dir', path.join(work, 'check')]);
    assert.equal(chk.code, 0, `${chk.stdout}\n${chk.stderr}`);
    assert.match(chk.stdout, /check passed/);
  });
});
