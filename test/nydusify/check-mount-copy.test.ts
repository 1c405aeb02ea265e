/**
 * nydusify check, copy and mount against a real registry: an OCI image (a whiteout, an opaque
 * directory, a hardlink, a symlink, an xattr) converted with `nydusify convert` passes check;
 * a target holding a different image fails with diff lines naming the path; a copy to another
 * repository passes check; `nydusify mount` serves the image until SIGINT, then unmounts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { REPO_ROOT, cleanupTempDir, isMounted, runCliText, tempDir, umount } from '../helpers/mounts.js';
import { buildOciImage, pushImage } from '../helpers/oci-image.js';
import { startRegistry } from '../helpers/registry.js';
import { prngBytes } from '../helpers/make-tree.js';

describe('nydusify check / copy / mount with a registry', () => {
  let work: string;
  let reg: Awaited<ReturnType<typeof startRegistry>>;
  const children = new Set<ChildProcess>();
  const mounts = new Set<string>();

  function layers(dir: string, config: string): string[] {
    const l1 = path.join(dir, 'l1');
    for (const d of ['app/bin', 'app/etc', 'app/data', 'app/lib']) fs.mkdirSync(path.join(l1, d), { recursive: true });
    fs.writeFileSync(path.join(l1, 'app/bin/tool'), prngBytes('tool', 300_000));
    fs.chmodSync(path.join(l1, 'app/bin/tool'), 0o755);
    fs.linkSync(path.join(l1, 'app/bin/tool'), path.join(l1, 'app/bin/tool-hardlink'));
    fs.symlinkSync('../lib/lib0.so', path.join(l1, 'app/bin/link'));
    execFileSync('setfattr', ['-n', 'user.role', '-v', 'binary', path.join(l1, 'app/bin/tool')]);
    fs.writeFileSync(path.join(l1, 'app/etc/config.json'), config);
    for (let k = 0; k < 3; k++) fs.writeFileSync(path.join(l1, `app/lib/lib${k}.so`), prngBytes(`lib${k}`, 50_000 + k));
    fs.writeFileSync(path.join(l1, 'app/data/old.txt'), 'old\n');
    fs.mkdirSync(path.join(l1, 'app/data/sub'));
    fs.writeFileSync(path.join(l1, 'app/data/sub/deep.txt'), 'deep\n');
    const l2 = path.join(dir, 'l2');
    fs.mkdirSync(path.join(l2, 'app/data'), { recursive: true });
    fs.writeFileSync(path.join(l2, 'app/data/.wh..wh..opq'), '');
    fs.writeFileSync(path.join(l2, 'app/data/new.txt'), 'new\n');
    fs.mkdirSync(path.join(l2, 'app/lib'), { recursive: true });
    fs.writeFileSync(path.join(l2, 'app/lib/.wh.lib2.so'), '');
    return [l1, l2];
  }

  const nydusify = (args: string[]): ReturnType<typeof runCliText> => runCliText('nydusify', args, { timeoutMs: 180_000 });

  before(async () => {
    work = await tempDir(undefined, 'nydusify-cmc-');
    reg = await startRegistry({ dir: path.join(work, 'registry') });
    const a = await buildOciImage({ dir: path.join(work, 'img'), layers: layers(path.join(work, 'a'), '{"a":1}\n'), name: 'app', xattrs: true });
    const b = await buildOciImage({ dir: path.join(work, 'img'), layers: layers(path.join(work, 'b'), '{"b":2}\n'), name: 'other', xattrs: true });
    await pushImage(a.ref, `${reg.host}/src/app:1`, { tlsVerify: false });
    await pushImage(b.ref, `${reg.host}/src/other:1`, { tlsVerify: false });
    for (const [s, t] of [['src/app:1', 'nydus/app:1'], ['src/other:1', 'nydus/tampered:1']] as const) {
      const r = await nydusify(['convert', '--plain-http', '--source', `${reg.host}/${s}`, '--target', `${reg.host}/${t}`, '--work-dir', path.join(work, 'conv')]);
      assert.equal(r.code, 0, r.stderr);
    }
  });

  after(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
        const exited = new Promise((r) => c.once('exit', r));
        process.kill(c.pid, 'SIGKILL');
        await exited;
      }
    }
    for (const m of mounts) if (isMounted(m)) await umount(m);
    await reg?.stop();
    await cleanupTempDir(work);
  });

  test('check passes on a converted image', async () => {
    const r = await nydusify(['check', '--plain-http', '--source', `${reg.host}/src/app:1`, '--target', `${reg.host}/nydus/app:1`, '--work-dir', path.join(work, 'check1')]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^check passed: .* 3 layers, manifest and bootstrap rules hold, \d+ entries equal/m);
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(path.join(work, 'check1')), 'nothing left mounted');
  });

  test('check fails with a diff line naming the path when the target holds another image', async (t) => {
    const r = await nydusify(['check', '--plain-http', '--source', `${reg.host}/src/app:1`, '--target', `${reg.host}/nydus/tampered:1`, '--work-dir', path.join(work, 'check2')]);
    t.diagnostic(r.stdout.trim());
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^\/app\/etc\/config\.json: content sha256 [0-9a-f]{64} in source, [0-9a-f]{64} in target$/m);
    assert.match(r.stdout, /^check failed: 0 rule problem\(s\), 1 file system difference\(s\)$/m);
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(path.join(work, 'check2')), 'nothing left mounted');
  });

  test('check fails on the manifest rule for a plain OCI target', async () => {
    const r = await nydusify(['check', '--plain-http', '--target', `${reg.host}/src/app:1`, '--work-dir', path.join(work, 'check3')]);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^manifest: .*nydus-bootstrap/m);
    assert.match(r.stdout, /^manifest: layer 0 .* has media type application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip/m);
  });

  test('copy to another repository mounts the blobs; the copy passes check', async () => {
    const c = await nydusify(['copy', '--plain-http', '--source', `${reg.host}/nydus/app:1`, '--target', `${reg.host}/copy/app:2`, '--work-dir', path.join(work, 'copy')]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /blobs: 0 copied \(0 bytes\), 4 mounted, 0 already there/);
    const again = await nydusify(['copy', '--plain-http', '--source', `${reg.host}/nydus/app:1`, '--target', `${reg.host}/copy/app:2`, '--work-dir', path.join(work, 'copy')]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /4 already there/);
    // Into an OCI layout (streamed), and back into the registry from there.
    const layout = path.join(work, 'copied-layout');
    const toLayout = await nydusify(['copy', '--plain-http', '--source', `${reg.host}/nydus/app:1`, '--target', `oci:${layout}:x`, '--work-dir', path.join(work, 'copy')]);
    assert.equal(toLayout.code, 0, toLayout.stderr);
    assert.match(toLayout.stdout, /blobs: 4 copied/);
    const back = await nydusify(['copy', '--source', `oci:${layout}:x`, '--target', `${reg.host}/copy/fromlayout:1`, '--plain-http', '--work-dir', path.join(work, 'copy')]);
    assert.equal(back.code, 0, back.stderr);
    for (const t of ['copy/app:2', 'copy/fromlayout:1']) {
      const r = await nydusify(['check', '--plain-http', '--source', `${reg.host}/src/app:1`, '--target', `${reg.host}/${t}`, '--work-dir', path.join(work, `check-${t.replace(/\W/g, '_')}`)]);
      assert.equal(r.code, 0, `${t}: ${r.stdout}\n${r.stderr}`);
    }
    // An OCI layout target is checked with the localfs backend.
    const r = await nydusify(['check', '--plain-http', '--source', `${reg.host}/src/app:1`, '--target', `oci:${layout}:x`, '--work-dir', path.join(work, 'check-layout')]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  });

  test('mount serves the image until SIGINT, then unmounts and exits', async () => {
    const mnt = path.join(work, 'mnt');
    mounts.add(mnt);
    const child = spawn(path.join(REPO_ROOT, 'bin/nydusify'), ['mount', '--plain-http', '--target', `${reg.host}/nydus/app:1`, '--mount-path', mnt, '--work-dir', path.join(work, 'mountwork')], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const end = Date.now() + 60_000;
    while (!isMounted(mnt) || !out.includes('mounted ')) {
      assert.ok(child.exitCode === null, `nydusify mount exited early:\n${out}`);
      assert.ok(Date.now() < end, `not mounted in time:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(fs.readFileSync(path.join(mnt, 'app/etc/config.json'), 'utf8'), '{"a":1}\n');
    assert.deepEqual(fs.readFileSync(path.join(mnt, 'app/bin/tool-hardlink')), prngBytes('tool', 300_000));
    assert.equal(fs.readlinkSync(path.join(mnt, 'app/bin/link')), '../lib/lib0.so');
    assert.deepEqual(fs.readdirSync(path.join(mnt, 'app/data')), ['new.txt']);
    process.kill(child.pid as number, 'SIGINT');
    assert.equal(await exited, 0, out);
    assert.equal(isMounted(mnt), false);
    assert.match(out, /SIGINT: unmounting/);
  });
});
