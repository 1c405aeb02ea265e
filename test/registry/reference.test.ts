import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseReference, formatReference } from '../../src/registry/reference.js';
import { RegistryError } from '../../src/registry/registry-error.js';
import { credentialsFromDockerConfig, defaultDockerConfigPath, loadCredentials, encodeBasicAuth } from '../../src/registry/credentials.js';
import { parseChallenges, TokenCache } from '../../src/registry/auth.js';
import { createBackend } from '../../src/storage/create-backend.js';
import { pseudoRandom } from '../storage/backend.case.js';
import { sha, startFakeRegistry } from './fake-registry.js';

const D = `sha256:${'ab'.repeat(32)}`;

test('parseReference() normalises Docker Hub names', () => {
  const r = parseReference('busybox');
  assert.deepEqual({ ...r }, { host: 'docker.io', apiHost: 'registry-1.docker.io', repo: 'library/busybox', tag: 'latest', digest: undefined, reference: 'latest' });
  assert.equal(formatReference(r), 'docker.io/library/busybox:latest');
  assert.equal(parseReference('user/app:1.0').repo, 'user/app');
  assert.equal(parseReference('docker.io/busybox').repo, 'library/busybox');
  assert.equal(parseReference('index.docker.io/library/busybox').host, 'docker.io');
});

test('parseReference() handles hosts with ports, tags and digests', () => {
  const r = parseReference(`127.0.0.1:5000/a/b/c:v1@${D}`);
  assert.equal(r.host, '127.0.0.1:5000');
  assert.equal(r.apiHost, '127.0.0.1:5000');
  assert.equal(r.repo, 'a/b/c');
  assert.equal(r.tag, 'v1');
  assert.equal(r.digest, D);
  assert.equal(r.reference, D);
  const l = parseReference(`localhost/x@${D}`);
  assert.equal(l.host, 'localhost');
  assert.equal(l.tag, undefined);
  assert.equal(parseReference('localhost:5000/x').tag, 'latest');
});

test('parseReference() rejects bad references with clear messages', () => {
  const bad = (ref: string, re: RegExp): void => {
    assert.throws(() => parseReference(ref), (e: unknown) => e instanceof RegistryError && e.code === 'ERR_BAD_REFERENCE' && re.test(e.message) && e.message.startsWith('Cannot parse image reference'));
  };
  bad('', /empty/);
  bad('Busybox', /repository component/);
  bad('a b', /whitespace/);
  bad('x:-bad', /tag/);
  bad('x@sha256:123', /64 lowercase hex/);
  bad('x@nodigest', /algorithm:hex/);
  bad('reg.io/a//b', /repository component ""/);
});

test('credentialsFromDockerConfig() reads auth and username/password entries', () => {
  const cfg = {
    auths: {
      'reg.example:5000': { auth: encodeBasicAuth({ username: 'u', password: 'p:w' }) },
      'https://other.example': { username: 'x', password: 'y' },
      'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') },
    },
  };
  assert.deepEqual(credentialsFromDockerConfig(cfg, 'reg.example:5000'), { username: 'u', password: 'p:w' });
  assert.deepEqual(credentialsFromDockerConfig(cfg, 'other.example'), { username: 'x', password: 'y' });
  assert.deepEqual(credentialsFromDockerConfig(cfg, 'docker.io'), { username: 'hub', password: 'pw' });
  assert.equal(credentialsFromDockerConfig(cfg, 'nope.example'), undefined);
  assert.equal(defaultDockerConfigPath({ DOCKER_CONFIG: '/etc/dc' }, '/root'), '/etc/dc/config.json');
  assert.equal(defaultDockerConfigPath({}, '/root'), '/root/.docker/config.json');
});

