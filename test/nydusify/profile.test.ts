/**
 * Prefetch profiles against a real docker-registry 2.8 (no referrers API, so the OCI 1.1 tag
 * schema fallback `sha256-<hex>` is what carries them): `nydusify profile push/ls/rm` round trip,
 * and profiles that fail a check (wrong subject, garbage manifest, list garbage or too large) are
 * skipped with a warning naming their digest; plus the format rules without a registry.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { runCli, runCliText, tempDir, cleanupTempDir } from '../helpers/mounts.js';
import { buildOciImage, pushImage } from '../helpers/oci-image.js';
import { startRegistry, type StartedRegistry } from '../helpers/registry.js';
import { RegistryClient } from '../../src/registry/registry-client.js';
import type { Logger } from '../../src/util/logger.js';
import {
  ARTIFACT_PREFETCH_PROFILE, EMPTY_CONFIG, decodePrefetchList, decodeProfileManifest, referrersTag,
} from '../../src/nydusify/profile/profile-format.js';
import { listProfiles, newestProfile, profileTargetOf, pushProfile, type ProfileTarget } from '../../src/nydusify/profile/profile-registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const sha = (b: Uint8Array | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A Logger keeping its warnings. */
function warnings(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const l: Logger & { lines: string[] } = {
    lines, debug() {}, info() {}, error() {}, warn(m) { lines.push(m); }, child() { return l; },
  };
  return l;
}

describe('prefetch profile format', () => {
  test('referrersTag() follows the distribution-spec examples', () => {
    assert.equal(referrersTag(`sha256:${'a'.repeat(64)}`), `sha256-${'a'.repeat(64)}`);
    assert.equal(referrersTag(`sha512:${'a'.repeat(128)}`), `sha512-${'a'.repeat(64)}`);
    assert.equal(
      referrersTag('test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall+truncation:alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOfCharactersToExcerciseEncodedTruncation'),
      'test-algorithm-using-algorithm-s-alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot',
    );
  });

  test('decodeProfileManifest() rejects garbage, a wrong subject and a wrong list type; decodePrefetchList() rejects non-paths', () => {
    const subject = `sha256:${'1'.repeat(64)}`;
    const d = `sha256:${'2'.repeat(64)}`;
    const good = {
      schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: ARTIFACT_PREFETCH_PROFILE, config: EMPTY_CONFIG,
      layers: [{ mediaType: 'text/plain', digest: `sha256:${'3'.repeat(64)}`, size: 10 }],
      subject: { mediaType: OCI_MANIFEST, digest: subject, size: 100 }, annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    };
    const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
    assert.equal(decodeProfileManifest(enc(good), d, subject).created, '2024-01-01T00:00:00Z');
    assert.throws(() => decodeProfileManifest(new Uint8Array([0xff, 0x00, 0x7b]), d, subject), (e: Error) => e.message.includes(d) && /not JSON/.test(e.message));
    assert.throws(() => decodeProfileManifest(enc(good), d, `sha256:${'9'.repeat(64)}`), /its subject is sha256:1+, not the image manifest sha256:9+/);
    assert.throws(() => decodeProfileManifest(enc({ ...good, layers: [{ ...good.layers[0], mediaType: 'application/octet-stream' }] }), d, subject), /media type/);
    assert.throws(() => decodeProfileManifest(enc({ ...good, layers: [{ ...good.layers[0], size: 2 << 20 }] }), d, subject), /more than 1048576/);
    assert.throws(() => decodeProfileManifest(enc({ ...good, subject: 42 }), d, subject), /no valid subject/);
    assert.deepEqual(decodePrefetchList(new TextEncoder().encode('/a\n\n /b/ \r\n/a\n'), 'x'), ['/a', '/b']);
    assert.throws(() => decodePrefetchList(new TextEncoder().encode('/a\nrelative\n'), 'list X'), /list X: line 2/);
    assert.throws(() => decodePrefetchList(new Uint8Array([0x2f, 0xc3, 0x28]), 'x'), /not UTF-8/);
  });
});

