/**
 * bin/nydus-snapshotter under a real containerd 1.6 + runc: a busybox-static image with an
 * application tree, pushed to a registry and converted by `nydusify convert`, is pulled with
 * `ctr-remote image rpull` (only manifest and config are downloaded) and run with `ctr run`; it
 * reads files lazily through nydusd (backend metrics), writes land in the container's upper
 * directory, a second container reads from the cache; the unconverted OCI image runs through the
 * same snapshotter beside it; a snapshotter restart does not break a running container; with
 * `"fs_driver": "erofs"` in the nydusd template the image is a kernel EROFS mount over nydusd's blob files,
 * and removing it leaves no mount and no loop device behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { apiRequest } from '../../src/api/api-client.js';
import { DEFAULT_NYDUSD_TEMPLATE } from '../../src/snapshotter/nydusd-config.js';
import { REPO_ROOT, cleanupTempDir, run, runCli, tempDir } from '../helpers/mounts.js';
import { buildOciImage, busyboxRootfs, pushImage } from '../helpers/oci-image.js';
import { startRegistry, type StartedRegistry } from '../helpers/registry.js';
import { prngBytes } from '../helpers/make-tree.js';
import { connectSnapshots, statusOf } from './snapshots-client.js';
import {
  mountsUnder, startContainerd, startNydusSnapshotter, stopNydusd,
  type StartedContainerd, type StartedSnapshotter,
} from '../helpers/containerd.js';

const APPLETS = ['sh', 'ls', 'cat', 'echo', 'sha256sum', 'sleep', 'wc', 'head', 'mkdir', 'true'];
const BIG = 16 << 20;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface BackendMetrics { read_count: number; read_amount_total: number }

/** Mounts at or under `dir` as [mountpoint, fstype, source] (from /proc/self/mountinfo). */
function mountsWithType(dir: string): Array<[string, string, string]> {
  const real = fs.realpathSync(dir);
  const out: Array<[string, string, string]> = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    const mp = f[4];
    if (sep < 0 || mp === undefined || !(mp === real || mp.startsWith(`${real}/`))) continue;
    out.push([mp, f[sep + 1] ?? '', f[sep + 2] ?? '']);
  }
  return out;
}

