/**
 * The snapshots API over gRPC without containerd, in-process: the mounts of each kind (really
 * mounted to check them), containerd's error codes, labels, List filters, Usage, Cleanup, remote
 * snapshots of Nydus layers (ALREADY_EXISTS, then found by containerd's filter), and metadata that
 * survives a restart on the same root.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nullLogger } from '../../src/util/logger.js';
import { ImageResolver } from '../../src/snapshotter/image-resolver.js';
import { DaemonManager } from '../../src/snapshotter/daemon-manager.js';
import { NydusSnapshotter } from '../../src/snapshotter/snapshotter.js';
import { serveSnapshotter, type SnapshotterServer } from '../../src/snapshotter/grpc-server.js';
import { DEFAULT_NYDUSD_TEMPLATE } from '../../src/snapshotter/nydusd-config.js';
import { REPO_ROOT, cleanupTempDir, isMounted, runOk, tempDir, umount } from '../helpers/mounts.js';
import { connectSnapshots, statusOf, type MountMessage, type SnapshotsClient } from './snapshots-client.js';
import { startRegistry } from '../helpers/registry.js';
import { buildOciImage, pushImage } from '../helpers/oci-image.js';
import { runCli } from '../helpers/mounts.js';
import { RegistryClient } from '../../src/registry/registry-client.js';

const REF = 'containerd.io/snapshot.ref';
const chain = (c: string): string => `sha256:${c.repeat(64)}`;

interface Running { server: SnapshotterServer; snapshotter: NydusSnapshotter; resolver: ImageResolver; daemons: DaemonManager }

async function startInProcess(root: string, sock: string): Promise<Running> {
  const resolver = new ImageResolver({ plainHttp: true, insecure: false, dockerConfigPath: undefined, platform: { os: 'linux', architecture: 'amd64' } });
  const daemons = new DaemonManager({ dir: path.join(root, 'nydusd'), nydusdPath: path.join(REPO_ROOT, 'bin/nydusd'), logLevel: 'warn', id: 'test', logger: nullLogger });
  const snapshotter = await NydusSnapshotter.open({ root, resolver, daemons, nydusdTemplate: DEFAULT_NYDUSD_TEMPLATE, logger: nullLogger });
  const server = await serveSnapshotter(sock, snapshotter, nullLogger);
  return { server, snapshotter, resolver, daemons };
}

async function stopInProcess(r: Running | undefined): Promise<void> {
  if (!r) return;
  await r.server.close();
  await r.snapshotter.close();
  await r.resolver.close();
  await r.daemons.close({ stopDaemon: true });
}

describe('snapshots API over gRPC', () => {
  let work: string;
  let root: string;
  let sock: string;
  let running: Running | undefined;
  let client: SnapshotsClient;
  const mounted: string[] = [];

  /** Mount what the snapshotter returned at a fresh directory, as containerd would. */
  async function mountAt(ms: MountMessage[], name: string): Promise<string> {
    const m = ms[0];
    assert.ok(m && ms.length === 1);
    const dir = path.join(work, 'mnt', name);
    fs.mkdirSync(dir, { recursive: true });
    const opts = m.type === 'bind' ? ['bind', ...m.options.filter((o) => o !== 'rbind')] : m.options;
    await runOk('mount', ['-t', m.type === 'bind' ? 'none' : m.type, '-o', opts.join(','), m.source, dir]);
    mounted.push(dir);
    if (m.type === 'bind' && m.options.includes('ro')) await runOk('mount', ['-o', 'remount,bind,ro', dir]);
    return dir;
  }

  before(async () => {
    work = await tempDir(undefined, 'snap-grpc-');
    root = path.join(work, 'root');
    fs.mkdirSync(root);
    sock = path.join(work, 'snap.sock');
    running = await startInProcess(root, sock);
    client = connectSnapshots(sock);
  });

  after(async () => {
    client?.close();
    for (const m of mounted.reverse()) if (isMounted(m)) await umount(m);
    await stopInProcess(running);
    await cleanupTempDir(work);
  });

  test('Prepare, Commit and View give containerd overlayfs mounts that work', async () => {
    const first = await client.prepare('default/1/extract-a', '');
    assert.equal(first[0]?.type, 'bind');
    assert.deepEqual(first[0]?.options, ['rw', 'rbind']);
    const a = await mountAt(first, 'a');
    fs.writeFileSync(path.join(a, 'base.txt'), 'base\n');
    fs.mkdirSync(path.join(a, 'etc'));
    fs.writeFileSync(path.join(a, 'etc/conf'), 'one\n');
    await umount(a);
    await client.commit('default/2/L1', 'default/1/extract-a', { [REF]: chain('1') });

    const second = await client.prepare('default/3/extract-b', 'default/2/L1');
    assert.equal(second[0]?.type, 'overlay');
    const opts = second[0]?.options ?? [];
    assert.ok(opts.some((o) => o.startsWith('upperdir=')) && opts.some((o) => o.startsWith('workdir=')) && opts.some((o) => o.startsWith('lowerdir=')), opts.join(','));
    const b = await mountAt(second, 'b');
    assert.equal(fs.readFileSync(path.join(b, 'base.txt'), 'utf8'), 'base\n');
    fs.writeFileSync(path.join(b, 'etc/conf'), 'two\n');
    fs.rmSync(path.join(b, 'base.txt'));
    await umount(b);
    await client.commit('default/4/L2', 'default/3/extract-b');

    const one = await client.view('default/5/view-1', 'default/2/L1');
    assert.equal(one[0]?.type, 'bind');
    assert.deepEqual(one[0]?.options, ['ro', 'rbind']);
    const two = await client.view('default/6/view-2', 'default/4/L2');
    assert.equal(two[0]?.type, 'overlay');
    assert.ok(!(two[0]?.options ?? []).some((o) => o.startsWith('upperdir=')), 'a view has no upper dir');
    const v = await mountAt(two, 'v');
    assert.equal(fs.readFileSync(path.join(v, 'etc/conf'), 'utf8'), 'two\n');
    assert.equal(fs.existsSync(path.join(v, 'base.txt')), false, 'the deletion (whiteout) of the upper layer hides the file');
    assert.throws(() => fs.writeFileSync(path.join(v, 'x'), 'x'), /EROFS|read-only/i);
    await umount(v);
    assert.deepEqual(await client.mounts('default/6/view-2'), two, 'Mounts answers what View did');

    const st = await client.stat('default/4/L2');
    assert.equal(st.kind, 'COMMITTED');
    assert.equal(st.parent, 'default/2/L1');
    assert.ok(Number(st.created_at.seconds) > 1_600_000_000);
    const u = await client.usage('default/2/L1');
    assert.ok(u.size > 0 && u.inodes >= 4, JSON.stringify(u));
    for (const k of ['default/5/view-1', 'default/6/view-2']) await client.remove(k);
  });

  test('errors carry the gRPC codes containerd maps back to its error classes', async () => {
    assert.equal(await statusOf(client.stat('nope')), 'NOT_FOUND');
    assert.equal(await statusOf(client.prepare('default/7/x', 'nope')), 'NOT_FOUND');
    await client.prepare('default/8/active', '');
    assert.equal(await statusOf(client.prepare('default/8/active', '')), 'ALREADY_EXISTS');
    assert.equal(await statusOf(client.prepare('default/9/child', 'default/8/active')), 'INVALID_ARGUMENT', 'the parent must be committed');
    assert.equal(await statusOf(client.mounts('default/2/L1')), 'FAILED_PRECONDITION', 'a committed snapshot has no mounts');
    assert.equal(await statusOf(client.commit('default/2/L1', 'default/8/active')), 'ALREADY_EXISTS');
    assert.equal(await statusOf(client.remove('default/2/L1')), 'FAILED_PRECONDITION', 'L2 builds on it');
    assert.equal(await statusOf(client.update({ name: 'default/2/L1', labels: {} }, ['kind'])), 'INVALID_ARGUMENT');
    assert.equal(await statusOf(client.list(['name=="unterminated'])), 'INVALID_ARGUMENT');
    await client.remove('default/8/active');
  });

  test('Update and List handle labels and containerd filters', async () => {
    const u = await client.update({ name: 'default/4/L2', labels: { 'containerd.io/gc.root': 'x', other: 'y' } }, ['labels.containerd.io/gc.root']);
    assert.deepEqual(u.labels, { 'containerd.io/gc.root': 'x' });
    const all = await client.list();
    assert.deepEqual(all.map((i) => i.name).sort(), ['default/2/L1', 'default/4/L2']);
    const f = await client.list([`labels."${REF}"==${chain('1')},parent==""`]);
    assert.deepEqual(f.map((i) => i.name), ['default/2/L1']);
    assert.deepEqual((await client.list(['kind==active'])).map((i) => i.name), []);
  });

  test('Prepare of a Nydus data layer makes a committed remote snapshot and answers ALREADY_EXISTS', async () => {
    const labels = {
      [REF]: chain('a'), 'containerd.io/snapshot/nydus-blob': 'true',
      'containerd.io/snapshot/remote/stargz.reference': '127.0.0.1:1/nydus/app:1',
      'containerd.io/snapshot/remote/stargz.digest': chain('d'), 'containerd.io/snapshot/remote/urls': '',
    };
    assert.equal(await statusOf(client.prepare('default/10/extract-n sha256:a', 'default/4/L2', labels)), 'ALREADY_EXISTS');
    // What containerd does next (metadata/snapshot.go): find the target by label and parent.
    const found = await client.list([`labels."${REF}"==${chain('a')},parent=="default/4/L2"`]);
    assert.equal(found.length, 1);
    assert.equal(found[0]?.kind, 'COMMITTED');
    assert.equal(found[0]?.labels['containerd.io/snapshot/nydus-blob'], 'true');
    assert.equal(found[0]?.labels['containerd.io/snapshot/remote/urls'], undefined, 'empty labels are not kept');
    assert.equal(await statusOf(client.stat('default/10/extract-n sha256:a')), 'NOT_FOUND', 'no active snapshot was made');
    assert.equal(await statusOf(client.prepare('default/11/extract-m sha256:a', 'default/4/L2', labels)), 'ALREADY_EXISTS');
    assert.equal((await client.list([`labels."${REF}"==${chain('a')}`])).length, 1, 'a second Prepare reuses the remote snapshot');
    // A layer of an image the snapshotter cannot reach, without a Nydus label: a plain layer.
    const plain = await client.prepare('default/12/extract-p', 'default/4/L2', { [REF]: chain('b'), 'containerd.io/snapshot/remote/stargz.reference': '127.0.0.1:1/oci/app:1', 'containerd.io/snapshot/remote/stargz.digest': chain('e') });
    assert.equal(plain[0]?.type, 'overlay');
    await client.remove('default/12/extract-p');
    await client.remove(found[0]?.name ?? '');
  });

  test('Cleanup removes directories no snapshot owns; metadata survives a restart', async () => {
    const orphan = path.join(root, 'snapshots', '999');
    fs.mkdirSync(path.join(orphan, 'fs'), { recursive: true });
    const temp = path.join(root, 'snapshots', 'new-123');
    fs.mkdirSync(temp);
    await client.cleanup();
    assert.equal(fs.existsSync(orphan), false);
    assert.equal(fs.existsSync(temp), false);
    const l1 = await client.stat('default/2/L1');
    assert.ok(fs.existsSync(path.join(root, 'snapshots', '1', 'fs', 'base.txt')), 'owned directories stay');

    client.close();
    await stopInProcess(running);
    running = undefined;
    running = await startInProcess(root, sock);
    client = connectSnapshots(sock);
    assert.deepEqual(await client.stat('default/2/L1'), l1);
    assert.deepEqual((await client.list()).map((i) => i.name).sort(), ['default/2/L1', 'default/4/L2']);
    await client.remove('default/4/L2');
    await client.remove('default/2/L1');
    assert.deepEqual(fs.readdirSync(path.join(root, 'snapshots')), []);
  });
});

