/**
 * nydusify convert + check through a real registry (Debian's docker-registry on loopback) for the
 * image kinds users push: a multi-layer image with whiteouts, opaque directories, hardlinks,
 * symlinks, xattrs and special files, as an OCI image with gzip layers, as a Docker v2 schema 2
 * image, with zstd layers, and as a two-platform index. `nydusify check` mounts each result with
 * the registry backend and compares every file with the source layers applied; skopeo inspects
 * and copies each result.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeMessyLayers } from '../helpers/make-tree.js';
import { cleanupTempDir, run, runCliText, tempDir } from '../helpers/mounts.js';
import { buildOciImage, buildTwoPlatformIndex, pushImage, skopeoInspect, toZstdLayers } from '../helpers/oci-image.js';
import { startRegistry } from '../helpers/registry.js';

interface RawManifest {
  mediaType?: string;
  layers?: Array<{ mediaType: string; annotations?: Record<string, string> }>;
  manifests?: Array<{ mediaType: string; artifactType?: string; platform?: { os: string; architecture: string } }>;
}

describe('nydusify convert and check through a registry: gzip, Docker v2s2, zstd, two-platform index', () => {
  let work: string;
  let reg: Awaited<ReturnType<typeof startRegistry>>;

  const nydusify = (args: string[]): ReturnType<typeof runCliText> => runCliText('nydusify', args, { timeoutMs: 300_000 });

  before(async () => {
    work = await tempDir(undefined, 'nydusify-matrix-');
    reg = await startRegistry({ dir: path.join(work, 'registry') });
    const [l1, l2, l3] = await makeMessyLayers(work);
    const img = await buildOciImage({ dir: path.join(work, 'img'), layers: [l1, l2, l3], name: 'messy', xattrs: true });
    await pushImage(img.ref, `${reg.host}/src/messy:1`, { tlsVerify: false });
    const v2s2 = await run('skopeo', ['copy', '-q', '--dest-tls-verify=false', '--format', 'v2s2', img.ref, `docker://${reg.host}/src/messy-v2s2:1`]);
    assert.equal(v2s2.code, 0, v2s2.stderr);
    const z = await toZstdLayers(img.ref);
    await pushImage(z.ref, `${reg.host}/src/messy-zstd:1`, { tlsVerify: false });
    const idx = await buildTwoPlatformIndex({ dir: path.join(work, 'multi'), layers: [l2, l3], xattrs: true });
    await pushImage(idx.ref, `${reg.host}/src/multi:1`, { tlsVerify: false });
  });

  after(async () => {
    await reg?.stop();
    await cleanupTempDir(work);
  });

  /** skopeo reads the converted image and copies it with all its blobs. */
  async function skopeoAccepts(ref: string, all: boolean): Promise<RawManifest> {
    const raw = await skopeoInspect(`docker://${ref}`, { tlsVerify: false, raw: true }) as RawManifest;
    const out = path.join(work, `copied-${ref.replace(/[^a-z0-9]/gi, '_')}`);
    const c = await run('skopeo', ['copy', '-q', '--src-tls-verify=false', ...(all ? ['--all'] : []), `docker://${ref}`, `oci:${out}:x`]);
    assert.equal(c.code, 0, c.stderr);
    return raw;
  }

  for (const [name, repo, layerType] of [
    ['an OCI image with gzip layers', 'messy', 'application/vnd.oci.image.layer.v1.tar+gzip'],
    ['a Docker v2 schema 2 image', 'messy-v2s2', 'application/vnd.docker.image.rootfs.diff.tar.gzip'],
    ['an OCI image with zstd layers', 'messy-zstd', 'application/vnd.oci.image.layer.v1.tar+zstd'],
  ] as const) {
    test(`${name} converts, passes check, and skopeo accepts the result`, async () => {
      const src = await skopeoInspect(`docker://${reg.host}/src/${repo}:1`, { tlsVerify: false, raw: true }) as RawManifest;
      assert.ok(src.layers?.length === 3 && src.layers.every((l) => l.mediaType === layerType), JSON.stringify(src.layers?.map((l) => l.mediaType)));
      const conv = await nydusify(['convert', '--plain-http', '--source', `${reg.host}/src/${repo}:1`, '--target', `${reg.host}/nydus/${repo}:1`, '--work-dir', path.join(work, `conv-${repo}`)]);
      assert.equal(conv.code, 0, conv.stderr);
      const check = await nydusify(['check', '--plain-http', '--source', `${reg.host}/src/${repo}:1`, '--target', `${reg.host}/nydus/${repo}:1`, '--work-dir', path.join(work, `check-${repo}`)]);
      assert.equal(check.code, 0, `${check.stdout}\n${check.stderr}`);
      assert.match(check.stdout, /^check passed: .* 4 layers, manifest and bootstrap rules hold, \d+ entries equal/m);
      const raw = await skopeoAccepts(`${reg.host}/nydus/${repo}:1`, false);
      assert.equal(raw.mediaType, 'application/vnd.oci.image.manifest.v1+json');
      assert.deepEqual(raw.layers?.map((l) => l.mediaType), [
        'application/vnd.oci.image.layer.nydus.blob.v1', 'application/vnd.oci.image.layer.nydus.blob.v1', 'application/vnd.oci.image.layer.nydus.blob.v1',
        'application/vnd.oci.image.layer.v1.tar+gzip',
      ]);
      assert.equal(raw.layers?.[3]?.annotations?.['containerd.io/snapshot/nydus-bootstrap'], 'true');
      assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(path.join(work, `check-${repo}`)), 'nothing left mounted');
    });
  }

  test('a two-platform index converts to a Nydus index; each platform passes check; skopeo copies it all', async () => {
    const conv = await nydusify(['convert', '--plain-http', '--all-platforms', '--source', `${reg.host}/src/multi:1`, '--target', `${reg.host}/nydus/multi:1`, '--work-dir', path.join(work, 'conv-multi')]);
    assert.equal(conv.code, 0, conv.stderr);
    for (const platform of ['linux/amd64', 'linux/arm64']) {
      const check = await nydusify(['check', '--plain-http', '--platform', platform, '--source', `${reg.host}/src/multi:1`, '--target', `${reg.host}/nydus/multi:1`, '--work-dir', path.join(work, `check-multi-${platform.slice(6)}`)]);
      assert.equal(check.code, 0, `${platform}\n${check.stdout}\n${check.stderr}`);
      assert.match(check.stdout, /^check passed: .* 3 layers, manifest and bootstrap rules hold, \d+ entries equal/m);
    }
    const raw = await skopeoAccepts(`${reg.host}/nydus/multi:1`, true);
    assert.equal(raw.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(raw.manifests?.map((m) => m.platform?.architecture).sort(), ['amd64', 'arm64']);
    assert.ok(raw.manifests?.every((m) => m.artifactType === 'application/vnd.nydus.image.manifest.v1+json'), JSON.stringify(raw.manifests));
  });

  test('--platform picks platforms from an index, and names the one it cannot find', async () => {
    const one = await nydusify(['convert', '--plain-http', '--platform', 'linux/aarch64', '--source', `${reg.host}/src/multi:1`, '--target', `${reg.host}/nydus/multi-arm:1`, '--work-dir', path.join(work, 'conv-multi')]);
    assert.equal(one.code, 0, one.stderr);
    const raw = await skopeoInspect(`docker://${reg.host}/nydus/multi-arm:1`, { tlsVerify: false, raw: true }) as RawManifest;
    assert.deepEqual(raw.manifests?.map((m) => m.platform?.architecture), ['arm64']);
    const missing = await nydusify(['convert', '--plain-http', '--platform', 'linux/amd64,linux/s390x', '--source', `${reg.host}/src/multi:1`, '--target', `${reg.host}/nydus/multi-s390x:1`, '--work-dir', path.join(work, 'conv-multi')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no manifest for linux\/s390x \(it has linux\/amd64, linux\/arm64\)/);
    const tags = await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/nydus/multi-s390x`]);
    assert.ok(tags.code !== 0 || !tags.stdout.toString().includes('"1"'), 'no target tag was written');
  });
});
