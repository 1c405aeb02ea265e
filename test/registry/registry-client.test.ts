import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type StartedRegistry } from '../helpers/registry.js';
import { RegistryClient, MEDIA_TYPE } from '../../src/registry/registry-client.js';
import { RegistryError } from '../../src/registry/registry-error.js';
import { pseudoRandom } from '../storage/backend.case.js';
import { sha, startFakeRegistry, type FakeRegistry } from './fake-registry.js';

function code(c: string, re?: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof RegistryError, `expected a RegistryError, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    if (re) assert.match(e.message, re);
    return true;
  };
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

async function* chunksOf(data: Uint8Array, n: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.length; i += n) yield data.subarray(i, i + n);
}

/** Raw GET (no client), to show the registry's quirks. */
function rawGet(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

const BIG = pseudoRandom(700_001, 11);
const SMALL = pseudoRandom(5000, 12);
const CONFIG = new TextEncoder().encode('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');

function manifestFor(layer: Uint8Array): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2, mediaType: MEDIA_TYPE.ociManifest,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(CONFIG), size: CONFIG.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.nydus.blob.v1', digest: sha(layer), size: layer.length }],
  }));
}

describe('RegistryClient against docker-registry (plain HTTP)', () => {
  let dir: string;
  let reg: StartedRegistry;
  let c: RegistryClient;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nydus-reg-'));
    reg = await startRegistry({ dir });
    c = new RegistryClient(reg.host, { plainHttp: true, chunkSize: 64 * 1024 });
  });
  after(async () => {
    await c?.close();
    await reg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('pushBlob() uploads monolithic and chunked streams, skips existing ones', async () => {
    assert.equal(await c.pushBlob('app/one', sha(SMALL), SMALL.length, SMALL), true);
    assert.equal(await c.pushBlob('app/one', sha(BIG), BIG.length, chunksOf(BIG, 10_000)), true);
    assert.equal(await c.pushBlob('app/one', sha(SMALL), SMALL.length, SMALL), false);
    assert.equal(await c.pushBlob('app/one', sha(CONFIG), CONFIG.length, CONFIG), true);
    // An in-memory blob larger than the chunk size goes up in PATCH chunks.
    const mid = pseudoRandom(200_000, 13);
    assert.equal(await c.pushBlob('app/one', sha(mid), mid.length, mid), true);
    assert.ok(eq(await collect(c.blobStream('app/one', sha(mid))), mid));
    assert.equal(await c.headBlob('app/one', sha(BIG)), BIG.length);
    assert.equal(await c.headBlob('app/one', sha(new Uint8Array([9]))), undefined);
  });

  test('pushBlob() rejects content that does not match the digest', async () => {
    await assert.rejects(c.pushBlob('app/one', sha(new Uint8Array([1])), 1, new Uint8Array([2])), code('ERR_DIGEST_MISMATCH'));
    await assert.rejects(c.pushBlob('app/one', sha(BIG.subarray(1)), BIG.length - 1, chunksOf(BIG, 100_000)), code('ERR_DIGEST_MISMATCH'));
  });

  test('readBlob() returns exact ranges', async () => {
    for (const [off, len] of [[0, 100], [123_456, 65_536], [BIG.length - 1, 1], [0, BIG.length], [BIG.length - 4096, 4096]] as const) {
      const got = await c.readBlob('app/one', sha(BIG), off, len);
      assert.equal(got.length, len);
      assert.ok(eq(got, BIG.subarray(off, off + len)), `${off}+${len}`);
    }
    await assert.rejects(c.readBlob('app/one', sha(BIG), BIG.length - 10, 11), code('ERR_REGISTRY_OUT_OF_RANGE'));
    await assert.rejects(c.readBlob('app/one', sha(BIG), BIG.length + 5, 1), code('ERR_REGISTRY_OUT_OF_RANGE'));
    await assert.rejects(c.readBlob('app/one', sha(new Uint8Array([7])), 0, 1), code('ERR_REGISTRY_NOT_FOUND', new RegExp(reg.host)));
  });

  test('blobStream() round-trips a pushed blob', async () => {
    assert.ok(eq(await collect(c.blobStream('app/one', sha(BIG))), BIG));
  });

  test('putManifest()/getManifest() round-trip by tag and digest; Accept is always sent', async () => {
    const m = manifestFor(BIG);
    const d = await c.putManifest('app/one', 'v1', MEDIA_TYPE.ociManifest, m);
    assert.equal(d, sha(m));
    // The registry's quirk: no Accept → 404.
    assert.equal(await rawGet(`${reg.url}/v2/app/one/manifests/v1`, {}), 404);
    for (const ref of ['v1', d]) {
      const got = await c.getManifest('app/one', ref);
      assert.equal(got.mediaType, MEDIA_TYPE.ociManifest);
      assert.equal(got.digest, d);
      assert.ok(eq(got.data, m));
    }
    const again = await c.getManifest('app/one', 'v1', []);
    assert.equal(again.digest, d);
    await assert.rejects(c.getManifest('app/one', 'nope'), code('ERR_REGISTRY_NOT_FOUND', /app\/one/));
    assert.deepEqual(await c.listTags('app/one'), ['v1']);
  });

  test('resolvePlatform() picks a manifest from an index pushed to the registry', async () => {
    const m = manifestFor(BIG);
    const index = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2, mediaType: MEDIA_TYPE.ociIndex,
      manifests: [
        { mediaType: MEDIA_TYPE.ociManifest, digest: sha(m), size: m.length, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: MEDIA_TYPE.ociManifest, digest: sha(m), size: m.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    }));
    await c.putManifest('app/one', 'multi', MEDIA_TYPE.ociIndex, index);
    const got = await c.getManifest('app/one', 'multi');
    assert.equal(got.mediaType, MEDIA_TYPE.ociIndex);
    assert.equal(c.resolvePlatform(got.data, { os: 'linux', architecture: 'arm64' }).platform?.variant, 'v8');
    assert.equal(c.resolvePlatform(got.data, { os: 'linux', architecture: 'amd64' }).digest, sha(m));
    assert.throws(() => c.resolvePlatform(got.data, { os: 'linux', architecture: 's390x' }), code('ERR_NO_PLATFORM', /linux\/amd64/));
  });

  test('mountBlob() mounts across repositories', async () => {
    assert.equal(await c.headBlob('other/two', sha(BIG)), undefined);
    assert.equal(await c.mountBlob('other/two', sha(BIG), 'app/one'), true);
    assert.equal(await c.headBlob('other/two', sha(BIG)), BIG.length);
    assert.equal(await c.mountBlob('other/two', sha(new Uint8Array([3, 3])), 'app/one'), false);
  });

  test('blobStream() detects content that does not match its digest', async () => {
    const data = pseudoRandom(20_000, 99);
    await c.pushBlob('app/bad', sha(data), data.length, data);
    const hex = sha(data).slice(7);
    const file = join(dir, 'data/docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const bytes = readFileSync(file);
    bytes[10_000] = (bytes[10_000] ?? 0) ^ 0xff;
    writeFileSync(file, bytes);
    await assert.rejects(collect(c.blobStream('app/bad', sha(data))), code('ERR_DIGEST_MISMATCH', /app\/bad/));
  });
});

describe('RegistryClient with htpasswd basic auth over plain HTTP', () => {
  let dir: string;
  let reg: StartedRegistry;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nydus-reg-'));
    reg = await startRegistry({ dir, auth: { user: 'alice', pass: 's3cret' } });
  });
  after(async () => {
    await reg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the right credentials push and read', async () => {
    const c = new RegistryClient(reg.host, { plainHttp: true, credentials: { username: 'alice', password: 's3cret' } });
    try {
      await c.pushBlob('sec/repo', sha(SMALL), SMALL.length, SMALL);
      assert.ok(eq(await c.readBlob('sec/repo', sha(SMALL), 100, 200), SMALL.subarray(100, 300)));
    } finally {
      await c.close();
    }
  });

  test('concurrent first requests of a new client all learn Basic auth (none fails with 401)', async () => {
    const seed = new RegistryClient(reg.host, { plainHttp: true, credentials: { username: 'alice', password: 's3cret' } });
    try {
      await seed.pushBlob('sec/many', sha(SMALL), SMALL.length, SMALL);
    } finally {
      await seed.close();
    }
    const c = new RegistryClient(reg.host, { plainHttp: true, credentials: { username: 'alice', password: 's3cret' } });
    try {
      const got = await Promise.all(Array.from({ length: 8 }, (_, k) => c.readBlob('sec/many', sha(SMALL), k * 10, 10)));
      got.forEach((g, k) => assert.ok(eq(g, SMALL.subarray(k * 10, k * 10 + 10)), `read ${k}`));
    } finally {
      await c.close();
    }
  });

  test('wrong or missing credentials fail with a message naming the registry', async () => {
    for (const credentials of [{ username: 'alice', password: 'nope' }, undefined]) {
      const c = new RegistryClient(reg.host, { plainHttp: true, ...(credentials ? { credentials } : {}) });
      try {
        await assert.rejects(c.headBlob('sec/repo', sha(SMALL)), code('ERR_REGISTRY_UNAUTHORIZED', new RegExp(`${reg.host}.*401.*(alice were rejected|no credentials)`)));
      } finally {
        await c.close();
      }
    }
  });
});

describe('RegistryClient over TLS with a test CA', () => {
  let dir: string;
  let reg: StartedRegistry;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nydus-reg-'));
    reg = await startRegistry({ dir, tls: true, auth: { user: 'bob', pass: 'pw' } });
  });
  after(async () => {
    await reg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the CA verifies the server; without it the TLS error is clear; insecure skips the check', async () => {
    const credentials = { username: 'bob', password: 'pw' };
    const good = new RegistryClient(reg.host, { ca: readFileSync(reg.caFile as string), credentials });
    const noCa = new RegistryClient(reg.host, { credentials, retryLimit: 0 });
    const insecure = new RegistryClient(reg.host, { insecure: true, credentials });
    try {
      await good.pushBlob('tls/repo', sha(SMALL), SMALL.length, SMALL);
      assert.ok(eq(await good.readBlob('tls/repo', sha(SMALL), 0, 10), SMALL.subarray(0, 10)));
      await assert.rejects(noCa.headBlob('tls/repo', sha(SMALL)), code('ERR_REGISTRY_TLS', new RegExp(reg.host)));
      assert.equal(await insecure.headBlob('tls/repo', sha(SMALL)), SMALL.length);
    } finally {
      await Promise.all([good.close(), noCa.close(), insecure.close()]);
    }
  });
});

describe('RegistryClient Bearer tokens (in-process token server + fake registry)', () => {
  let fake: FakeRegistry;
  const data = pseudoRandom(50_000, 5);
  before(async () => {
    fake = await startFakeRegistry({ usesPerToken: 3, users: { u: 'p' } });
    fake.blobs.set(sha(data), data);
  });
  after(async () => {
    await fake?.close();
  });

  test('fetches a token with basic creds and scope, renews it when it expires, reads never fail', async () => {
    const c = new RegistryClient(fake.host, { plainHttp: true, credentials: { username: 'u', password: 'p' } });
    try {
      for (let i = 0; i < 10; i++) {
        const got = await c.readBlob('lib/x', sha(data), i * 1000, 1000);
        assert.ok(eq(got, data.subarray(i * 1000, i * 1000 + 1000)));
      }
      // 10 reads with 3 uses per token: 4 tokens, all for the repository's pull scope.
      assert.equal(fake.tokenRequests.length, 4);
      assert.ok(fake.tokenRequests.every((t) => t.scope === 'repository:lib/x:pull' && t.service === 'fake-registry' && t.basic !== undefined));
      assert.equal(fake.requests.filter((r) => r.status === 206).length, 10);
    } finally {
      await c.close();
    }
  });

  test('concurrent reads share one token fetch', async () => {
    const c = new RegistryClient(fake.host, { plainHttp: true, credentials: { username: 'u', password: 'p' } });
    fake.tokenRequests.length = 0;
    try {
      const n = 3;
      const got = await Promise.all(Array.from({ length: n }, (_, i) => c.readBlob('lib/y', sha(data), i, 10)));
      got.forEach((g, i) => assert.ok(eq(g, data.subarray(i, i + 10))));
      assert.equal(fake.tokenRequests.length, 1);
    } finally {
      await c.close();
    }
  });

  test('wrong credentials at the token server fail clearly', async () => {
    const c = new RegistryClient(fake.host, { plainHttp: true, credentials: { username: 'u', password: 'bad' } });
    try {
      await assert.rejects(c.readBlob('lib/x', sha(data), 0, 10), code('ERR_REGISTRY_UNAUTHORIZED', new RegExp(`${fake.host}.*token server.*user u`)));
    } finally {
      await c.close();
    }
  });

  test('a redirect to another host is followed without the Authorization header', async () => {
    const c = new RegistryClient(fake.host, { plainHttp: true, credentials: { username: 'u', password: 'p' } });
    fake.redirect = true;
    try {
      assert.ok(eq(await c.readBlob('lib/x', sha(data), 500, 700), data.subarray(500, 1200)));
      assert.ok(eq(await collect(c.blobStream('lib/x', sha(data))), data));
      assert.equal(fake.cdnAuth.length, 2);
      assert.ok(fake.cdnAuth.every((a) => a === undefined));
    } finally {
      fake.redirect = false;
      await c.close();
    }
  });

  test('a wrong digest in the stream is detected (fake serves other bytes)', async () => {
    const c = new RegistryClient(fake.host, { plainHttp: true, credentials: { username: 'u', password: 'p' } });
    const wrong = sha(new Uint8Array([1, 2, 3]));
    fake.blobs.set(wrong, data);
    try {
      await assert.rejects(collect(c.blobStream('lib/x', wrong)), code('ERR_DIGEST_MISMATCH'));
    } finally {
      fake.blobs.delete(wrong);
      await c.close();
    }
  });
});

describe('RegistryClient retries', () => {
  test('5xx and resets are retried, 4xx are not', async () => {
    let n = 0;
    const srv = http.createServer((req, res) => {
      n++;
      if (n === 1) { res.writeHead(503).end(); return; }
      if (n === 2) { req.socket.destroy(); return; }
      if (req.url?.includes('missing')) { res.writeHead(404).end('{"errors":[{"code":"BLOB_UNKNOWN"}]}'); return; }
      res.writeHead(206, { 'content-range': 'bytes 0-2/10', 'content-length': 3 }).end(Buffer.from([1, 2, 3]));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    const c = new RegistryClient(`127.0.0.1:${port}`, { plainHttp: true, retryLimit: 3, backoffMs: 5 });
    try {
      const d = sha(new Uint8Array([0]));
      assert.deepEqual([...(await c.readBlob('r/x', d, 0, 3))], [1, 2, 3]);
      assert.equal(c.retries, 2);
      n = 10;
      await assert.rejects(c.readBlob('r/missing', d, 0, 3), code('ERR_REGISTRY_NOT_FOUND'));
      assert.equal(c.retries, 2);
    } finally {
      await c.close();
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});

/**
 * A loopback proxy in front of docker-registry that breaks chosen requests: `fault(req, n)` is
 * asked for each request (n counts requests of the same method) and answers 'reset' (the client
 * socket is destroyed before anything is forwarded), 'lose-answer' (forwarded, then the client
 * socket is destroyed instead of answering) or undefined (forwarded as is).
 */
async function startFaultyProxy(upstream: string, fault: (req: http.IncomingMessage, n: number) => 'reset' | 'lose-answer' | undefined): Promise<{ host: string; seen: string[]; close(): Promise<void> }> {
  const counts = new Map<string, number>();
  const seen: string[] = [];
  const srv = http.createServer((req, res) => {
    const n = (counts.get(req.method ?? '') ?? 0) + 1;
    counts.set(req.method ?? '', n);
    const f = fault(req, n);
    seen.push(`${req.method} ${f ?? 'ok'}`);
    if (f === 'reset') {
      // Take part of the body, then break the connection.
      req.once('data', () => req.socket.destroy());
      req.once('end', () => req.socket.destroy());
      return;
    }
    const up = http.request(`${upstream}${req.url}`, { method: req.method, headers: req.headers, agent: false }, (ur) => {
      if (f === 'lose-answer') {
        ur.resume();
        ur.once('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => req.socket.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`, seen,
    async close() {
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

describe('RegistryClient uploads that break on the way (docker-registry behind a faulty proxy)', () => {
  let dir: string;
  let reg: StartedRegistry;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nydus-reg-faulty-'));
    reg = await startRegistry({ dir });
  });
  after(async () => {
    await reg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('pushBlob() starts a re-readable upload over after a reset PATCH, and after a lost answer to the closing PUT', async () => {
    const proxy = await startFaultyProxy(reg.url, (req, n) => (req.method === 'PATCH' && n === 2 ? 'reset' : req.method === 'PUT' && n === 1 ? 'lose-answer' : undefined));
    const c = new RegistryClient(proxy.host, { plainHttp: true, chunkSize: 64 * 1024, retryLimit: 3, backoffMs: 5 });
    try {
      const data = pseudoRandom(300_000, 21);
      let opened = 0;
      assert.equal(await c.pushBlob('app/retry', sha(data), data.length, () => { opened++; return chunksOf(data, 50_000); }), true);
      // Opened twice: the PATCH reset restarts the upload; after the lost PUT answer the HEAD finds the blob.
      assert.equal(opened, 2, `opened ${opened} times; requests: ${proxy.seen.join(', ')}`);
      assert.equal(proxy.seen.filter((x) => x.startsWith('POST')).length, 2, proxy.seen.join(', '));
      assert.ok(c.retries >= 2);
      assert.ok(eq(await collect(c.blobStream('app/retry', sha(data))), data));
      // In-memory bytes restart the same way.
      const mem = pseudoRandom(200_000, 22);
      assert.equal(await c.pushBlob('app/retry', sha(mem), mem.length, mem), true);
      assert.ok(eq(await collect(c.blobStream('app/retry', sha(mem))), mem));
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  test('pushBlob() of a one-shot stream fails at once with a message naming the blob, and commits nothing', async () => {
    const proxy = await startFaultyProxy(reg.url, (req) => (req.method === 'PATCH' ? 'reset' : undefined));
    const c = new RegistryClient(proxy.host, { plainHttp: true, chunkSize: 64 * 1024, retryLimit: 3, backoffMs: 5 });
    try {
      const data = pseudoRandom(150_000, 23);
      await assert.rejects(c.pushBlob('app/retry', sha(data), data.length, chunksOf(data, 50_000)), (e: unknown) => e instanceof RegistryError && e.message.includes(`push blob ${sha(data)}`));
      assert.equal(proxy.seen.filter((x) => x.startsWith('PATCH')).length, 1, proxy.seen.join(', '));
      assert.equal(await c.headBlob('app/retry', sha(data)), undefined);
    } finally {
      await c.close();
      await proxy.close();
    }
  });
});

describe('RegistryClient timeouts and aborts', () => {
  test('a silent server times out with ERR_REGISTRY_TIMEOUT after the retries; an abort rejects with ERR_ABORTED', async () => {
    let n = 0;
    const srv = http.createServer(() => { n++; /* never answers */ });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    const c = new RegistryClient(`127.0.0.1:${port}`, { plainHttp: true, timeoutMs: 100, retryLimit: 1, backoffMs: 5 });
    try {
      const d = sha(new Uint8Array([0]));
      await assert.rejects(c.readBlob('r/x', d, 0, 3), code('ERR_REGISTRY_TIMEOUT', /gave up after 2 attempts/));
      assert.equal(n, 2);
      const ac = new AbortController();
      const p = c.readBlob('r/x', d, 0, 3, ac.signal);
      setTimeout(() => ac.abort(), 30);
      await assert.rejects(p, code('ERR_ABORTED'));
    } finally {
      await c.close();
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
