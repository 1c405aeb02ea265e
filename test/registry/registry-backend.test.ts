import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type StartedRegistry } from '../helpers/registry.js';
import { RegistryClient } from '../../src/registry/registry-client.js';
import { createBackend } from '../../src/storage/create-backend.js';
import type { BlobBackend } from '../../src/storage/blob-backend.js';
import type { RegistryBlobBackend } from '../../src/storage/backends/registry/registry-backend.js';
import { UsageError } from '../../src/util/errors.js';
import { pseudoRandom, runBackendConformance } from '../storage/backend.case.js';
import { sha } from './fake-registry.js';

let dir: string;
let reg: StartedRegistry | undefined;
let regPromise: Promise<StartedRegistry> | undefined;

/** One docker-registry with basic auth for the whole file. */
function registry(): Promise<StartedRegistry> {
  regPromise ??= (async () => {
    dir = mkdtempSync(join(tmpdir(), 'nydus-regbe-'));
    reg = await startRegistry({ dir, auth: { user: 'nydus', pass: 'pw' } });
    return reg;
  })();
  return regPromise;
}

after(async () => {
  await reg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const AUTH = Buffer.from('nydus:pw').toString('base64');
let repoSerial = 0;

/** Push `blobs` to a fresh repo; map the suite's ids to their sha256 hex. */
async function pushAll(r: StartedRegistry, blobs: Map<string, Uint8Array>): Promise<{ repo: string; ids: Map<string, string> }> {
  const repo = `conf/r${++repoSerial}`;
  const c = new RegistryClient(r.host, { plainHttp: true, credentials: { username: 'nydus', password: 'pw' } });
  const ids = new Map<string, string>();
  try {
    for (const [id, data] of blobs) {
      await c.pushBlob(repo, sha(data), data.length, data);
      ids.set(id, sha(data).slice(7));
    }
  } finally {
    await c.close();
  }
  return { repo, ids };
}

/** The registry names blobs by digest: translate the suite's names, pass others through. */
function translated(b: BlobBackend, ids: Map<string, string>): BlobBackend {
  const t = (id: string): string => ids.get(id) ?? id;
  return {
    type: b.type,
    get metrics() { return b.metrics; },
    blobSize: (id, signal) => b.blobSize(t(id), signal),
    read: (id, off, len, signal) => b.read(t(id), off, len, signal),
    close: () => b.close(),
  };
}

runBackendConformance('registry (docker-registry with basic auth)', async (blobs) => {
  const r = await registry();
  const { repo, ids } = await pushAll(r, blobs);
  const backend = createBackend({ type: 'registry', config: { scheme: 'http', host: r.host, repo, auth: AUTH, timeout: 5, retry_limit: 2 } });
  return { backend: translated(backend, ids), cleanup: async () => {} };
});

test('createBackend() validates the registry config naming the field', () => {
  const bad = (config: Record<string, unknown>, re: RegExp): void => {
    assert.throws(() => createBackend({ type: 'registry', config }), (e: unknown) => e instanceof UsageError && e.code === 'ERR_BAD_CONFIG' && re.test(e.message));
  };
  bad({}, /device\.backend\.config\.host is required/);
  bad({ host: 'h:5000' }, /device\.backend\.config\.repo is required/);
  bad({ host: 'http://h', repo: 'a' }, /device\.backend\.config\.host must be host\[:port\]/);
  bad({ host: 'h', repo: 'A//b' }, /device\.backend\.config\.repo is not a repository name/);
  bad({ host: 'h', repo: 'a', scheme: 'ftp' }, /device\.backend\.config\.scheme must be "https" or "http"/);
  bad({ host: 'h', repo: 'a', auth: 'bm9jb2xvbg==' }, /device\.backend\.config\.auth must be base64/);
  bad({ host: 'h', repo: 'a', timeout: 0 }, /device\.backend\.config\.timeout must be a number/);
  bad({ host: 'h', repo: 'a', ca_cert_files: ['/nonexistent/ca.pem'] }, /device\.backend\.config\.ca_cert_files\[0\] cannot be read/);
  bad({ host: 'h', repo: 'a', proxy: { url: 'http://p:1/x' } }, /device\.backend\.config\.proxy\.url must be/);
  bad({ host: 'h', repo: 'a', proxy: { url: 'http://p:1', fallback: 'yes' } }, /device\.backend\.config\.proxy\.fallback must be true or false/);
  const b = createBackend({ type: 'registry', config: { host: 'h', repo: 'a', proxy: { url: '' } } }) as RegistryBlobBackend;
  assert.equal(b.proxyHealthy, false);
  void b.close();
});

test('the registry backend reports wrong credentials as ERR_UNAUTHORIZED naming the registry', async () => {
  const r = await registry();
  const b = createBackend({ type: 'registry', config: { scheme: 'http', host: r.host, repo: 'conf/x', auth: Buffer.from('nydus:bad').toString('base64') } });
  try {
    await assert.rejects(b.read('a'.repeat(64), 0, 1), (e: unknown) => (e as { code?: string }).code === 'ERR_UNAUTHORIZED' && new RegExp(r.host).test((e as Error).message));
  } finally {
    await b.close();
  }
});

/** A forwarding proxy in front of the registry that can be switched off and on (same port). */
class SwitchableProxy {
  requests = 0;
  port = 0;
  #server: http.Server | undefined;
  readonly #sockets = new Set<Socket>();
  constructor(readonly target: string) {}

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      this.requests++;
      const up = http.request(`http://${this.target}${req.url ?? '/'}`, { method: req.method ?? 'GET', headers: { ...req.headers, host: this.target } }, (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', () => resolve()));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const s = this.#server;
    if (!s) return;
    this.#server = undefined;
    for (const sock of this.#sockets) sock.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

describe('registry backend with a proxy', () => {
  let proxy: SwitchableProxy;
  let b: RegistryBlobBackend;
  const data = pseudoRandom(200_000, 42);
  const id = sha(data).slice(7);

  before(async () => {
    const r = await registry();
    const { repo } = await pushAll(r, new Map([['x', data]]));
    proxy = new SwitchableProxy(r.host);
    await proxy.start();
    b = createBackend({
      type: 'registry',
      config: { scheme: 'http', host: r.host, repo, auth: AUTH, proxy: { url: `http://127.0.0.1:${proxy.port}`, fallback: true, check_interval: 0.1 } },
    }) as RegistryBlobBackend;
  });
  after(async () => {
    await b?.close();
    await proxy?.stop();
  });

  test('reads go through the proxy, fall back when it is down, and return after a health check', async () => {
    const check = async (off: number): Promise<void> => {
      const got = await b.read(id, off, 1000);
      assert.ok(Buffer.from(got).equals(Buffer.from(data.subarray(off, off + 1000))), `bytes at ${off}`);
    };
    for (let i = 0; i < 5; i++) await check(i * 1000);
    assert.ok(proxy.requests >= 5, `proxy saw ${proxy.requests} requests`);
    assert.equal(b.metrics.proxyReads, 5);

    await proxy.stop();
    const seen = proxy.requests;
    for (let i = 0; i < 5; i++) await check(10_000 + i * 1000);
    assert.equal(b.metrics.proxyFallbacks, 1);
    assert.equal(b.metrics.proxyReads, 5);
    assert.equal(b.proxyHealthy, false);
    assert.equal(b.metrics.readErrors, 0);

    await proxy.start();
    const t0 = Date.now();
    while (!b.proxyHealthy) {
      assert.ok(Date.now() - t0 < 5000, 'the health check did not mark the proxy healthy');
      await new Promise((r) => setTimeout(r, 20));
    }
    const before = proxy.requests;
    assert.ok(before > seen, 'the health check went to the proxy');
    for (let i = 0; i < 3; i++) await check(50_000 + i * 1000);
    assert.ok(proxy.requests >= before + 3);
    assert.equal(b.metrics.proxyReads, 8);
  });
});
