import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRangeHeader, startBackendProxy, type BackendProxy } from '../../src/cli/backend-proxy/server.js';
import { pseudoRandom } from './backend.case.js';

const BIN = join(import.meta.dirname, '../../bin/nydus-backend-proxy');
const ID = 'c'.repeat(64);
const DATA = pseudoRandom(5000, 3);

/** A raw request (no client-side path normalisation). */
function request(port: number, path: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers ?? {}, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('parseRangeHeader() follows RFC 9110 for single ranges', () => {
  assert.deepEqual(parseRangeHeader(undefined, 100), { kind: 'whole' });
  assert.deepEqual(parseRangeHeader('bytes=0-9', 100), { kind: 'range', start: 0, end: 9 });
  assert.deepEqual(parseRangeHeader('bytes=90-200', 100), { kind: 'range', start: 90, end: 99 });
  assert.deepEqual(parseRangeHeader('bytes=95-', 100), { kind: 'range', start: 95, end: 99 });
  assert.deepEqual(parseRangeHeader('bytes=-10', 100), { kind: 'range', start: 90, end: 99 });
  assert.deepEqual(parseRangeHeader('bytes=-1000', 100), { kind: 'range', start: 0, end: 99 });
  assert.deepEqual(parseRangeHeader('bytes=100-', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRangeHeader('bytes=-0', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRangeHeader('bytes=0-', 0), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRangeHeader('bytes=9-1', 100), { kind: 'whole' });
  assert.deepEqual(parseRangeHeader('bytes=0-1,5-6', 100), { kind: 'whole' });
  assert.deepEqual(parseRangeHeader('items=0-1', 100), { kind: 'whole' });
});

describe('startBackendProxy()', () => {
  let dir: string;
  let proxy: BackendProxy;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nydus-proxy-'));
    const blobs = join(dir, 'blobs');
    mkdirSync(blobs);
    writeFileSync(join(blobs, ID), DATA);
    writeFileSync(join(blobs, 'empty'), new Uint8Array(0));
    writeFileSync(join(dir, 'secret'), 'secret');
    mkdirSync(join(blobs, 'subdir'));
    symlinkSync(join(dir, 'secret'), join(blobs, 'escape'));
    symlinkSync(join(blobs, ID), join(blobs, 'inside'));
    proxy = await startBackendProxy({ blobsDir: blobs, host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('serves a single range as 206 with Content-Range', async () => {
    const r = await request(proxy.port, `/${ID}`, { headers: { range: 'bytes=100-1099' } });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 100-1099/${DATA.length}`);
    assert.equal(r.headers['content-length'], '1000');
    assert.ok(r.body.equals(Buffer.from(DATA.subarray(100, 1100))));
  });

  test('serves the whole blob as 200 without Range, and HEAD gives the size', async () => {
    const r = await request(proxy.port, `/${ID}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.ok(r.body.equals(Buffer.from(DATA)));
    const h = await request(proxy.port, `/${ID}`, { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-length'], String(DATA.length));
    assert.equal(h.body.length, 0);
    const e = await request(proxy.port, '/empty');
    assert.equal(e.status, 200);
    assert.equal(e.body.length, 0);
  });

  test('answers 416 for an unsatisfiable range and 404 for a missing blob', async () => {
    const r = await request(proxy.port, `/${ID}`, { headers: { range: `bytes=${DATA.length}-` } });
    assert.equal(r.status, 416);
    assert.equal(r.headers['content-range'], `bytes */${DATA.length}`);
    assert.equal((await request(proxy.port, `/${'d'.repeat(64)}`)).status, 404);
    assert.equal((await request(proxy.port, '/subdir')).status, 404);
  });

  test('never serves anything outside the directory', async () => {
    for (const p of ['/../secret', '/..%2Fsecret', '/%2e%2e/secret', '/.%2e/secret', '/a/../../secret', '/.hidden', '/%00', '/sub%2Fdir']) {
      const r = await request(proxy.port, p);
      assert.ok(r.status === 400 || r.status === 404, `${p}: ${r.status}`);
      assert.ok(!r.body.toString().includes('secret'), p);
    }
    assert.equal((await request(proxy.port, '/escape')).status, 404);
    assert.equal((await request(proxy.port, '/inside', { headers: { range: 'bytes=0-3' } })).status, 206);
  });

  test('answers 405 to other methods', async () => {
    const r = await request(proxy.port, `/${ID}`, { method: 'DELETE' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'GET, HEAD');
  });
});

describe('bin/nydus-backend-proxy', () => {
  test('--help prints usage and exits 0; a bad flag is a one-line error with exit 2', async () => {
    const run = (args: string[]): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
      const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
      p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
      p.on('close', (code) => resolve({ code, out, err }));
    });
    const h = await run(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.out, /--blobs-dir/);
    const b = await run(['--bogus']);
    assert.equal(b.code, 2);
    assert.equal(b.err.trim().split('\n').length, 1);
    assert.match(b.err, /^nydus-backend-proxy: error: .*--bogus/);
    const m = await run(['--port', '0']);
    assert.equal(m.code, 2);
    assert.match(m.err, /--blobs-dir is required/);
  });

  test('serves, logs each request at debug level, and exits 0 on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nydus-proxy-cli-'));
    writeFileSync(join(dir, ID), DATA);
    const p = spawn(BIN, ['--blobs-dir', dir, '--port', '0', '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let err = '';
      p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        p.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
          if (m) resolve(m[1] as string);
        });
        p.on('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
      });
      const port = Number(new URL(url).port);
      const r = await request(port, `/${ID}`, { headers: { range: 'bytes=0-9' } });
      assert.equal(r.status, 206);
      assert.ok(r.body.equals(Buffer.from(DATA.subarray(0, 10))));
      const code = await new Promise<number | null>((resolve) => {
        p.on('exit', (c) => resolve(c));
        p.kill('SIGTERM');
      });
      assert.equal(code, 0);
      assert.match(err, new RegExp(`DEBUG GET /${ID} 206`));
      assert.equal(err.split('\n').filter((l) => l.includes(`GET /${ID}`)).length, 1);
    } finally {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
