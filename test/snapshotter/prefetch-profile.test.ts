/**
 * bin/nydus-snapshotter and prefetch profiles on a real docker-registry 2.8 (so through the
 * referrers tag schema `sha256-<hex>`): a profile pushed with `nydusify profile push` is found
 * when the image is mounted and drives nydusd's prefetch (the listed files are in the cache before
 * anything reads them; an unlisted file still needs the registry); a per-container list in the
 * `containerd.io/nydus-prefetch` label takes precedence; bad profiles (missing paths, wrong
 * subject, garbage) neither break a pull nor a container run, and missing paths give one warning.
 * The layers are "pulled" through the snapshots gRPC API with the labels containerd's CRI passes
 * (and, last, by containerd with `ctr-remote image rpull` + `ctr run`). nydusd's background
 * streaming is off in the template, so only prefetch and reads fetch.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { apiRequest } from '../../src/api/api-client.js';
import { DEFAULT_NYDUSD_TEMPLATE } from '../../src/snapshotter/nydusd-config.js';
import { RegistryClient } from '../../src/registry/registry-client.js';
import { ARTIFACT_PREFETCH_PROFILE, EMPTY_CONFIG, referrersTag } from '../../src/nydusify/profile/profile-format.js';
import { profileTargetOf, pushProfile, removeProfiles, type ProfileTarget } from '../../src/nydusify/profile/profile-registry.js';
import { cleanupTempDir, runCli, runCliText, tempDir } from '../helpers/mounts.js';
import { buildOciImage, busyboxRootfs, pushImage } from '../helpers/oci-image.js';
import { startRegistry, type StartedRegistry } from '../helpers/registry.js';
import { prngBytes } from '../helpers/make-tree.js';
import { connectSnapshots, statusOf, type SnapshotsClient } from './snapshots-client.js';
import { startContainerd, startNydusSnapshotter, stopNydusd, type StartedContainerd, type StartedSnapshotter } from '../helpers/containerd.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const REF = 'containerd.io/snapshot.ref';
const FILE = 300_000;
/** Listed by the profile; an 8 MiB file lies between them and the label's files in the blob. */
const START = ['/app/a-start/s0.bin', '/app/a-start/s1.bin', '/app/a-start/s2.bin'];
const OTHER = ['/app/z-other/o0.bin', '/app/z-other/o1.bin', '/app/z-other/o2.bin'];