describe('pull credentials from Prepare labels (htpasswd registry, no Docker config)', () => {
  let work: string;
  let reg: Awaited<ReturnType<typeof startRegistry>>;
  let running: Running | undefined;
  let client: SnapshotsClient | undefined;
  let nydusRef: string;
  let layers: Array<{ digest: string }>;
  const mounted: string[] = [];

  before(async () => {
    work = await tempDir(undefined, 'snap-secret-');
    reg = await startRegistry({ dir: path.join(work, 'registry'), auth: { user: 'bob', pass: 'pa55' } });
    const l1 = path.join(work, 'l1');
    fs.mkdirSync(path.join(l1, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(l1, 'etc/motd'), 'from a private registry\n');
    const img = await buildOciImage({ dir: path.join(work, 'img'), layers: [l1], name: 'app' });
    await pushImage(img.ref, `${reg.host}/src/app:1`, { tlsVerify: false, creds: 'bob:pa55' });
    const cfg = path.join(work, 'docker');
    fs.mkdirSync(cfg);
    fs.writeFileSync(path.join(cfg, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('bob:pa55').toString('base64') } } }));
    nydusRef = `${reg.host}/nydus/app:1`;
    const conv = await runCli('nydusify', ['convert', '--plain-http', '--source', `${reg.host}/src/app:1`, '--target', nydusRef, '--work-dir', path.join(work, 'conv')], { env: { ...process.env, DOCKER_CONFIG: cfg }, timeoutMs: 120_000 });
    assert.equal(conv.code, 0, conv.stderr.toString());
    const rc = new RegistryClient(reg.host, { plainHttp: true, credentials: { username: 'bob', password: 'pa55' } });
    try {
      layers = (JSON.parse(Buffer.from((await rc.getManifest('nydus/app', '1')).data).toString()) as { layers: Array<{ digest: string }> }).layers;
    } finally {
      await rc.close();
    }
    const root = path.join(work, 'root');
    fs.mkdirSync(root);
    running = await startInProcess(root, path.join(work, 'snap.sock'));
    client = connectSnapshots(path.join(work, 'snap.sock'));
  });

  after(async () => {
    client?.close();
    for (const m of mounted.reverse()) if (isMounted(m)) await umount(m);
    await stopInProcess(running);
    await reg?.stop();
    await cleanupTempDir(work);
  });

  test('the pullusername / pullsecret labels fetch the bootstrap and mount the image; the secret is not shown in labels', async () => {
    const c = client as SnapshotsClient;
    assert.equal(layers.length, 2);
    const labelsFor = (k: number, marker: string, secret: string): Record<string, string> => ({
      [REF]: chain(String(k + 1)), [marker]: 'true',
      'containerd.io/snapshot/remote/stargz.reference': nydusRef, 'containerd.io/snapshot/remote/stargz.digest': (layers[k] as { digest: string }).digest,
      'containerd.io/snapshot/pullusername': 'bob', 'containerd.io/snapshot/pullsecret': secret,
    });
    assert.equal(await statusOf(c.prepare('default/1/extract-blob', '', labelsFor(0, 'containerd.io/snapshot/nydus-blob', 'pa55'))), 'ALREADY_EXISTS');
    const blob = (await c.list([`labels."${REF}"==${chain('1')}`]))[0];
    assert.ok(blob);
    // A wrong secret: the bootstrap cannot be fetched, and the message names the registry.
    const wrong = c.prepare('default/2/extract-boot', blob.name, labelsFor(1, 'containerd.io/snapshot/nydus-bootstrap', 'nope'));
    await assert.rejects(wrong, (e: unknown) => String((e as Error).message).includes(reg.host));
    assert.equal(await statusOf(c.prepare('default/3/extract-boot', blob.name, labelsFor(1, 'containerd.io/snapshot/nydus-bootstrap', 'pa55'))), 'ALREADY_EXISTS');
    const boot = (await c.list([`labels."${REF}"==${chain('2')}`]))[0];
    assert.ok(boot);
    for (const i of [blob, boot]) {
      assert.equal(i.labels['containerd.io/snapshot/pullsecret'], undefined, 'the secret is not a label');
      assert.equal(i.labels['containerd.io/snapshot/pullusername'], 'bob');
    }
    assert.equal(fs.statSync(path.join(work, 'root', 'metadata.db')).mode & 0o777, 0o600);
    // A plain layer, and labels set later, keep no secret either.
    await c.prepare('default/9/plain', '', { 'containerd.io/snapshot/pullsecret': 'pa55', keep: 'me' });
    await c.commit('default/9/committed', 'default/9/plain', { 'containerd.io/snapshot/pullsecret': 'pa55', keep: 'me' });
    const plain = await c.stat('default/9/committed');
    assert.deepEqual(plain.labels, { keep: 'me' });
    await c.remove('default/9/committed');
    // A container on top: nydusd reads the blob from the registry with the label's credentials.
    const ms = await c.prepare('default/4/ctr', boot.name);
    const m = ms[0];
    assert.ok(m && m.type === 'overlay', JSON.stringify(ms));
    const dir = path.join(work, 'rootfs');
    fs.mkdirSync(dir);
    await runOk('mount', ['-t', 'overlay', '-o', m.options.join(','), 'overlay', dir]);
    mounted.push(dir);
    assert.equal(fs.readFileSync(path.join(dir, 'etc/motd'), 'utf8'), 'from a private registry\n');
    await umount(dir);
    mounted.pop();
    await c.remove('default/4/ctr');
    await c.remove(boot.name);
    await c.remove(blob.name);
    assert.deepEqual(fs.readdirSync(path.join(work, 'root', 'snapshots')), []);
  });
});
