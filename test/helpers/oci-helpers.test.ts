/**
 * The OCI image helpers (umoci/skopeo), a real docker-registry on loopback and the nginx caching
 * proxy in front of it. Everything started here is stopped by PID in after().
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  buildOciImage, toZstdLayers, pushImage, skopeoInspect, buildTwoPlatformIndex, busyboxRootfs, readManifest, readBlob,
  MT_LAYER_GZIP, MT_LAYER_ZSTD, MT_INDEX, MT_MANIFEST, type OciImage,
} from './oci-image.js';
import { startNginxProxy, freePort, type NginxProxy } from './nginx.js';

interface Registry { host: string; url: string; stop(): Promise<void> }

/** test/helpers/registry.ts when it loads, else a minimal plain-HTTP `docker-registry serve`. */
async function registry(dir: string): Promise<Registry> {
  try {
    const mod = (await import('./registry.js')) as { startRegistry?: (o: { dir: string }) => Promise<Registry> };
    if (typeof mod.startRegistry === 'function') return await mod.startRegistry({ dir });
  } catch { /* fall back */ }
  const port = await freePort();
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const cfg = path.join(dir, 'config.yml');
  fs.writeFileSync(cfg, `version: 0.1
log: {level: warn, formatter: text}
storage: {filesystem: {rootdirectory: ${path.join(dir, 'data')}}, delete: {enabled: true}, cache: {blobdescriptor: inmemory}}
http: {addr: 127.0.0.1:${port}}
health: {storagedriver: {enabled: false}}
`);
  const child: ChildProcess = spawn('docker-registry', ['serve', cfg], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try { const r = await fetch(`${url}/v2/`); await r.arrayBuffer(); if (r.ok) break; } catch { /* not yet */ }
    if (i > 250 || child.exitCode !== null) { child.kill('SIGKILL'); throw new Error('docker-registry did not start'); }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    host: `127.0.0.1:${port}`, url,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      const done = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGKILL');
      await done;
    },
  };
}

let work = '';
let reg: Registry | undefined;
const proxies: NginxProxy[] = [];
let image: OciImage;

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'nydus-oci-helpers-'));
  reg = await registry(path.join(work, 'registry'));
  // Layer 1: busybox + /etc/{a,b} + /data/{x,y}; layer 2: deletes /etc/a, makes /data opaque, adds files.
  const l1 = busyboxRootfs(path.join(work, 'l1'));
  fs.mkdirSync(path.join(l1, 'etc'));
  fs.writeFileSync(path.join(l1, 'etc/a'), 'a\n');
  fs.writeFileSync(path.join(l1, 'etc/b'), 'b\n');
  fs.mkdirSync(path.join(l1, 'data'));
  fs.writeFileSync(path.join(l1, 'data/x'), Buffer.alloc(3 << 20, 7)); // 3 MiB: several nginx slices
  fs.writeFileSync(path.join(l1, 'data/y'), 'y');
  const l2 = path.join(work, 'l2');
  fs.mkdirSync(path.join(l2, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(l2, 'etc/.wh.a'), '');
  fs.writeFileSync(path.join(l2, 'etc/c'), 'c\n');
  fs.mkdirSync(path.join(l2, 'data'));
  fs.writeFileSync(path.join(l2, 'data/.wh..wh..opq'), '');
  fs.writeFileSync(path.join(l2, 'data/z'), 'z');
  image = await buildOciImage({ dir: path.join(work, 'img'), layers: [l1, l2], name: 'v1', cmd: ['/bin/sh', '-c', 'echo hi'], env: ['PATH=/bin'] });
});