const sha = (b: Uint8Array | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface CacheMetrics { prefetch_end_time_secs: number; prefetch_end_time_millis: number; prefetch_data_amount: number }

describe('nydus-snapshotter prefetches by prefetch profiles', { timeout: 300_000 }, () => {
  let work: string;
  let reg: StartedRegistry;
  let sn: StartedSnapshotter | undefined;
  let cd: StartedContainerd | undefined;
  let sroot: string;
  let ssock: string;
  let appDir: string;
  let nydusRef: string;
  let layers: string[] = [];
  let client: RegistryClient;
  let target: ProfileTarget;
  const repo = 'nydus/app';

  const api = async (p: string): Promise<any> => {
    const r = await apiRequest(path.join(sroot, 'nydusd', 'api.sock'), 'GET', p);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  };
  const served = async (): Promise<string[]> => Object.keys((await api('/api/v1/daemon')).backend_collection);
  const reads = async (mnt: string): Promise<number> => (await api(`/api/v1/metrics/backend?id=${encodeURIComponent(mnt)}`)).read_count as number;

  /** Wait until the mount's prefetch has ended (polled). */
  async function prefetched(mnt: string): Promise<CacheMetrics> {
    const end = Date.now() + 30_000;
    for (;;) {
      const c = await api(`/api/v1/metrics/blobcache?id=${encodeURIComponent(mnt)}`) as CacheMetrics;
      if (c.prefetch_end_time_secs > 0) return c;
      assert.ok(Date.now() < end, `no prefetch on ${mnt}:\n${(sn as StartedSnapshotter).log().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Pull the image through the gRPC API the way containerd's unpacker does (remote snapshots,
   * ALREADY_EXISTS), then prepare container snapshot `key` with `labels`; returns the image's
   * nydusd mountpoint and an undo.
   */
  async function pullAndPrepare(c: SnapshotsClient, key: string, labels: Record<string, string>): Promise<{ mnt: string; undo(): Promise<void> }> {
    const made: string[] = [];
    const undo = async (): Promise<void> => { for (const n of made) await c.remove(n); };
    try {
      let parent = '';
      for (const [k, layer] of layers.entries()) {
        const chain = `sha256:${String(k).repeat(64)}`;
        const labelsOf = { [REF]: chain, 'containerd.io/snapshot/cri.image-ref': nydusRef, 'containerd.io/snapshot/cri.layer-digest': layer };
        assert.equal(await statusOf(c.prepare(`default/${k}/extract-${k} ${chain}`, parent, labelsOf)), 'ALREADY_EXISTS', `layer ${k}`);
        const [info] = await c.list([`labels."${REF}"==${chain},parent=="${parent}"`]);
        assert.ok(info);
        made.unshift(info.name);
        parent = info.name;
      }
      const mounts = await c.prepare(key, parent, labels);
      made.unshift(key);
      const lower = /lowerdir=([^:,]+)/.exec(mounts[0]?.options.join(',') ?? '')?.[1];
      assert.ok(lower?.startsWith(path.join(sroot, 'mnt')), JSON.stringify(mounts));
      return { mnt: lower as string, undo };
    } catch (e) {
      await undo().catch(() => undefined);
      throw e;
    }
  }

  const read = (mnt: string, p: string): Buffer => fs.readFileSync(path.join(mnt, p));
  const want = (p: string): Buffer => fs.readFileSync(path.join(appDir, p));

  before(async () => {
    work = await tempDir(undefined, 'snap-profile-');
    reg = await startRegistry({ dir: path.join(work, 'registry') });
    const base = busyboxRootfs(path.join(work, 'l1'), ['sh', 'cat', 'sha256sum']);
    appDir = path.join(work, 'l2');
    for (const p of [...START, ...OTHER]) {
      fs.mkdirSync(path.dirname(path.join(appDir, p)), { recursive: true });
      fs.writeFileSync(path.join(appDir, p), prngBytes(p, FILE));
    }
    fs.writeFileSync(path.join(appDir, 'app/m-big.bin'), prngBytes('big', 8 << 20));
    const img = await buildOciImage({ dir: path.join(work, 'img'), layers: [base, appDir], name: 'app', cmd: ['/bin/sh'] });
    const ociRef = `${reg.host}/src/app:1`;
    nydusRef = `${reg.host}/${repo}:1`;
    await pushImage(img.ref, ociRef, { tlsVerify: false });
    const conv = await runCli('nydusify', ['convert', '--plain-http', '--source', ociRef, '--target', nydusRef, '--work-dir', path.join(work, 'conv')], { timeoutMs: 180_000 });
    assert.equal(conv.code, 0, conv.stderr.toString());
    client = new RegistryClient(reg.host, { plainHttp: true });
    const m = await client.getManifest(repo, '1');
    layers = (JSON.parse(Buffer.from(m.data).toString()) as { layers: Array<{ digest: string }> }).layers.map((l) => l.digest);
    target = profileTargetOf(client, repo, m.mediaType, m.digest, m.data.length);
    sroot = path.join(work, 'snapshotter');
    ssock = path.join(work, 'snapshotter.sock');
    const template = path.join(work, 'nydusd.json');
    fs.writeFileSync(template, JSON.stringify({ ...DEFAULT_NYDUSD_TEMPLATE, cold_read: { background_stream: false } }));
    sn = await startNydusSnapshotter({ root: sroot, address: ssock, args: ['--plain-http', '--nydusd-config', template] });
  });

  after(async () => {
    await cd?.stop();
    await sn?.stop();
    await stopNydusd(sroot);
    await client?.close();
    await reg?.stop();
    await cleanupTempDir(work);
  });

  test('a profile pushed with nydusify is found through the referrers tag and prefetched before anything reads', async () => {
    const push = await runCliText('nydusify', ['profile', 'push', '--plain-http', '--target', nydusRef, '--prefetch-files', '-'], { input: `${START.join('\n')}\n` });
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.stdout, new RegExp(`referrers tag ${referrersTag(target.subject.digest)}`));
    const c = connectSnapshots(ssock);
    try {
      const { mnt, undo } = await pullAndPrepare(c, 'default/10/c1', {});
      try {
        const m = await prefetched(mnt);
        assert.ok(m.prefetch_data_amount >= START.length * FILE, `prefetched ${m.prefetch_data_amount} bytes`);
        const before = await reads(mnt);
        assert.ok(before > 0, 'the prefetch read from the registry');
        for (const p of START) assert.deepEqual(read(mnt, p), want(p), p);
        assert.equal(await reads(mnt), before, 'the listed files were read from the cache only');
        // An unlisted file was not prefetched: it needs the registry.
        assert.deepEqual(read(mnt, OTHER[0] as string), want(OTHER[0] as string));
        assert.ok(await reads(mnt) > before, 'an unlisted file is fetched when read');
        assert.match((sn as StartedSnapshotter).log(), /prefetching by list .*"from":"profile sha256:[0-9a-f]{64}","paths":3/);
        // The pull already had nydusd warm the cache with the profile, before the container's mount.
        assert.match((sn as StartedSnapshotter).log(), /cache warming started .*"paths":3/);
        const warmed = fs.readFileSync(path.join(sroot, 'nydusd', 'nydusd.log'), 'utf8');
        assert.match(warmed, /cache warmed .*"files":3/);
      } finally {
        await undo();
      }
      assert.deepEqual(await served(), [], 'the image is unmounted');
    } finally {
      c.close();
    }
  });

  test('the containerd.io/nydus-prefetch label of the container snapshot takes precedence over the profile', async () => {
    const c = connectSnapshots(ssock);
    try {
      // The earlier pull was removed whole, so the blob cache is empty again.
      const { mnt, undo } = await pullAndPrepare(c, 'default/20/c2', { 'containerd.io/nydus-prefetch': JSON.stringify(OTHER.slice(0, 2)) });
      try {
        await prefetched(mnt);
        const before = await reads(mnt);
        for (const p of OTHER.slice(0, 2)) assert.deepEqual(read(mnt, p), want(p), p);
        assert.equal(await reads(mnt), before, 'the label\'s files came from the cache');
        // (The profile's files may be in the cache too: the pull warmed it with the profile before
        // the container's label was known.)
        assert.match((sn as StartedSnapshotter).log(), /prefetching by list .*"from":"label","paths":2/);
      } finally {
        await undo();
      }
    } finally {
      c.close();
    }
  });

  test('bad profiles (missing paths, wrong subject, garbage) do not break a pull or a container run; missing paths give one warning', async () => {
    assert.equal((await removeProfiles(target, { all: true })).removed.length, 1);
    // The newest usable profile names one real file among seven missing ones.
    const missing = ['/nope/1', '/nope/2', '/nope/3', '/nope/4', '/nope/5', '/nope/6', '/nope/7'];
    await pushProfile(target, [missing[0] as string, START[1] as string, ...missing.slice(1)], { created: new Date('2024-01-01T00:00:00Z') });
    // Newer and unusable: a wrong subject and a garbage manifest, listed in the referrers tag.
    const tag = referrersTag(target.subject.digest);
    const other = await client.getManifest('src/app', '1');
    const list = new TextEncoder().encode(`${START[0]}\n`);
    await client.pushBlob(repo, sha(list), list.length, list);
    const bad: string[] = [];
    for (const [k, extra] of [{ subject: { mediaType: OCI_MANIFEST, digest: other.digest, size: other.data.length } }, { subject: 'garbage', layers: [] }].entries()) {
      const created = `2024-06-0${k + 1}T00:00:00Z`;
      const data = new TextEncoder().encode(JSON.stringify({
        schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: ARTIFACT_PREFETCH_PROFILE, config: EMPTY_CONFIG,
        layers: [{ mediaType: 'text/plain', digest: sha(list), size: list.length }], annotations: { 'org.opencontainers.image.created': created }, ...extra,
      }));
      bad.push(await client.putManifest(repo, sha(data), OCI_MANIFEST, data));
      const idx = JSON.parse(Buffer.from((await client.getManifest(repo, tag, [OCI_INDEX])).data).toString());
      idx.manifests.push({ mediaType: OCI_MANIFEST, digest: sha(data), size: data.length, artifactType: ARTIFACT_PREFETCH_PROFILE, annotations: { 'org.opencontainers.image.created': created } });
      await client.putManifest(repo, tag, OCI_INDEX, new TextEncoder().encode(JSON.stringify(idx)));
    }
    // A new snapshotter: its lookups are cached per image for its life.
    await (sn as StartedSnapshotter).stop();
    sn = await startNydusSnapshotter({ root: sroot, address: ssock, args: ['--plain-http', '--nydusd-config', path.join(work, 'nydusd.json')] });
    const nydusdLog = path.join(sroot, 'nydusd', 'nydusd.log');
    const logBefore = fs.existsSync(nydusdLog) ? fs.readFileSync(nydusdLog, 'utf8').length : 0;
    const c = connectSnapshots(ssock);
    try {
      const { mnt, undo } = await pullAndPrepare(c, 'default/30/c3', {});
      try {
        await prefetched(mnt);
        const before = await reads(mnt);
        assert.deepEqual(read(mnt, START[1] as string), want(START[1] as string));
        assert.equal(await reads(mnt), before, 'the profile\'s one real file was prefetched');
        const log = (sn as StartedSnapshotter).log();
        for (const d of bad) assert.match(log, new RegExp(`skipping prefetch profile ${d}`), 'a warning names each bad profile');
        const warned = fs.readFileSync(nydusdLog, 'utf8').slice(logBefore).split('\n').filter((l) => l.includes('prefetch files are not in the image'));
        assert.equal(warned.length, 1, warned.join('\n'));
        assert.match(warned[0] as string, /7 of 8 prefetch files .*"first":\["\/nope\/1","\/nope\/2","\/nope\/3","\/nope\/4","\/nope\/5"\]/);
      } finally {
        await undo();
      }
    } finally {
      c.close();
    }

    // The same registry state under containerd: rpull and ctr run work.
    cd = await startContainerd({ dir: path.join(work, 'containerd'), snapshotters: { nydus: ssock }, cleanupDirs: [sroot] });
    const pull = await cd.ctrRemote(['image', 'rpull', '--plain-http', '--snapshotter', 'nydus', nydusRef]);
    assert.equal(pull.code, 0, pull.stderr);
    const out = await cd.ctrOk(['run', '--rm', '--runc-root', cd.runcRoot, '--snapshotter', 'nydus', nydusRef, 'p1', 'sha256sum', START[0] as string]);
    assert.match(out, new RegExp(`^${sha(want(START[0] as string)).slice(7)}  ${START[0]}$`, 'm'));
  });
});
