import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { createBackend } from '../../src/storage/create-backend.js';
import { createHttpBackend, type HttpBlobBackend } from '../../src/storage/backends/http/http-backend.js';
import { parseHttpConfig } from '../../src/storage/backends/http/http-config.js';
import { startBackendProxy } from '../../src/cli/backend-proxy/server.js';
import { BackendError, UsageError } from '../../src/util/errors.js';
import { pseudoRandom, runBackendConformance } from './backend.case.js';

function blobDir(blobs: Map<string, Uint8Array>): string {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-http-'));
  for (const [id, data] of blobs) writeFileSync(join(dir, id), data);
  return dir;
}

runBackendConformance('http (backend proxy on 127.0.0.1)', async (blobs) => {
  const dir = blobDir(blobs);
  const proxy = await startBackendProxy({ blobsDir: dir, host: '127.0.0.1', port: 0 });
  return {
    backend: createBackend({ type: 'http', config: { addr: proxy.url } }),
    cleanup: async () => {
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

runBackendConformance('http-proxy (unix socket, path prefix)', async (blobs) => {
  const dir = blobDir(blobs);
  const sock = join(dir, 'proxy.sock');
  const proxy = await startBackendProxy({ blobsDir: dir, socketPath: sock, pathPrefix: '/v2/blobs' });
  return {
    backend: createBackend({ type: 'http-proxy', config: { addr: sock, path: '/v2/blobs/' } }),
    cleanup: async () => {
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

/** A loopback server whose answers the test scripts. */
interface FaultServer {
  url: string;
  port: number;
  /** Requests seen. */
  requests: { method: string; url: string; range: string | undefined }[];
  /** Connections accepted. */
  connections: number;
  /** Most connections open at once. */
  maxOpen: number;
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

const BLOB = pseudoRandom(10_000, 7);
const ID = 'b'.repeat(64);

/** Serve BLOB correctly (single range). */
function serveRange(req: http.IncomingMessage, res: http.ServerResponse): void {
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (req.method === 'HEAD') {
    res.writeHead(200, { 'content-length': BLOB.length }).end();
    return;
  }
  if (!m) {
    res.writeHead(200, { 'content-length': BLOB.length }).end(BLOB);
    return;
  }
  const a = Number(m[1]);
  const b = Math.min(Number(m[2]), BLOB.length - 1);
  if (a >= BLOB.length) {
    res.writeHead(416, { 'content-range': `bytes */${BLOB.length}` }).end();
    return;
  }
  res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${BLOB.length}`, 'content-length': b - a + 1 }).end(BLOB.subarray(a, b + 1));
}

async function faultServer(handler: Handler, port = 0): Promise<FaultServer> {
  const sockets = new Set<Socket>();
  let n = 0;
  const state = { requests: [] as FaultServer['requests'], connections: 0, maxOpen: 0 };
  const server = http.createServer((req, res) => {
    state.requests.push({ method: req.method ?? '', url: req.url ?? '', range: req.headers.range });
    handler(req, res, n++);
  });
  server.on('connection', (s) => {
    state.connections++;
    sockets.add(s);
    state.maxOpen = Math.max(state.maxOpen, sockets.size);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const p = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${p}`,
    port: p,
    get requests() { return state.requests; },
    get connections() { return state.connections; },
    get maxOpen() { return state.maxOpen; },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    }),
  };
}

function backendFor(url: string, extra: Record<string, unknown> = {}, opts: { maxSockets?: number } = {}): HttpBlobBackend {
  return createHttpBackend(parseHttpConfig({ addr: url, timeout: 2, connect_timeout: 1, ...extra }), { backoffMs: 10, maxBackoffMs: 50, ...opts });
}

async function expectCode(p: Promise<unknown>, code: string): Promise<BackendError> {
  let err: BackendError | undefined;
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof BackendError, String(e));
    assert.equal(e.code, code, e.message);
    assert.equal(e.errno, 5);
    err = e;
    return true;
  });
  return err as BackendError;
}

describe('http backend faults', () => {
  const open: { close(): Promise<void> }[] = [];
  after(async () => {
    for (const x of open) await x.close();
  });
  const track = <T extends { close(): Promise<void> }>(x: T): T => {
    open.push(x);
    return x;
  };

  test('503 twice then success: the data arrives and the retries are counted', async () => {
    const srv = track(await faultServer((req, res, n) => (n < 2 ? res.writeHead(503).end() : serveRange(req, res))));
    // Through the factory, with the default backoff.
    const b = track(createBackend({ type: 'http-proxy', config: { addr: srv.url } })) as HttpBlobBackend;
    assert.equal(b.type, 'http-proxy');
    const got = await b.read(ID, 100, 200);
    assert.ok(Buffer.from(got).equals(Buffer.from(BLOB.subarray(100, 300))));
    assert.equal(b.metrics.retries, 2);
    assert.equal(b.metrics.readCount, 1);
    assert.equal(b.metrics.readErrors, 0);
    assert.equal(srv.requests.length, 3);
    assert.deepEqual(srv.requests.map((r) => r.range), ['bytes=100-299', 'bytes=100-299', 'bytes=100-299']);
    assert.equal(srv.requests[0]?.url, `/${ID}`);
  });

  test('always 503: BackendError naming blob, range and cause after retry_limit retries', async () => {
    const srv = track(await faultServer((_req, res) => res.writeHead(503).end()));
    const b = track(backendFor(srv.url, { retry_limit: 3 }));
    const e = await expectCode(b.read(ID, 0, 10), 'ERR_HTTP_STATUS');
    assert.match(e.message, new RegExp(`blob ${ID}`));
    assert.match(e.message, /bytes 0-9/);
    assert.match(e.message, /HTTP 503/);
    assert.match(e.message, /4 attempts/);
    assert.equal(srv.requests.length, 4);
    assert.equal(b.metrics.retries, 3);
    assert.equal(b.metrics.readErrors, 1);
  });

  test('408 and 429 are retried; 400 and 404 fail at once', async () => {
    const srv = track(await faultServer((req, res, n) => {
      if (req.url?.endsWith('/missing')) return void res.writeHead(404).end();
      if (req.url?.endsWith('/bad')) return void res.writeHead(400).end();
      if (n % 3 === 0) return void res.writeHead(429).end();
      if (n % 3 === 1) return void res.writeHead(408).end();
      serveRange(req, res);
    }));
    const b = track(backendFor(srv.url));
    assert.equal((await b.read(ID, 0, 5)).length, 5);
    assert.equal(srv.requests.length, 3);
    await expectCode(b.read('missing', 0, 5), 'ERR_BLOB_NOT_FOUND');
    await expectCode(b.read('bad', 0, 5), 'ERR_HTTP_STATUS');
    assert.equal(srv.requests.length, 5);
  });

  test('a hanging server fails with ERR_TIMEOUT within the timeout', async () => {
    const srv = track(await faultServer(() => { /* never answers */ }));
    const b = track(backendFor(srv.url, { timeout: 0.2, retry_limit: 1 }));
    const t0 = performance.now();
    const e = await expectCode(b.read(ID, 0, 10), 'ERR_TIMEOUT');
    assert.ok(performance.now() - t0 < 2000, 'bounded');
    assert.match(e.message, /200 ms/);
    assert.equal(srv.requests.length, 2);
  });

  test('a body that stalls half way fails with ERR_TIMEOUT', async () => {
    const srv = track(await faultServer((_req, res) => {
      res.writeHead(206, { 'content-range': `bytes 0-99/${BLOB.length}`, 'content-length': 100 });
      res.write(BLOB.subarray(0, 50));
    }));
    const b = track(backendFor(srv.url, { timeout: 0.2, retry_limit: 0 }));
    await expectCode(b.read(ID, 0, 100), 'ERR_TIMEOUT');
  });

  test('connection resets are retried; endless resets fail with ERR_CONNECTION', async () => {
    const srv = track(await faultServer((req, res, n) => (n < 2 || req.url?.endsWith('/reset') ? req.socket.destroy() : serveRange(req, res))));
    const b = track(backendFor(srv.url));
    const got = await b.read(ID, 5000, 5000);
    assert.ok(Buffer.from(got).equals(Buffer.from(BLOB.subarray(5000, 10000))));
    assert.ok(b.metrics.retries >= 2);
    await expectCode(b.read('reset', 0, 1), 'ERR_CONNECTION');
  });

  test('a body cut short is retried', async () => {
    const srv = track(await faultServer((req, res, n) => {
      if (n === 0) {
        res.writeHead(206, { 'content-range': `bytes 0-999/${BLOB.length}`, 'content-length': 1000 });
        res.write(BLOB.subarray(0, 10), () => req.socket.destroy());
        return;
      }
      serveRange(req, res);
    }));
    const b = track(backendFor(srv.url));
    const got = await b.read(ID, 0, 1000);
    assert.ok(Buffer.from(got).equals(Buffer.from(BLOB.subarray(0, 1000))));
    assert.equal(srv.requests.length, 2);
  });

  test('when the server goes away reads fail, and work again once it is back', async () => {
    let srv = await faultServer(serveRange);
    const port = srv.port;
    const b = track(backendFor(srv.url, { retry_limit: 1 }));
    assert.equal((await b.read(ID, 0, 10)).length, 10);
    await srv.close();
    await expectCode(b.read(ID, 0, 10), 'ERR_CONNECTION');
    srv = track(await faultServer(serveRange, port));
    const got = await b.read(ID, 10, 10);
    assert.ok(Buffer.from(got).equals(Buffer.from(BLOB.subarray(10, 20))));
  });

  test('a server ignoring Range: whole-blob 200 is accepted, a partial one is not', async () => {
    const srv = track(await faultServer((_req, res) => res.writeHead(200, { 'content-length': BLOB.length }).end(BLOB)));
    const b = track(backendFor(srv.url));
    assert.ok(Buffer.from(await b.read(ID, 0, BLOB.length)).equals(Buffer.from(BLOB)));
    const e = await expectCode(b.read(ID, 10, 10), 'ERR_BAD_RESPONSE');
    assert.match(e.message, /ignored the Range header/);
    await expectCode(b.read(ID, 0, BLOB.length + 1), 'ERR_OUT_OF_RANGE');
  });

  test('a 206 for the wrong range or with too long a body is rejected', async () => {
    const srv = track(await faultServer((req, res) => {
      if (req.url?.endsWith('/long')) return void res.writeHead(206, {}).end(BLOB.subarray(0, 20));
      res.writeHead(206, { 'content-range': `bytes 1-10/${BLOB.length}`, 'content-length': 10 }).end(BLOB.subarray(1, 11));
    }));
    const b = track(backendFor(srv.url));
    await expectCode(b.read(ID, 0, 10), 'ERR_BAD_RESPONSE');
    await expectCode(b.read('long', 0, 10), 'ERR_BAD_RESPONSE');
  });

  test('the socket pool is bounded and connections are kept alive', async () => {
    const srv = track(await faultServer((req, res) => setTimeout(() => serveRange(req, res), 2)));
    const b = track(backendFor(srv.url, {}, { maxSockets: 4 }));
    const got = await Promise.all(Array.from({ length: 64 }, (_, i) => b.read(ID, i * 100, 100)));
    got.forEach((g, i) => assert.ok(Buffer.from(g).equals(Buffer.from(BLOB.subarray(i * 100, i * 100 + 100)))));
    assert.ok(srv.maxOpen <= 4, `max open ${srv.maxOpen}`);
    assert.ok(srv.connections <= 4, `connections ${srv.connections}`);
  });

  test('an abort during a hanging request or a backoff rejects with ERR_ABORTED at once', async () => {
    const hang = track(await faultServer(() => {}));
    const b = track(backendFor(hang.url, { timeout: 30 }));
    const ac = new AbortController();
    const p = b.read(ID, 0, 10, ac.signal);
    setTimeout(() => ac.abort(), 50);
    const t0 = performance.now();
    await assert.rejects(p, (e: unknown) => e instanceof BackendError && e.code === 'ERR_ABORTED' && e.errno === 4);
    assert.ok(performance.now() - t0 < 1000);
    const busy = track(await faultServer((_req, res) => res.writeHead(503).end()));
    const slow = track(createHttpBackend(parseHttpConfig({ addr: busy.url, retry_limit: 5 }), { backoffMs: 10_000 }));
    const ac2 = new AbortController();
    const p2 = slow.read(ID, 0, 10, ac2.signal);
    setTimeout(() => ac2.abort(), 100);
    await assert.rejects(p2, { code: 'ERR_ABORTED' });
  });

  test('blobSize() uses HEAD, retries, and maps 404', async () => {
    const srv = track(await faultServer((req, res, n) => {
      if (req.url?.endsWith('/missing')) return void res.writeHead(404).end();
      if (n === 0) return void res.writeHead(502).end();
      serveRange(req, res);
    }));
    const b = track(backendFor(srv.url));
    assert.equal(await b.blobSize(ID), BLOB.length);
    assert.equal(srv.requests[1]?.method, 'HEAD');
    await expectCode(b.blobSize('missing'), 'ERR_BLOB_NOT_FOUND');
  });
});

test('createBackend() rejects bad http configs naming the field', () => {
  const bad = (config: Record<string, unknown>, re: RegExp): void => {
    assert.throws(() => createBackend({ type: 'http', config }), (e: unknown) => e instanceof UsageError && e.code === 'ERR_BAD_CONFIG' && re.test(e.message), JSON.stringify(config));
  };
  bad({}, /device\.backend\.config\.addr is required/);
  bad({ addr: 'ftp://x' }, /device\.backend\.config\.addr has scheme ftp/);
  bad({ addr: 'not a url' }, /device\.backend\.config\.addr must be http/);
  bad({ addr: 'http://x', timeout: '5' }, /device\.backend\.config\.timeout must be a number/);
  bad({ addr: 'http://x', retry_limit: -1 }, /device\.backend\.config\.retry_limit must be an integer/);
  bad({ addr: 'http://x', retry_limit: 1.5 }, /retry_limit/);
  bad({ addr: 'http://x', skip_verify: 'yes' }, /device\.backend\.config\.skip_verify must be true or false/);
  bad({ addr: 'http://x', path: '/a?b' }, /device\.backend\.config\.path must be a plain URL path/);
});

test('parseHttpConfig() applies nydusd defaults and normalises the path', () => {
  const c = parseHttpConfig({ addr: 'https://proxy.example:8443/base/' });
  assert.deepEqual(c.target, { kind: 'tcp', protocol: 'https:', hostname: 'proxy.example', port: 8443, basePath: '/base' });
  assert.equal(c.path, '');
  assert.equal(c.timeoutMs, 5000);
  assert.equal(c.connectTimeoutMs, 5000);
  assert.equal(c.retryLimit, 2);
  assert.equal(c.skipVerify, false);
  assert.equal(parseHttpConfig({ addr: 'http://h', path: 'x/y/' }).path, '/x/y');
  assert.deepEqual(parseHttpConfig({ addr: '/run/proxy.sock' }).target, { kind: 'unix', socketPath: '/run/proxy.sock' });
});