test('loadCredentials() asks the credHelpers / credsStore helper on PATH, as the Docker CLI does', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-credhelper-'));
  const oldPath = process.env['PATH'];
  try {
    // A helper answering for two servers; everything else is "not found".
    const helper = join(dir, 'docker-credential-fake');
    writeFileSync(helper, [
      '#!/bin/sh',
      '[ "$1" = get ] || exit 2',
      'read -r server',
      'case "$server" in',
      '  reg.example:5000) echo \'{"ServerURL":"reg.example:5000","Username":"helper-user","Secret":"helper:pass"}\' ;;',
      '  https://index.docker.io/v1/) echo \'{"Username":"hub-user","Secret":"hub-pass"}\' ;;',
      '  tok.example) echo \'{"Username":"<token>","Secret":"abc"}\' ;;',
      '  *) echo "credentials not found in native keychain"; exit 1 ;;',
      'esac',
    ].join('\n') + '\n', { mode: 0o755 });
    process.env['PATH'] = `${dir}:${oldPath ?? ''}`;
    const p = join(dir, 'config.json');
    writeFileSync(p, JSON.stringify({
      credHelpers: { 'reg.example:5000': 'fake', 'tok.example': 'fake', 'gone.example': 'missing' },
      credsStore: 'fake',
      auths: { 'plain.example': { auth: Buffer.from('file:pw').toString('base64') } },
    }));
    assert.deepEqual(await loadCredentials('reg.example:5000', { dockerConfigPath: p }), { username: 'helper-user', password: 'helper:pass' });
    assert.deepEqual(await loadCredentials('docker.io', { dockerConfigPath: p }), { username: 'hub-user', password: 'hub-pass' }, 'credsStore, asked with Docker Hub\'s server URL');
    assert.deepEqual(await loadCredentials('plain.example', { dockerConfigPath: p }), { username: 'file', password: 'pw' }, 'the store has none: auths');
    assert.equal(await loadCredentials('nobody.example', { dockerConfigPath: p }), undefined);
    await assert.rejects(loadCredentials('tok.example', { dockerConfigPath: p }), (e: unknown) => e instanceof RegistryError && e.code === 'ERR_CREDENTIAL_HELPER' && /identity token/.test(e.message));
    await assert.rejects(loadCredentials('gone.example', { dockerConfigPath: p }), (e: unknown) => e instanceof RegistryError && /docker-credential-missing: it is not on PATH/.test(e.message));
    // A default store that is not installed here (a config copied from a desktop): the auths count.
    writeFileSync(p, JSON.stringify({ credsStore: 'desktop-not-here', auths: { 'plain.example': { auth: Buffer.from('file:pw').toString('base64') } } }));
    assert.deepEqual(await loadCredentials('plain.example', { dockerConfigPath: p }), { username: 'file', password: 'pw' });
    assert.equal(await loadCredentials('nobody.example', { dockerConfigPath: p }), undefined);
  } finally {
    process.env['PATH'] = oldPath;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loadCredentials() reads a file, treats a missing one as none, rejects bad JSON', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-cred-'));
  try {
    const p = join(dir, 'config.json');
    assert.equal(await loadCredentials('h', { dockerConfigPath: p }), undefined);
    writeFileSync(p, JSON.stringify({ auths: { h: { auth: Buffer.from('a:b').toString('base64') } } }));
    assert.deepEqual(await loadCredentials('h', { dockerConfigPath: p }), { username: 'a', password: 'b' });
    writeFileSync(p, '{');
    await assert.rejects(loadCredentials('h', { dockerConfigPath: p }), (e: unknown) => e instanceof RegistryError && e.code === 'ERR_BAD_DOCKER_CONFIG');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('parseChallenges() parses Bearer and Basic challenges', () => {
  const [b] = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"');
  assert.deepEqual(b, { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } });
  const two = parseChallenges('Basic realm="a b", Bearer realm=x,error="invalid_token"');
  assert.deepEqual(two, [{ scheme: 'basic', params: { realm: 'a b' } }, { scheme: 'bearer', params: { realm: 'x', error: 'invalid_token' } }]);
  assert.deepEqual(parseChallenges(undefined), []);
});

test('TokenCache expires tokens', () => {
  const c = new TokenCache();
  c.set('s', 't', 60, 0);
  assert.equal(c.get('s', 1000), 't');
  assert.equal(c.get('s', 60_000), undefined);
});

test('registry_token is used first and replaced when the registry rejects it', async () => {
  const fake = await startFakeRegistry({ usesPerToken: 100 });
  const data = pseudoRandom(3000, 3);
  fake.blobs.set(sha(data), data);
  const b = createBackend({ type: 'registry', config: { scheme: 'http', host: fake.host, repo: 'lib/t', registry_token: 'stale' } });
  try {
    assert.ok(Buffer.from(await b.read(sha(data).slice(7), 10, 20)).equals(Buffer.from(data.subarray(10, 30))));
    assert.equal(await b.blobSize(sha(data).slice(7)), 3000);
    assert.equal(fake.tokenRequests.length, 1);
    assert.equal(fake.tokenRequests[0]?.basic, undefined);
  } finally {
    await b.close();
    await fake.close();
  }
});
