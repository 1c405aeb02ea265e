/**
 * nydusify against a TLS registry whose certificate a test CA signed: with the CA where Docker
 * and containerd keep a registry's certificates (`certs.d/<host:port>/ca.crt`, here under
 * NYDUS_CERTS_D), convert and check work without any "insecure" flag, and the nydusd that check
 * starts verifies the registry with the same CA (`ca_cert_files`). Without it, the TLS failure is
 * named.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanupTempDir, runCli, tempDir } from '../helpers/mounts.js';
import { buildOciImage, pushImage } from '../helpers/oci-image.js';
import { startRegistry } from '../helpers/registry.js';
import { prngBytes } from '../helpers/make-tree.js';

describe('nydusify with a TLS registry and its CA in certs.d', () => {
  let work: string;
  let reg: Awaited<ReturnType<typeof startRegistry>>;
  let certsD: string;

  before(async () => {
    work = await tempDir(undefined, 'nydusify-tls-');
    reg = await startRegistry({ dir: path.join(work, 'registry'), tls: true });
    certsD = path.join(work, 'certs.d');
    fs.mkdirSync(path.join(certsD, reg.host), { recursive: true });
    fs.copyFileSync(reg.caFile as string, path.join(certsD, reg.host, 'ca.crt'));
    const l1 = path.join(work, 'l1');
    fs.mkdirSync(path.join(l1, 'app'), { recursive: true });
    fs.writeFileSync(path.join(l1, 'app/data.bin'), prngBytes('tls', 3 << 20));
    fs.writeFileSync(path.join(l1, 'app/hello.txt'), 'hello over TLS\n');
    const img = await buildOciImage({ dir: path.join(work, 'img'), layers: [l1], name: 'app' });
    await pushImage(img.ref, `${reg.host}/src/app:1`, { certDir: path.join(certsD, reg.host) });
  });
  after(async () => {
    await reg?.stop();
    await cleanupTempDir(work);
  });

  test('convert and check verify the registry with the CA from certs.d', async () => {
    const env = { ...process.env, NYDUS_CERTS_D: certsD };
    const conv = await runCli('nydusify', ['convert', '--source', `${reg.host}/src/app:1`, '--target', `${reg.host}/nydus/app:1`, '--work-dir', path.join(work, 'conv')], { env, timeoutMs: 180_000 });
    assert.equal(conv.code, 0, conv.stderr.toString());
    const check = await runCli('nydusify', ['check', '--source', `${reg.host}/src/app:1`, '--target', `${reg.host}/nydus/app:1`, '--work-dir', path.join(work, 'check')], { env, timeoutMs: 180_000 });
    assert.equal(check.code, 0, `${check.stdout.toString()}\n${check.stderr.toString()}`);
    assert.match(check.stdout.toString(), /^check passed: .* 2 layers, manifest and bootstrap rules hold, \d+ entries equal/m);
  });

  test('without the CA, convert fails naming the certificate problem and the registry', async () => {
    const env = { ...process.env, NYDUS_CERTS_D: path.join(work, 'no-certs') };
    const conv = await runCli('nydusify', ['convert', '--source', `${reg.host}/src/app:1`, '--target', `${reg.host}/nydus/other:1`, '--work-dir', path.join(work, 'conv2')], { env, timeoutMs: 180_000 });
    assert.notEqual(conv.code, 0);
    assert.match(conv.stderr.toString(), new RegExp(`${reg.host.replace(/\./g, '\\.')}.*(certificate|self.signed|verify)`, 'i'));
  });

  test('without the CA, --source-insecure and --target-insecure skip the verification on their side only', async () => {
    const env = { ...process.env, NYDUS_CERTS_D: path.join(work, 'no-certs') };
    const args = ['convert', '--source', `${reg.host}/src/app:1`, '--target', `${reg.host}/nydus/insecure:1`, '--work-dir', path.join(work, 'conv3')];
    const srcOnly = await runCli('nydusify', [...args, '--source-insecure'], { env, timeoutMs: 180_000 });
    assert.notEqual(srcOnly.code, 0, 'the target side still verifies');
    assert.match(srcOnly.stderr.toString(), /certificate|self.signed|verify/i);
    const both = await runCli('nydusify', [...args, '--source-insecure', '--target-insecure'], { env, timeoutMs: 180_000 });
    assert.equal(both.code, 0, both.stderr.toString());
    const check = await runCli('nydusify', ['check', '--target-insecure', '--source-insecure', '--source', `${reg.host}/src/app:1`, '--target', `${reg.host}/nydus/insecure:1`, '--work-dir', path.join(work, 'check3')], { env, timeoutMs: 180_000 });
    assert.equal(check.code, 0, `${check.stdout.toString()}\n${check.stderr.toString()}`);
  });
});