after(async () => {
  for (const p of proxies) await p.stop();
  await reg?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('buildOciImage: 2 gzip layers, whiteouts in the upper layer, config', () => {
  const m = readManifest(image.ref);
  assert.equal(m.layers.length, 2);
  for (const l of m.layers) assert.equal(l.mediaType, MT_LAYER_GZIP);
  const list = (d: string): string[] => execFileSync('tar', ['-tzf', path.join(image.layout, 'blobs/sha256', d.slice(7))], { encoding: 'utf8' }).trim().split('\n');
  const upper = list(m.layers[1]!.digest);
  assert.ok(upper.includes('etc/.wh.a'), upper.join(','));
  assert.ok(upper.includes('data/.wh..wh..opq'), upper.join(','));
  const lower = list(m.layers[0]!.digest);
  assert.ok(lower.includes('bin/busybox') && lower.includes('bin/sh') && lower.includes('data/x'), lower.join(','));
  const cfg = JSON.parse(readBlob(image.layout, m.config.digest).toString());
  assert.equal(cfg.architecture, 'amd64');
  assert.equal(cfg.os, 'linux');
  assert.deepEqual(cfg.config.Cmd, ['/bin/sh', '-c', 'echo hi']);
  assert.deepEqual(cfg.config.Env, ['PATH=/bin']);
  assert.equal(cfg.rootfs.diff_ids.length, 2);
});

test('pushImage + skopeo inspect: 2 layers in the registry', async () => {
  const { digest } = await pushImage(image.ref, `${reg!.host}/test/img:v1`);
  assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  const info = await skopeoInspect(`${reg!.host}/test/img:v1`);
  assert.equal(info.Layers.length, 2);
  assert.equal(info.Digest, digest);
});

test('toZstdLayers: tar+zstd layers, same diff_ids, pushable', async () => {
  const z = await toZstdLayers(image.ref);
  const m = readManifest(z.ref);
  assert.equal(m.layers.length, 2);
  for (const l of m.layers) assert.equal(l.mediaType, MT_LAYER_ZSTD);
  const cfgG = JSON.parse(readBlob(image.layout, readManifest(image.ref).config.digest).toString());
  const cfgZ = JSON.parse(readBlob(z.layout, m.config.digest).toString());
  assert.deepEqual(cfgZ.rootfs.diff_ids, cfgG.rootfs.diff_ids);
  await pushImage(z.ref, `${reg!.host}/test/img:zstd`);
  const raw = await skopeoInspect(`${reg!.host}/test/img:zstd`, { raw: true });
  assert.deepEqual(raw.layers.map((l: { mediaType: string }) => l.mediaType), [MT_LAYER_ZSTD, MT_LAYER_ZSTD]);
});

test('buildTwoPlatformIndex: pushed as one tag, index with amd64 + arm64', async () => {
  const idx = await buildTwoPlatformIndex({ dir: path.join(work, 'multi'), layers: [path.join(work, 'l1')], cmd: ['/bin/sh'] });
  const { digest } = await pushImage(idx.ref, `${reg!.host}/test/multi:1`);
  assert.equal(digest, idx.indexDigest);
  const raw = await skopeoInspect(`${reg!.host}/test/multi:1`, { raw: true });
  assert.equal(raw.mediaType, MT_INDEX);
  assert.equal(raw.manifests.length, 2);
  assert.deepEqual(raw.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture).sort(), ['amd64', 'arm64']);
  for (const m of raw.manifests) assert.equal(m.mediaType, MT_MANIFEST);
  assert.equal(raw.manifests.find((m: { platform: { architecture: string } }) => m.platform.architecture === 'arm64').digest, idx.manifests.arm64);
});

for (const slice of [false, true]) {
  test(`nginx proxy (${slice ? 'slice 1m' : 'whole-blob'} cache): blob Range GET through it, access log, kill()`, async () => {
    const m = readManifest(image.ref);
    const layer = m.layers[0]!;
    const blob = readBlob(image.layout, layer.digest);
    assert.ok(blob.length > 1 << 20, `layer ${blob.length} bytes`);
    const px = await startNginxProxy({ dir: path.join(work, `nginx-${slice}`), upstream: reg!.url, slice, limitRate: '500m' });
    proxies.push(px);
    const blobUrl = `${px.url}/v2/test/img/blobs/${layer.digest}`;
    const start = (1 << 20) - 50; // crosses a 1 MiB slice boundary
    for (const expect of ['MISS', 'HIT']) {
      // nginx finishes writing a cache entry (the whole blob, or the slices) after the answer
      // that filled it: a request right after may still miss, so the HIT is waited for.
      for (let k = 0; ; k++) {
        const r = await fetch(blobUrl, { headers: { Range: `bytes=${start}-${start + 99}` } });
        const body = Buffer.from(await r.arrayBuffer());
        assert.equal(r.status, 206);
        assert.equal(r.headers.get('content-range'), `bytes ${start}-${start + 99}/${blob.length}`);
        assert.ok(body.equals(blob.subarray(start, start + 100)), 'range bytes');
        const got = r.headers.get('x-cache-status');
        if (expect === 'HIT' && got !== 'HIT' && k < 50) {
          await new Promise((res) => setTimeout(res, 50));
          continue;
        }
        assert.equal(got, expect);
        break;
      }
    }
    // Manifests pass through (uncached) with their Accept header.
    const mr = await fetch(`${px.url}/v2/test/img/manifests/v1`, { headers: { Accept: MT_MANIFEST } });
    assert.equal(mr.status, 200);
    await mr.arrayBuffer();
    const log = px.accessLog();
    assert.match(log, new RegExp(`"GET /v2/test/img/blobs/${layer.digest} HTTP/1.1" 206 100 range="bytes=${start}-${start + 99}" cache=MISS`));
    assert.match(log, /cache=HIT/);
    await px.kill();
    assert.equal(px.child.signalCode, 'SIGKILL');
    assert.throws(() => process.kill(px.pid, 0), /ESRCH/);
    await assert.rejects(fetch(blobUrl));
  });
}

test('nginx proxy stop(): SIGTERM ends the single process', async () => {
  const px = await startNginxProxy({ dir: path.join(work, 'nginx-stop'), upstream: reg!.url });
  proxies.push(px);
  const r = await fetch(`${px.url}/v2/`);
  await r.arrayBuffer();
  assert.equal(r.status, 200);
  await px.stop();
  assert.ok(px.child.exitCode !== null || px.child.signalCode !== null);
  assert.throws(() => process.kill(px.pid, 0), /ESRCH/);
  await px.stop(); // twice is fine
});