describe('nydusify profile with docker-registry (referrers tag schema)', { timeout: 180_000 }, () => {
  let work: string;
  let reg: StartedRegistry;
  let client: RegistryClient;
  let nydusRef: string;
  let ociRef: string;
  let target: ProfileTarget;

  const repo = 'nydus/app';
  /** GET a manifest or referrers path of the registry: status and parsed JSON. */
  async function get(p: string, accept = OCI_INDEX): Promise<{ status: number; body: any }> {
    const r = await fetch(`${reg.url}${p}`, { headers: { accept } });
    const text = await r.text();
    let body: unknown;
    try { body = JSON.parse(text); } catch { body = text; }
    return { status: r.status, body };
  }
  const cli = (args: string[], input?: string): ReturnType<typeof runCliText> =>
    runCliText('nydusify', ['profile', ...args, '--plain-http'], input !== undefined ? { input } : {});

  before(async () => {
    work = await tempDir(undefined, 'profile-');
    reg = await startRegistry({ dir: path.join(work, 'registry') });
    const l1 = path.join(work, 'l1');
    fs.mkdirSync(path.join(l1, 'app/lib'), { recursive: true });
    for (const n of ['a', 'b', 'c']) fs.writeFileSync(path.join(l1, `app/lib/${n}.so`), `${n}\n`.repeat(1000));
    const img = await buildOciImage({ dir: path.join(work, 'img'), layers: [l1], name: 'app' });
    ociRef = `${reg.host}/src/app:1`;
    nydusRef = `${reg.host}/${repo}:1`;
    await pushImage(img.ref, ociRef, { tlsVerify: false });
    const conv = await runCli('nydusify', ['convert', '--plain-http', '--source', ociRef, '--target', nydusRef, '--work-dir', path.join(work, 'conv')], { timeoutMs: 120_000 });
    assert.equal(conv.code, 0, conv.stderr.toString());
    client = new RegistryClient(reg.host, { plainHttp: true });
    const m = await client.getManifest(repo, '1');
    target = profileTargetOf(client, repo, m.mediaType, m.digest, m.data.length);
  });

  after(async () => {
    await client?.close();
    await reg?.stop();
    await cleanupTempDir(work);
  });

  test('push, ls and rm round trip through the sha256-<hex> referrers tag', async () => {
    const subject = target.subject.digest;
    const tag = `sha256-${subject.slice(7)}`;
    assert.equal((await get(`/v2/${repo}/referrers/${subject}`)).status, 404, 'docker-registry 2.8 has no referrers API');

    const p1 = await cli(['push', '--target', nydusRef, '--prefetch-files', '-'], '/app/lib/b.so\n/app/lib/a.so\n');
    assert.equal(p1.code, 0, p1.stderr);
    const d1 = /pushed prefetch profile (sha256:[0-9a-f]{64}) \(2 paths\)/.exec(p1.stdout)?.[1];
    assert.ok(d1, p1.stdout);
    assert.match(p1.stdout, new RegExp(`referrers tag ${tag}`));

    // The fallback index exists under the tag and lists the profile with its artifactType and created time.
    const idx1 = await get(`/v2/${repo}/manifests/${tag}`);
    assert.equal(idx1.status, 200);
    assert.equal(idx1.body.mediaType, OCI_INDEX);
    assert.deepEqual(idx1.body.manifests.map((m: any) => [m.digest, m.artifactType, m.mediaType]), [[d1, ARTIFACT_PREFETCH_PROFILE, OCI_MANIFEST]]);
    assert.match(idx1.body.manifests[0].annotations['org.opencontainers.image.created'], /^\d{4}-\d\d-\d\dT/);
    // The artifact: empty config, subject = the Nydus manifest, one text/plain layer with the list.
    const art = await get(`/v2/${repo}/manifests/${d1}`, OCI_MANIFEST);
    assert.equal(art.body.artifactType, ARTIFACT_PREFETCH_PROFILE);
    assert.deepEqual(art.body.config, { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha('{}'), size: 2, data: 'e30=' });
    assert.deepEqual(art.body.subject, { mediaType: target.subject.mediaType, digest: subject, size: target.subject.size });
    const list = await fetch(`${reg.url}/v2/${repo}/blobs/${art.body.layers[0].digest}`);
    assert.equal(await list.text(), '/app/lib/b.so\n/app/lib/a.so\n');

    // A second profile, by the image's digest this time, from a file.
    const listFile = path.join(work, 'list2');
    fs.writeFileSync(listFile, '/app/lib/c.so\n/app/lib/a.so\n/app/lib/b.so\n');
    const p2 = await cli(['push', '--target', `${reg.host}/${repo}@${subject}`, '--prefetch-files', listFile]);
    assert.equal(p2.code, 0, p2.stderr);
    const d2 = /pushed prefetch profile (sha256:[0-9a-f]{64})/.exec(p2.stdout)?.[1] as string;
    assert.notEqual(d2, d1);
    assert.deepEqual((await get(`/v2/${repo}/manifests/${tag}`)).body.manifests.map((m: any) => m.digest), [d1, d2], 'read-modify-write keeps the first');

    const ls = await cli(['ls', '--target', nydusRef]);
    assert.equal(ls.code, 0, ls.stderr);
    const rows = ls.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/));
    assert.deepEqual(rows.map((r) => [r[0], r[2]]), [[d2, '3'], [d1, '2']], `newest first:\n${ls.stdout}`);
    assert.deepEqual((await newestProfile(target))?.paths, ['/app/lib/c.so', '/app/lib/a.so', '/app/lib/b.so']);

    const rm1 = await cli(['rm', '--target', nydusRef, '--digest', d1]);
    assert.equal(rm1.code, 0, rm1.stderr);
    assert.deepEqual((await get(`/v2/${repo}/manifests/${tag}`)).body.manifests.map((m: any) => m.digest), [d2]);
    assert.equal((await get(`/v2/${repo}/manifests/${d1}`, OCI_MANIFEST)).status, 404, 'the manifest is deleted');
    const again = await cli(['rm', '--target', nydusRef, '--digest', d1]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /is not a profile of/);

    const rmAll = await cli(['rm', '--target', nydusRef, '--all']);
    assert.equal(rmAll.code, 0, rmAll.stderr);
    assert.match(rmAll.stdout, new RegExp(`removed ${d2}`));
    assert.equal((await get(`/v2/${repo}/manifests/${tag}`)).status, 404, 'the referrers tag is gone');
    assert.equal((await get(`/v2/${repo}/manifests/${d2}`, OCI_MANIFEST)).status, 404);
    const empty = await cli(['ls', '--target', nydusRef]);
    assert.equal(empty.stdout.trim().split('\n').length, 1, empty.stdout);
    assert.equal((await get(`/v2/${repo}/manifests/1`, OCI_MANIFEST)).status, 200, 'the image itself is untouched');

    const bad = await cli(['push', '--target', nydusRef, '--prefetch-files', '-'], 'app/relative\n');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /line 1 .* is not an absolute path/);
    const oci = await cli(['push', '--target', ociRef, '--prefetch-files', listFile]);
    assert.notEqual(oci.code, 0);
    assert.match(oci.stderr, /not a Nydus bootstrap layer/);
  });

  test('bad profiles (wrong subject, garbage manifest, garbage or oversized list, gone) are skipped with a warning naming the digest', async () => {
    const good = await pushProfile(target, ['/app/lib/a.so'], { created: new Date('2024-01-01T00:00:00Z') });
    const tag = referrersTag(target.subject.digest);
    const other = await client.getManifest('src/app', '1');
    let minute = 0;
    /** Push a manifest by digest and list it in the fallback index, newer than the good one. */
    const addRaw = async (manifest: Record<string, unknown>): Promise<string> => {
      const created = `2024-06-01T00:${String(minute++).padStart(2, '0')}:00Z`;
      const data = new TextEncoder().encode(JSON.stringify({ ...manifest, annotations: { 'org.opencontainers.image.created': created } }));
      const digest = await client.putManifest(repo, sha(data), OCI_MANIFEST, data);
      const idx = JSON.parse(Buffer.from((await client.getManifest(repo, tag, [OCI_INDEX])).data).toString());
      idx.manifests.push({ mediaType: OCI_MANIFEST, digest, size: data.length, artifactType: ARTIFACT_PREFETCH_PROFILE, annotations: { 'org.opencontainers.image.created': created } });
      await client.putManifest(repo, tag, OCI_INDEX, new TextEncoder().encode(JSON.stringify(idx)));
      return digest;
    };
    const blob = async (b: Uint8Array): Promise<{ mediaType: string; digest: string; size: number }> => {
      await client.pushBlob(repo, sha(b), b.length, b);
      return { mediaType: 'text/plain', digest: sha(b), size: b.length };
    };
    const okList = await blob(new TextEncoder().encode('/app/lib/c.so\n'));
    const base = {
      schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: ARTIFACT_PREFETCH_PROFILE, config: EMPTY_CONFIG, layers: [okList], subject: target.subject,
    };
    const bad: Record<string, string> = {};
    bad.wrongSubject = await addRaw({ ...base, subject: { mediaType: other.mediaType, digest: other.digest, size: other.data.length } });
    bad.garbageManifest = await addRaw({ ...base, subject: 'garbage', artifactType: { x: 1 }, layers: [] });
    bad.binaryList = await addRaw({ ...base, layers: [await blob(new Uint8Array([0x2f, 0xff, 0xfe, 0x00, 0x80]))] });
    bad.notPaths = await addRaw({ ...base, layers: [await blob(new TextEncoder().encode('hello world\n'))] });
    bad.hugeList = await addRaw({ ...base, layers: [await blob(new TextEncoder().encode('/app/lib/a.so\n'.repeat(80_000)))] });
    bad.gone = await addRaw({ ...base, annotations: { x: 'y' } });
    assert.equal(await client.deleteManifest(repo, bad.gone), 'deleted');

    const log = warnings();
    const chosen = await newestProfile(target, { logger: log });
    assert.equal(chosen?.digest, good.digest, 'the newest good profile is used');
    assert.deepEqual(chosen?.paths, ['/app/lib/a.so']);
    for (const [what, d] of Object.entries(bad)) {
      assert.equal(log.lines.filter((l) => l.includes(d)).length, 1, `one warning for ${what} (${d}):\n${log.lines.join('\n')}`);
    }
    assert.equal(log.lines.length, Object.keys(bad).length, log.lines.join('\n'));
    assert.equal((await listProfiles(target)).profiles.length, Object.keys(bad).length + 1);

    // ls shows them as invalid and still succeeds.
    const ls = await runCliText('nydusify', ['profile', 'ls', '--plain-http', '--target', nydusRef]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, new RegExp(`^${bad.wrongSubject} .*invalid: its subject is ${other.digest}`, 'm'));
    assert.match(ls.stdout, new RegExp(`^${good.digest} .* 1$`, 'm'));
    const rm = await runCliText('nydusify', ['profile', 'rm', '--plain-http', '--target', nydusRef, '--all']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal((await get(`/v2/${repo}/manifests/${tag}`)).status, 404);
  });
});