describe('nydus-snapshotter with containerd', { timeout: 300_000 }, () => {
  let work: string;
  let reg: StartedRegistry | undefined;
  let cd: StartedContainerd | undefined;
  let sn: StartedSnapshotter | undefined;
  let sroot: string;
  let ssock: string;
  let appDir: string;
  let nydusRef: string;
  let ociRef: string;
  let blobBytes = 0;
  let nydusLayers: string[] = [];
  let ociLayers: string[] = [];
  let ociLayout: string;

  const snapArgs = ['--plain-http'];
  let dockerConfig: string;
  const snapEnv = (): NodeJS.ProcessEnv => ({ ...process.env, DOCKER_CONFIG: dockerConfig });

  async function ctr(args: string[]): Promise<string> {
    return (cd as StartedContainerd).ctrOk(args);
  }

  /** `ctr run` with this containerd's runc root and the nydus snapshotter. */
  function runArgs(image: string, id: string, cmd: string[], o: { rm?: boolean; detach?: boolean } = {}): string[] {
    return ['run', ...(o.rm ? ['--rm'] : []), ...(o.detach ? ['-d'] : []), '--runc-root', (cd as StartedContainerd).runcRoot, '--snapshotter', 'nydus', image, id, ...cmd];
  }

  /** The image mounts nydusd serves (its backend collection). */
  async function served(): Promise<string[]> {
    const r = await apiRequest(path.join(sroot, 'nydusd', 'api.sock'), 'GET', '/api/v1/daemon');
    return Object.keys((r.body as { backend_collection: Record<string, unknown> }).backend_collection);
  }

  /**
   * Wait until no image is mounted (nydusd serves none, the kernel lists none). containerd
   * removes a container's snapshot from its own metadata at once and from the snapshotter in a
   * garbage collection: run one.
   */
  async function untilNothingServed(): Promise<void> {
    await (cd as StartedContainerd).gc();
    const end = Date.now() + 15_000;
    while ((await served()).length > 0 || mountsUnder([path.join(sroot, 'mnt')]).length > 0) {
      assert.ok(Date.now() < end, `still mounted: ${(await served()).join(', ')} ${mountsUnder([path.join(sroot, 'mnt')]).join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function backendMetrics(mountpoint: string): Promise<BackendMetrics> {
    const r = await apiRequest(path.join(sroot, 'nydusd', 'api.sock'), 'GET', `/api/v1/metrics/backend?id=${encodeURIComponent(mountpoint)}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as BackendMetrics;
  }

  /** The upper directory of container `id`'s snapshot, from `ctr snapshots mounts`. */
  async function upperDirOf(id: string): Promise<string> {
    const out = await ctr(['snapshots', '--snapshotter', 'nydus', 'mounts', '/rootfs', id]);
    const m = /upperdir=([^,\s]+)/.exec(out);
    assert.ok(m?.[1], out);
    return m[1];
  }

  /**
   * Wait until containerd reaches a restarted snapshotter: its proxy connection failed while the
   * socket was gone and is dialled again after a backoff, failing calls until then. `snapshots ls`
   * reads only containerd's metadata; a Prepare (removed again) reaches the snapshotter.
   */
  async function untilSnapshotterReached(): Promise<void> {
    const end = Date.now() + 10_000;
    for (let k = 0; ; k++) {
      const probe = await (cd as StartedContainerd).ctr(['snapshots', '--snapshotter', 'nydus', 'prepare', `probe-${k}`]);
      if (probe.code === 0) {
        await ctr(['snapshots', '--snapshotter', 'nydus', 'rm', `probe-${k}`]);
        return;
      }
      assert.ok(Date.now() < end, `containerd does not reach the restarted snapshotter: ${probe.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function killAndRemove(ids: string[]): Promise<void> {
    for (const id of ids) await (cd as StartedContainerd).ctr(['tasks', 'kill', '-s', 'SIGKILL', id]);
    for (const id of ids) {
      for (let i = 0; i < 100; i++) {
        const r = await (cd as StartedContainerd).ctr(['tasks', 'delete', id]);
        if (r.code === 0 || /not found/.test(r.stderr)) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      await ctr(['containers', 'rm', id]);
    }
  }

  before(async () => {
    work = await tempDir(undefined, 'snap-ctrd-');
    reg = await startRegistry({ dir: path.join(work, 'registry') });
    const base = busyboxRootfs(path.join(work, 'l1'), APPLETS);
    appDir = path.join(work, 'l2');
    fs.mkdirSync(path.join(appDir, 'app', 'data'), { recursive: true });
    for (const d of ['email', 'json', 'asyncio', 'http']) execFileSync('cp', ['-a', `/usr/lib/python3.11/${d}`, path.join(appDir, 'app', d)]);
    fs.writeFileSync(path.join(appDir, 'app', 'data', 'big.bin'), prngBytes('big', BIG));
    const img = await buildOciImage({ dir: path.join(work, 'img'), layers: [base, appDir], name: 'app', cmd: ['/bin/sh'] });
    ociRef = `${reg.host}/src/app:1`;
    nydusRef = `${reg.host}/nydus/app:1`;
    await pushImage(img.ref, ociRef, { tlsVerify: false });
    const conv = await runCli('nydusify', ['convert', '--plain-http', '--source', ociRef, '--target', nydusRef, '--work-dir', path.join(work, 'conv')], { timeoutMs: 180_000 });
    assert.equal(conv.code, 0, conv.stderr);
    ociLayout = img.ref;
    const rawManifest = (ref: string): { layers: Array<{ digest: string; size: number; annotations?: Record<string, string> }> } =>
      JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]).toString());
    const manifest = rawManifest(nydusRef);
    nydusLayers = manifest.layers.map((l) => l.digest);
    ociLayers = rawManifest(ociRef).layers.map((l) => l.digest);
    blobBytes = manifest.layers.filter((l) => l.annotations?.['containerd.io/snapshot/nydus-blob'] === 'true').reduce((n, l) => n + l.size, 0);
    assert.ok(blobBytes > BIG, `blob layers hold ${blobBytes} bytes`);
    sroot = path.join(work, 'snapshotter');
    ssock = path.join(work, 'snapshotter.sock');
    dockerConfig = path.join(work, 'docker');
    fs.mkdirSync(dockerConfig);
    sn = await startNydusSnapshotter({ root: sroot, address: ssock, args: snapArgs, env: snapEnv() });
    cd = await startContainerd({ dir: path.join(work, 'containerd'), snapshotters: { nydus: ssock }, cleanupDirs: [sroot] });
  });

  after(async () => {
    await cd?.stop();
    await sn?.stop();
    await stopNydusd(sroot);
    await reg?.stop();
    await cleanupTempDir(work);
  });

  test('Nydus layers are recognised from the manifest when labels carry only the image and layer (CRI labels)', async () => {
    const client = connectSnapshots(ssock);
    const REF = 'containerd.io/snapshot.ref';
    const cri = (image: string, layer: string, chainId: string): Record<string, string> =>
      ({ [REF]: chainId, 'containerd.io/snapshot/cri.image-ref': image, 'containerd.io/snapshot/cri.layer-digest': layer });
    const made: string[] = [];
    try {
      let parent = '';
      for (const [k, layer] of nydusLayers.entries()) {
        const target = `sha256:${String(k).repeat(64)}`;
        assert.equal(await statusOf(client.prepare(`test/${k}/extract-${k} ${target}`, parent, cri(nydusRef, layer as string, target))), 'ALREADY_EXISTS', `layer ${k}`);
        const [info] = await client.list([`labels."${REF}"==${target},parent=="${parent}"`]);
        assert.ok(info, `remote snapshot of layer ${k}`);
        made.unshift(info.name);
        parent = info.name;
      }
      // A view over the bootstrap is the image mounted by nydusd.
      const [view] = await client.view('test/9/view', parent);
      made.unshift('test/9/view');
      assert.equal(view?.type, 'bind');
      assert.ok(view?.source.startsWith(path.join(sroot, 'mnt')), view?.source);
      assert.deepEqual(fs.readFileSync(path.join(view?.source as string, 'app/json/decoder.py')), fs.readFileSync(path.join(appDir, 'app/json/decoder.py')));
      // An OCI layer is prepared as a plain active snapshot.
      const plain = await client.prepare('test/10/extract-oci', '', cri(ociRef, ociLayers[0] as string, `sha256:${'f'.repeat(64)}`));
      assert.equal(plain[0]?.type, 'bind');
      await client.remove('test/10/extract-oci');
    } finally {
      for (const n of made) await client.remove(n);
      client.close();
    }
    assert.deepEqual(await served(), [], 'the view was the image\'s last user');
  });

  test('a Nydus image runs lazily: only manifest and config pulled, chunks read on demand, writes in the upper dir, a second container reads from the cache', async () => {
    const pull = await (cd as StartedContainerd).ctrRemote(['image', 'rpull', '--plain-http', '--snapshotter', 'nydus', nydusRef]);
    assert.equal(pull.code, 0, pull.stderr);
    // containerd's content store holds the manifest and the config, not one layer.
    const content = (await ctr(['content', 'ls', '-q'])).split('\n').filter(Boolean);
    assert.equal(content.length, 2, content.join('\n'));
    const chains = (await ctr(['snapshots', '--snapshotter', 'nydus', 'ls'])).split('\n').filter((l) => l.startsWith('sha256:'));
    assert.equal(chains.length, 3, 'two blob layers and the bootstrap');

    const want = sha256(fs.readFileSync(path.join(appDir, 'app/json/decoder.py')));
    const out = await ctr(runArgs(nydusRef, 'c1', ['sh', '-c', 'sha256sum /app/json/decoder.py; ls /app; echo written >/app/new.txt; mkdir /made']));
    assert.match(out, new RegExp(`^${want}  /app/json/decoder.py$`, 'm'));
    assert.match(out, /^asyncio\ndata\nemail\nhttp\njson$/m);

    // The snapshotter kept c1's start-up trace once its reads went quiet: a prefetch list.
    let trace = '';
    for (let k = 0; k < 100 && !trace.includes('/app/json/decoder.py'); k++) {
      const t = await run(path.join(REPO_ROOT, 'bin/nydus-snapshotter'), ['trace', '--root', sroot, nydusRef]);
      trace = t.stdout.toString();
      if (!trace.includes('/app/json/decoder.py')) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(trace.split('\n').includes('/app/json/decoder.py'), `trace of c1: ${trace}`);
    const none = await run(path.join(REPO_ROOT, 'bin/nydus-snapshotter'), ['trace', '--root', sroot, 'example.invalid/none:1']);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr.toString(), /Cannot find a start-up trace of example\.invalid\/none:1/);

    // The container still exists (no --rm): its image stays mounted, its writes are in its upper dir.
    const mnt = (await served())[0];
    assert.ok(mnt?.startsWith(path.join(sroot, 'mnt')), `nydusd serves ${mnt}`);
    const upper = await upperDirOf('c1');
    assert.ok(upper.startsWith(path.join(sroot, 'snapshots')), upper);
    assert.equal(fs.readFileSync(path.join(upper, 'app/new.txt'), 'utf8'), 'written\n');
    assert.ok(fs.statSync(path.join(upper, 'made')).isDirectory());
    assert.equal(fs.existsSync(path.join(upper, 'app/json/decoder.py')), false, 'files only read are not copied up');

    const m1 = await backendMetrics(mnt as string);
    assert.ok(m1.read_count > 0, 'nydusd read chunks from the registry');
    assert.ok(m1.read_amount_total < blobBytes / 2, `read ${m1.read_amount_total} of ${blobBytes} blob bytes`);

    const again = await ctr(runArgs(nydusRef, 'c2', ['sha256sum', '/app/json/decoder.py'], { rm: true }));
    assert.match(again, new RegExp(`^${want}  /app/json/decoder.py$`, 'm'));
    const m2 = await backendMetrics(mnt as string);
    assert.equal(m2.read_count, m1.read_count, 'the second container read nothing from the registry');
    await ctr(['containers', 'rm', 'c1']);
    await untilNothingServed();

    // Mounted again for a new container, the image reads what earlier containers read from the shared blob cache.
    await ctr(runArgs(nydusRef, 'c3', ['sha256sum', '/app/json/decoder.py']));
    const [again2] = await served();
    assert.equal((await backendMetrics(again2 as string)).read_count, 0, 'a new mount reads cached chunks from disk');
    await ctr(['containers', 'rm', 'c3']);
    await untilNothingServed();
  });

  test('the OCI image runs through the same snapshotter, beside a Nydus container', async () => {
    const pull = await (cd as StartedContainerd).ctr(['images', 'pull', '--plain-http', '--snapshotter', 'nydus', ociRef]);
    assert.equal(pull.code, 0, pull.stderr);
    await ctr(runArgs(ociRef, 'oci1', ['sleep', '600'], { detach: true }));
    await ctr(runArgs(nydusRef, 'nydus1', ['sleep', '600'], { detach: true }));
    try {
      const want = fs.readFileSync(path.join(appDir, 'app/email/parser.py'), 'utf8');
      for (const id of ['oci1', 'nydus1']) {
        const got = await ctr(['tasks', 'exec', '--exec-id', `cat-${id}`, id, 'cat', '/app/email/parser.py']);
        assert.equal(got, want, id);
      }
      const rootfs = (id: string): string => path.join((cd as StartedContainerd).state, 'io.containerd.runtime.v2.task', 'default', id, 'rootfs');
      const opts = (mp: string): string => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === mp).join('\n');
      assert.match(opts(rootfs('nydus1')), new RegExp(`lowerdir=${path.join(sroot, 'mnt')}/\\d+`), 'the Nydus container runs on the nydusd mount');
      assert.match(opts(rootfs('oci1')), new RegExp(`lowerdir=${path.join(sroot, 'snapshots')}/\\d+/fs:`), 'the OCI container on extracted layers');
    } finally {
      await killAndRemove(['oci1', 'nydus1']);
    }
    await ctr(['images', 'rm', '--sync', ociRef]);
    assert.equal((await ctr(['snapshots', '--snapshotter', 'nydus', 'ls'])).split('\n').filter((l) => l.startsWith('sha256:')).length, 3, 'the OCI layers are gone, the Nydus ones stay');
  });

  test('when nydusd dies, the snapshotter starts it again and mounts the image for new containers', async () => {
    await ctr(runArgs(nydusRef, 'd1', ['true']));
    try {
      const first = (sn as StartedSnapshotter).nydusdPid();
      assert.ok(first !== undefined);
      const [mnt] = await served();
      process.kill(first, 'SIGKILL');
      const end = Date.now() + 20_000;
      for (;;) {
        const now = (sn as StartedSnapshotter).nydusdPid();
        if (now !== undefined && now !== first && (await served().catch((): string[] => [])).includes(mnt as string)) break;
        assert.ok(Date.now() < end, `nydusd not back with the mount:\n${(sn as StartedSnapshotter).log().slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match((sn as StartedSnapshotter).log(), /nydusd died/);
      const want = sha256(fs.readFileSync(path.join(appDir, 'app/json/scanner.py')));
      assert.match(await ctr(runArgs(nydusRef, 'd2', ['sha256sum', '/app/json/scanner.py'], { rm: true })), new RegExp(`^${want} `));
    } finally {
      await ctr(['containers', 'rm', 'd1']);
    }
    await untilNothingServed();
  });

  test('restarting the snapshotter keeps a running container working; Remove unmounts and clears the blob cache afterwards', async () => {
    await ctr(runArgs(nydusRef, 'r1', ['sleep', '600'], { detach: true }));
    let stopped = false;
    try {
      const nydusd = (sn as StartedSnapshotter).nydusdPid();
      assert.ok(nydusd !== undefined);
      const [mnt] = await served();
      await (sn as StartedSnapshotter).stop();
      sn = undefined;
      assert.ok((() => { try { process.kill(nydusd, 0); return true; } catch { return false; } })(), 'nydusd outlives the snapshotter');
      const during = await ctr(['tasks', 'exec', '--exec-id', 'e1', 'r1', 'head', '-c', '64', '/app/http/client.py']);
      assert.equal(during, fs.readFileSync(path.join(appDir, 'app/http/client.py'), 'utf8').slice(0, 64), 'the container reads new files without a snapshotter');
      sn = await startNydusSnapshotter({ root: sroot, address: ssock, args: snapArgs, env: snapEnv() });
      await untilSnapshotterReached();
      assert.equal((sn as StartedSnapshotter).nydusdPid(), nydusd, 'the new snapshotter uses the same nydusd');
      assert.deepEqual(await served(), [mnt]);
      assert.match((sn as StartedSnapshotter).log(), /attached to the running nydusd/);
      const want = sha256(fs.readFileSync(path.join(appDir, 'app/asyncio/tasks.py')));
      assert.match(await ctr(['tasks', 'exec', '--exec-id', 'e2', 'r1', 'sha256sum', '/app/asyncio/tasks.py']), new RegExp(`^${want} `));
      const ls = await ctr(['snapshots', '--snapshotter', 'nydus', 'ls']);
      assert.equal(ls.split('\n').filter((l) => l.startsWith('sha256:')).length, 3, ls);
      assert.match(ls, /^r1 +sha256:\S+ +Active/m);
      await killAndRemove(['r1']);
      stopped = true;
      await untilNothingServed();
      await ctr(['images', 'rm', '--sync', nydusRef]);
      assert.equal((await ctr(['snapshots', '--snapshotter', 'nydus', 'ls'])).split('\n').filter((l) => l.startsWith('sha256:')).length, 0);
      assert.deepEqual(mountsUnder([sroot]), [], 'nothing is mounted under the snapshotter root');
      assert.deepEqual(fs.readdirSync(path.join(sroot, 'snapshots')), [], 'every snapshot directory is gone');
      assert.deepEqual(fs.readdirSync(path.join(sroot, 'cache')), [], 'the blob cache holds nothing of removed images');
      // ... and the shared nydusd holds none of those files open (their space is freed).
      const held = fs.readdirSync(`/proc/${nydusd}/fd`).map((f) => { try { return fs.readlinkSync(`/proc/${nydusd}/fd/${f}`); } catch { return ''; } });
      assert.deepEqual(held.filter((l) => l.startsWith(path.join(sroot, 'cache'))), [], 'nydusd closed the cache files of removed images');
    } finally {
      if (!stopped) await killAndRemove(['r1']).catch(() => undefined);
    }
  });

  test('registry credentials come from the Docker config for the image\'s host', async () => {
    const auth = await startRegistry({ dir: path.join(work, 'registry-auth'), auth: { user: 'tester', pass: 'secret' } });
    try {
      fs.writeFileSync(path.join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [auth.host]: { auth: Buffer.from('tester:secret').toString('base64') } } }));
      await pushImage(ociLayout, `${auth.host}/src/app:1`, { tlsVerify: false, creds: 'tester:secret' });
      const ref = `${auth.host}/nydus/app:1`;
      const conv = await runCli('nydusify', ['convert', '--plain-http', '--source', `${auth.host}/src/app:1`, '--target', ref, '--work-dir', path.join(work, 'conv-auth')], { timeoutMs: 180_000, env: { ...process.env, DOCKER_CONFIG: dockerConfig } });
      assert.equal(conv.code, 0, conv.stderr);
      const pull = await (cd as StartedContainerd).ctrRemote(['image', 'rpull', '--plain-http', '--user', 'tester:secret', '--snapshotter', 'nydus', ref]);
      assert.equal(pull.code, 0, pull.stderr);
      const want = sha256(fs.readFileSync(path.join(appDir, 'app/email/utils.py')));
      assert.match(await ctr(runArgs(ref, 'auth1', ['sha256sum', '/app/email/utils.py'], { rm: true })), new RegExp(`^${want} `));
      await ctr(['images', 'rm', '--sync', ref]);
      await untilNothingServed();
    } finally {
      await auth.stop();
    }
  });

  test('with "fs_driver": "erofs" in the nydusd template, the image is a kernel EROFS mount; removing it leaves no mount and no loop device', async () => {
    const template = path.join(work, 'nydusd-erofs.json');
    fs.writeFileSync(template, JSON.stringify({
      ...DEFAULT_NYDUSD_TEMPLATE, fs_driver: 'erofs',
      fs_prefetch: { enable: true, threads_count: 4, merging_size: 1 << 20, bandwidth_rate: 0, prefetch_all: false },
    }));
    await (sn as StartedSnapshotter).stop();
    sn = undefined;
    sn = await startNydusSnapshotter({ root: sroot, address: ssock, args: [...snapArgs, '--nydusd-config', template], env: snapEnv() });
    await untilSnapshotterReached();
    const pull = await (cd as StartedContainerd).ctrRemote(['image', 'rpull', '--plain-http', '--snapshotter', 'nydus', nydusRef]);
    assert.equal(pull.code, 0, pull.stderr);

    // A file no earlier test read, so its chunks come from the registry through the blob files.
    const want = sha256(fs.readFileSync(path.join(appDir, 'app/json/encoder.py')));
    const script = 'sha256sum /app/json/encoder.py; echo written >/app/erofs.txt; echo ready; read line; echo bye';
    // `ctr run` forwards its stdin: the container waits for its end, so it can be looked at while it runs.
    const c = spawn('ctr', ['-a', (cd as StartedContainerd).address, ...runArgs(nydusRef, 'erofs1', ['sh', '-c', script], { rm: true })], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    c.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    c.once('error', (e) => { err += e.message; });
    c.stdin.on('error', () => undefined);
    const exited = new Promise<number | null>((r) => c.once('close', (code) => r(code)));
    const stateDirs: string[] = [];
    try {
      const end = Date.now() + 20_000;
      while (!/^ready$/m.test(out)) {
        assert.ok(c.exitCode === null && Date.now() < end, `the container did not get ready:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.match(out, new RegExp(`^${want}  /app/json/encoder.py$`, 'm'));

      const image = mountsWithType(path.join(sroot, 'mnt'));
      assert.equal(image.length, 1, JSON.stringify(image));
      const [mnt, type, source] = image[0] as [string, string, string];
      assert.equal(type, 'erofs', `${mnt} is ${type}`);
      assert.deepEqual(await served(), [mnt]);
      // EROFS mounts the bootstrap file in nydusd's state dir of this mount (directly, or through a
      // loop device where the kernel cannot), where the blob files are a FUSE mount.
      const loop = /^\/dev\/(loop\d+)$/.exec(source);
      const stateDir = path.dirname(loop?.[1] ? fs.readFileSync(`/sys/block/${loop[1]}/loop/backing_file`, 'utf8').trim() : source);
      assert.match(path.basename(stateDir), /^nydusd-erofs-/);
      stateDirs.push(stateDir);
      assert.deepEqual(mountsWithType(stateDir).map(([, t]) => t), ['fuse.nydusblob']);

      const upper = await upperDirOf('erofs1');
      assert.ok(upper.startsWith(path.join(sroot, 'snapshots')), upper);
      assert.equal(fs.readFileSync(path.join(upper, 'app/erofs.txt'), 'utf8'), 'written\n');
      assert.equal(fs.existsSync(path.join(upper, 'app/json/encoder.py')), false, 'files only read are not copied up');

      c.stdin.end();
      assert.equal(await exited, 0, err);
      assert.match(out, /^bye$/m);
    } finally {
      if (c.exitCode === null && c.signalCode === null) {
        await killAndRemove(['erofs1']).catch(() => undefined);
        c.kill('SIGKILL');
        await exited;
      }
    }
    await ctr(['images', 'rm', '--sync', nydusRef]);
    await untilNothingServed();
    // nydusd answered the unmount (awaited by Remove, awaited by the collection) after undoing everything.
    // Only this mount's state dir counts: other runs on the machine may hold nydusd-erofs- loops of their own.
    const loops = (await run('losetup', ['-a'])).stdout.toString().split('\n')
      .filter((l) => l.includes('nydusd-erofs-') && stateDirs.some((d) => l.includes(d)));
    assert.deepEqual(loops, [], 'no loop device is left');
    const mounts = [...mountsWithType(sroot), ...stateDirs.filter((d) => fs.existsSync(d)).flatMap((d) => mountsWithType(d))]
      .filter(([, t]) => t === 'erofs' || t === 'fuse.nydusblob');
    assert.deepEqual(mounts, [], 'no erofs or fuse.nydusblob mount is left');
    for (const d of stateDirs) assert.equal(fs.existsSync(d), false, `${d} is removed`);
  });
});
