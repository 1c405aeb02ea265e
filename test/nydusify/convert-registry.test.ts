/**
 * nydusify against a real registry (Debian's docker-registry on loopback): an OCI image pushed
 * with skopeo converts to a Nydus image in the registry, skopeo accepts the result, and nydusd
 * with the registry backend mounts it lazily: reading a start-up set fetches about what is read,
 * and the whole tree equals the OCI rootfs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { compareTrees } from '../helpers/compare-tree.js';
import { runCli, tempDir, cleanupTempDir, run } from '../helpers/mounts.js';
import { nydusdConfig, startNydusd } from '../helpers/nydusd.js';
import { buildOciImage, pushImage, skopeoInspect } from '../helpers/oci-image.js';
import { startRegistry } from '../helpers/registry.js';
import { RegistryClient } from '../../src/registry/registry-client.js';
import { prngBytes } from '../helpers/make-tree.js';
import { RafsImage } from '../../src/image/rafs-image.js';
import { fileSource } from '../../src/image/byte-source.js';

describe('nydusify convert with a registry; nydusd registry backend', () => {
  let work: string;
  let reg: Awaited<ReturnType<typeof startRegistry>>;
  let rootfs: string;
  const startup = ['app/bin/tool', 'app/etc/config.json', 'app/lib/lib01.so'];

  before(async () => {
    work = await tempDir(undefined, 'nydusify-reg-');
    reg = await startRegistry({ dir: path.join(work, 'registry') });
    const l1 = path.join(work, 'l1');
    fs.mkdirSync(path.join(l1, 'app/lib'), { recursive: true });
    fs.mkdirSync(path.join(l1, 'app/bin'), { recursive: true });
    fs.mkdirSync(path.join(l1, 'app/etc'), { recursive: true });
    fs.mkdirSync(path.join(l1, 'app/data'), { recursive: true });
    for (let k = 0; k < 20; k++) fs.writeFileSync(path.join(l1, `app/lib/lib${String(k).padStart(2, '0')}.so`), prngBytes(`lib${k}`, 200_000 + k * 10_000));
    fs.writeFileSync(path.join(l1, 'app/data/big.bin'), prngBytes('big', 12 << 20));
    fs.writeFileSync(path.join(l1, 'app/bin/tool'), prngBytes('tool', 300_000));
    fs.writeFileSync(path.join(l1, 'app/etc/config.json'), '{"a":1}\n');
    fs.symlinkSync('../lib/lib00.so', path.join(l1, 'app/bin/link'));
    fs.linkSync(path.join(l1, 'app/bin/tool'), path.join(l1, 'app/bin/tool-hardlink'));
    execFileSync('setfattr', ['-n', 'user.role', '-v', 'binary', path.join(l1, 'app/bin/tool')]);
    const l2 = path.join(work, 'l2');
    fs.mkdirSync(path.join(l2, 'app/data'), { recursive: true });
    fs.writeFileSync(path.join(l2, 'app/data/.wh..wh..opq'), '');
    fs.writeFileSync(path.join(l2, 'app/data/small.txt'), 'replaced\n');
    fs.mkdirSync(path.join(l2, 'app/lib'), { recursive: true });
    fs.writeFileSync(path.join(l2, 'app/lib/.wh.lib19.so'), '');
    const img = await buildOciImage({ dir: path.join(work, 'img'), layers: [l1, l2], name: 'app' });
    await pushImage(img.ref, `${reg.host}/src/app:1`, { tlsVerify: false });
    const bundle = path.join(work, 'bundle');
    execFileSync('umoci', ['unpack', '--image', img.ref.slice(4), bundle], { stdio: 'pipe' });
    rootfs = path.join(bundle, 'rootfs');
  });
  after(async () => {
    await reg?.stop();
    await cleanupTempDir(work);
  });

  test('convert pushes a Nydus image skopeo accepts; nydusd reads it lazily and fully from the registry', async () => {
    const r = await runCli('nydusify', ['convert', '--plain-http', '--source', `${reg.host}/src/app:1`, '--target', `${reg.host}/nydus/app:1`, '--work-dir', path.join(work, 'conv')]);
    assert.equal(r.code, 0, r.stderr);
    const inspected = await skopeoInspect(`docker://${reg.host}/nydus/app:1`, { tlsVerify: false });
    assert.equal((inspected.Layers as string[]).length, 3);
    const copy = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/nydus/app:1`, `oci:${path.join(work, 'copied')}:x`]);
    assert.equal(copy.code, 0, copy.stderr);
    // The bootstrap layer, fetched through our client.
    const client = new RegistryClient(reg.host, { plainHttp: true });
    const m = JSON.parse(Buffer.from((await client.getManifest('nydus/app', '1')).data).toString()) as { layers: Array<{ digest: string; annotations?: Record<string, string> }> };
    const last = m.layers[m.layers.length - 1] as { digest: string };
    const parts: Buffer[] = [];
    for await (const c of client.blobStream('nydus/app', last.digest)) parts.push(Buffer.from(c));
    await client.close();
    const bx = path.join(work, 'bx');
    fs.mkdirSync(bx);
    fs.writeFileSync(path.join(bx, 'layer.tgz'), Buffer.concat(parts));
    execFileSync('tar', ['-xzf', path.join(bx, 'layer.tgz'), '-C', bx]);
    const boot = path.join(bx, 'image/image.boot');
    const mnt = path.join(work, 'mnt');
    const d = await startNydusd({ dir: work, bootstrap: boot, mountpoint: mnt, config: nydusdConfig({ backend: { type: 'registry', scheme: 'http', host: reg.host, repo: 'nydus/app' }, workDir: path.join(work, 'cache'), amplifyIo: 0 }) });
    try {
      // Start-up set: a few files; the bytes fetched stay near the bytes read.
      let readBytes = 0;
      for (const f of startup) {
        const c = await run('cat', [path.join(mnt, f)]);
        assert.equal(c.code, 0, c.stderr);
        assert.equal(createHash('sha256').update(c.stdout).digest('hex'), createHash('sha256').update(fs.readFileSync(path.join(rootfs, f))).digest('hex'), f);
        readBytes += c.stdout.length;
      }
      const b = (await d.api('GET', '/api/v1/metrics/backend')).body as { read_amount_total: number; read_count: number; backend_type: string };
      assert.equal(b.backend_type, 'registry');
      assert.ok(b.read_amount_total <= 2 * readBytes, `fetched ${b.read_amount_total} bytes for ${readBytes} read`);
      // Nothing else was fetched: exactly the stored (compressed) bytes of the chunks these files use.
      const image = new RafsImage(fileSource(boot));
      const chunks = new Map<string, number>();
      try {
        for (const f of startup) {
          const ino = image.resolve(`/${f}`);
          assert.ok(ino, f);
          for (const c of image.chunkIndexes(ino)) {
            const rec = image.chunkRecord(c);
            chunks.set(`${c.blobIndex}:${rec.compressedOffset}`, rec.compressedSize);
          }
        }
      } finally {
        image.close();
      }
      assert.equal(b.read_amount_total, [...chunks.values()].reduce((x, y) => x + y, 0), 'bytes fetched = the chunks of the files read');
      const diffs = await compareTrees(rootfs, mnt, { ignoreRootAttrs: true });
      assert.deepEqual(diffs, [], diffs.slice(0, 20).join('\n'));
    } finally {
      await d.stop();
    }
  });
});
