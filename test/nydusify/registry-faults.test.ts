/**
 * Faults around a real registry (Debian's docker-registry on loopback) with nydusd's `registry`
 * backend and nydusify: the registry going away during lazy reads and coming back, an nginx
 * caching proxy (slice mode) that dies mid-run (fallback to the registry), and wrong credentials
 * for nydusify convert. Every test starts and stops its own registry / nginx / nydusd by PID;
 * reads from the FUSE mount run in child processes (`cat`).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { runCli, tempDir, cleanupTempDir, run } from '../helpers/mounts.js';
import { nydusdConfig, startNydusd, type NydusdHandle } from '../helpers/nydusd.js';
import { buildOciImage, pushImage, type OciImage } from '../helpers/oci-image.js';
import { startRegistry, type StartedRegistry } from '../helpers/registry.js';
import { startNginxProxy, type NginxProxy } from '../helpers/nginx.js';
import { RegistryClient } from '../../src/registry/registry-client.js';
import { prngBytes } from '../helpers/make-tree.js';
import { startFakeRegistry } from '../registry/fake-registry.js';

const sha = (b: Buffer | Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Files of the test image: distinct pseudo-random contents, several 1 MiB chunks each. */
const FILES: Record<string, number> = {
  'app/a.bin': 1_500_000,
  'app/b.bin': 2_300_000,
  'app/c.bin': 3_100_000,
  'app/d.bin': 900_000,
  'app/e.bin': 4_200_000,
  'app/big.bin': 8_400_000,
  'app/f.bin': 1_200_000,
};

interface BackendMetricsJson { read_amount_total: number; read_count: number; read_errors: number; backend_type: string }

/** Push `img` to `reg`, convert it with nydusify, fetch the bootstrap layer; returns the bootstrap path. */
async function pushAndConvert(work: string, img: OciImage, reg: StartedRegistry, opts: { creds?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  await pushImage(img.ref, `${reg.host}/src/app:1`, { tlsVerify: false, ...(opts.creds !== undefined ? { creds: opts.creds } : {}) });
  const r = await runCli('nydusify', ['convert', '--plain-http', '--source', `${reg.host}/src/app:1`, '--target', `${reg.host}/nydus/app:1`, '--work-dir', path.join(work, 'conv')], opts.env ? { env: opts.env } : {});
  assert.equal(r.code, 0, r.stderr);
  const client = new RegistryClient(reg.host, { plainHttp: true });
  try {
    const m = JSON.parse(Buffer.from((await client.getManifest('nydus/app', '1')).data).toString()) as { layers: Array<{ digest: string }> };
    const last = m.layers[m.layers.length - 1] as { digest: string };
    const parts: Buffer[] = [];
    for await (const c of client.blobStream('nydus/app', last.digest)) parts.push(Buffer.from(c));
    const bx = path.join(work, 'bx');
    fs.mkdirSync(bx, { recursive: true });
    fs.writeFileSync(path.join(bx, 'layer.tgz'), Buffer.concat(parts));
    const t = await run('tar', ['-xzf', path.join(bx, 'layer.tgz'), '-C', bx]);
    assert.equal(t.code, 0, t.stderr);
  } finally {
    await client.close();
  }
  return path.join(work, 'bx/image/image.boot');
}

/** Wait until `url` answers any HTTP status (or throw after `ms`). */
async function waitHttp(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get(url, { agent: false }, (res) => { res.resume(); resolve(true); });
      req.setTimeout(1000, () => req.destroy());
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`${url} did not answer within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function waitExit(p: ChildProcess, ms: number): Promise<boolean> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    p.once('exit', () => { clearTimeout(t); resolve(true); });
  });
}

/** Stop a child we spawned ourselves, by its PID. */
async function stopChild(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
  try { process.kill(p.pid, 'SIGTERM'); } catch { return; }
  if (!(await waitExit(p, 5000))) {
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    await waitExit(p, 5000);
  }
}

describe('registry faults: registry outage, proxy death, wrong credentials', () => {
  let work: string;
  let img: OciImage;
  const expected = new Map<string, string>();

  before(async () => {
    work = await tempDir(undefined, 'nydus-regfaults-');
    const l1 = path.join(work, 'l1');
    fs.mkdirSync(path.join(l1, 'app'), { recursive: true });
    for (const [f, n] of Object.entries(FILES)) {
      const data = prngBytes(f, n);
      fs.writeFileSync(path.join(l1, f), data);
      expected.set(f, sha(data));
    }
    img = await buildOciImage({ dir: path.join(work, 'img'), layers: [l1], name: 'app' });
  });
  after(async () => {
    await cleanupTempDir(work);
  });

  async function catOk(mnt: string, f: string): Promise<void> {
    const c = await run('cat', [path.join(mnt, f)], { timeoutMs: 60_000 });
    assert.equal(c.code, 0, `cat ${f}: ${c.stderr}`);
    assert.equal(sha(c.stdout), expected.get(f), `contents of ${f}`);
  }

  test('registry stopped during lazy reads: EIO within a bounded time, then the same read succeeds once it is back', async () => {
    const dir = path.join(work, 't1');
    fs.mkdirSync(dir, { recursive: true });
    let reg: StartedRegistry | undefined;
    let reg2: ChildProcess | undefined;
    let d: NydusdHandle | undefined;
    try {
      reg = await startRegistry({ dir: path.join(dir, 'registry') });
      const boot = await pushAndConvert(dir, img, reg);
      const mnt = path.join(dir, 'mnt');
      d = await startNydusd({ dir, bootstrap: boot, mountpoint: mnt, config: nydusdConfig({ backend: { type: 'registry', scheme: 'http', host: reg.host, repo: 'nydus/app', timeout: 2, retry_limit: 1 }, workDir: path.join(dir, 'cache'), amplifyIo: 0 }) });
      await catOk(mnt, 'app/a.bin');

      await reg.stop(); // by PID
      const t0 = Date.now();
      const failed = await run('cat', [path.join(mnt, 'app/c.bin')], { timeoutMs: 60_000 });
      const elapsed = Date.now() - t0;
      assert.notEqual(failed.code, 0, 'reading an uncached file with the registry down must fail');
      assert.notEqual(failed.code, -1, `cat hung until killed after ${elapsed} ms`);
      assert.match(failed.stderr, /Input\/output error/, failed.stderr);
      if (process.env['SHOW_MSG']) console.log(`# failing read: ${elapsed} ms: ${failed.stderr.trim()}`);
      assert.ok(elapsed < 20_000, `the failing read took ${elapsed} ms (timeout 2 s, retry_limit 1)`);

      // The same registry again: same config file (same port) and storage directory.
      const logFd = fs.openSync(path.join(dir, 'registry', 'registry2.log'), 'a');
      reg2 = spawn('docker-registry', ['serve', path.join(dir, 'registry', 'config.yml')], { stdio: ['ignore', logFd, logFd] });
      fs.closeSync(logFd);
      await waitHttp(`${reg.url}/v2/`, 10_000);

      await catOk(mnt, 'app/c.bin');
      await catOk(mnt, 'app/a.bin');
      const b = (await d.api('GET', '/api/v1/metrics/backend')).body as BackendMetricsJson;
      assert.ok(b.read_errors >= 1, `read_errors ${b.read_errors}`);
    } finally {
      await d?.stop();
      await stopChild(reg2);
      await reg?.stop();
    }
  });

  test('nginx caching proxy (slice) in front of the registry: reads go through it; SIGKILL mid-run falls back with no failed read; reads return to it when it is back', async () => {
    const dir = path.join(work, 't2');
    fs.mkdirSync(dir, { recursive: true });
    let reg: StartedRegistry | undefined;
    let ngx: NginxProxy | undefined;
    let d: NydusdHandle | undefined;
    try {
      reg = await startRegistry({ dir: path.join(dir, 'registry') });
      const boot = await pushAndConvert(dir, img, reg);
      ngx = await startNginxProxy({ dir: path.join(dir, 'nginx'), upstream: reg.url, slice: true });
      const mnt = path.join(dir, 'mnt');
      d = await startNydusd({
        dir, bootstrap: boot, mountpoint: mnt,
        config: nydusdConfig({
          backend: { type: 'registry', scheme: 'http', host: reg.host, repo: 'nydus/app', timeout: 5, retry_limit: 1, proxy: { url: ngx.url, fallback: true, ping_url: `${ngx.url}/v2/`, check_interval: 1 } },
          workDir: path.join(dir, 'cache'), amplifyIo: 0,
        }),
      });
      await catOk(mnt, 'app/a.bin');
      await catOk(mnt, 'app/b.bin');
      const log = ngx.accessLog();
      const blobLines = log.split('\n').filter((l) => /GET \/v2\/nydus\/app\/blobs\/sha256:[0-9a-f]{64}/.test(l));
      assert.ok(blobLines.length >= 2, `nginx saw no blob requests:\n${log}`);
      assert.ok(blobLines.every((l) => / (200|206) /.test(l)), log);

      // Kill nginx while a large file is being read, then read the rest.
      const big = run('cat', [path.join(mnt, 'app/big.bin')], { timeoutMs: 60_000 });
      await new Promise((r) => setTimeout(r, 30));
      await ngx.kill();
      const c = await big;
      assert.equal(c.code, 0, `cat big.bin across the proxy's death: ${c.stderr}`);
      assert.equal(sha(c.stdout), expected.get('app/big.bin'));
      for (const f of ['app/c.bin', 'app/d.bin', 'app/e.bin']) await catOk(mnt, f);
      assert.match(d.log(), /the proxy failed, reading from the registry/, 'no fallback was logged after nginx died');
      // A while later (health checks every second see the proxy down) reads still work.
      await new Promise((r) => setTimeout(r, 1500));
      await catOk(mnt, 'app/a.bin');
      // nginx comes back on the same port: once a health check passes, reads go through it again.
      const port = ngx.port;
      await ngx.stop();
      ngx = await startNginxProxy({ dir: path.join(dir, 'nginx-again'), upstream: reg.url, slice: true, port });
      const back = Date.now() + 15_000;
      while (!/the proxy is healthy again/.test(d.log()) && Date.now() < back) await new Promise((r) => setTimeout(r, 100));
      assert.match(d.log(), /the proxy is healthy again/);
      await catOk(mnt, 'app/f.bin');
      const again = ngx.accessLog().split('\n').filter((l) => /GET \/v2\/nydus\/app\/blobs\/sha256:[0-9a-f]{64}/.test(l));
      assert.ok(again.length >= 1, `reads did not return to the proxy:\n${ngx.accessLog()}`);
      const b = (await d.api('GET', '/api/v1/metrics/backend')).body as BackendMetricsJson;
      assert.equal(b.read_errors, 0, JSON.stringify(b));
      assert.ok(b.read_count > 0);
    } finally {
      await d?.stop();
      await ngx?.stop();
      await reg?.stop();
    }
  });

  test('bearer tokens that expire every few requests are renewed under nydusd\'s reads, with no failed read', async () => {
    const dir = path.join(work, 't-token');
    fs.mkdirSync(dir, { recursive: true });
    const fake = await startFakeRegistry({ usesPerToken: 2, users: { carol: 'tok3n' } });
    let d: NydusdHandle | undefined;
    try {
      // A Nydus image built from the same files; its blob served by the token-protected registry.
      const src = path.join(dir, 'src');
      fs.mkdirSync(path.join(src, 'app'), { recursive: true });
      for (const f of Object.keys(FILES)) fs.copyFileSync(path.join(work, 'l1', f), path.join(src, f));
      const boot = path.join(dir, 'image.boot');
      const blobs = path.join(dir, 'blobs');
      const r = await runCli('nydus-image', ['create', '-B', boot, '-D', blobs, src]);
      assert.equal(r.code, 0, r.stderr.toString());
      for (const b of fs.readdirSync(blobs)) fake.blobs.set(`sha256:${b}`, fs.readFileSync(path.join(blobs, b)));
      const mnt = path.join(dir, 'mnt');
      d = await startNydusd({
        dir, bootstrap: boot, mountpoint: mnt,
        config: nydusdConfig({
          backend: { type: 'registry', scheme: 'http', host: fake.host, repo: 'lib/app', auth: Buffer.from('carol:tok3n').toString('base64'), retry_limit: 1 },
          workDir: path.join(dir, 'cache'), amplifyIo: 0,
        }),
      });
      for (const f of Object.keys(FILES)) await catOk(mnt, f);
      const b = (await d.api('GET', '/api/v1/metrics/backend')).body as BackendMetricsJson;
      assert.equal(b.read_errors, 0, JSON.stringify(b));
      assert.ok(b.read_count >= 6, JSON.stringify(b));
      // Two uses per token: the tokens were renewed again and again, each with carol's credentials.
      assert.ok(fake.tokenRequests.length >= Math.floor(b.read_count / 2), `${fake.tokenRequests.length} token requests for ${b.read_count} reads`);
      assert.ok(fake.tokenRequests.every((t) => t.scope === 'repository:lib/app:pull' && t.basic !== undefined));
    } finally {
      await d?.stop();
      await fake.close();
    }
  });

  test('nydusify convert with wrong credentials fails with one line naming the registry; right ones succeed, also from a credential helper', async () => {
    const dir = path.join(work, 't3');
    fs.mkdirSync(dir, { recursive: true });
    let reg: StartedRegistry | undefined;
    try {
      reg = await startRegistry({ dir: path.join(dir, 'registry'), auth: { user: 'alice', pass: 's3cret' } });
      await pushImage(img.ref, `${reg.host}/src/app:1`, { tlsVerify: false, creds: 'alice:s3cret' });
      const dockerConfig = (pass: string): string => {
        const cfgDir = path.join(dir, `docker-${pass}`);
        fs.mkdirSync(cfgDir, { recursive: true });
        fs.writeFileSync(path.join(cfgDir, 'config.json'), JSON.stringify({ auths: { [reg!.host]: { auth: Buffer.from(`alice:${pass}`).toString('base64') } } }));
        return cfgDir;
      };
      const convert = (cfgDir: string): ReturnType<typeof runCli> => runCli('nydusify', ['convert', '--plain-http', '--source', `${reg!.host}/src/app:1`, '--target', `${reg!.host}/nydus/app:1`, '--work-dir', path.join(dir, 'conv')], { env: { ...process.env, DOCKER_CONFIG: cfgDir }, timeoutMs: 120_000 });

      const bad = await convert(dockerConfig('wrong'));
      assert.notEqual(bad.code, 0, 'convert with a wrong password must fail');
      assert.notEqual(bad.code, -1, 'convert with a wrong password hung');
      const msg = bad.stderr.trim();
      if (process.env['SHOW_MSG']) console.log(`# convert with a wrong password: ${msg}`);
      assert.equal(msg.split('\n').length, 1, `expected a one-line message, got:\n${msg}`);
      assert.ok(msg.includes(reg.host), `the message should name ${reg.host}: ${msg}`);
      assert.doesNotMatch(msg, /wrong/, 'the message must not leak the password');

      const good = await convert(dockerConfig('s3cret'));
      assert.equal(good.code, 0, good.stderr);
      const inspect = await run('skopeo', ['inspect', '--tls-verify=false', '--creds', 'alice:s3cret', `docker://${reg.host}/nydus/app:1`]);
      assert.equal(inspect.code, 0, inspect.stderr);

      // The same through a credential helper (credHelpers), as `docker login` with a helper leaves it.
      const helperDir = path.join(dir, 'helper-bin');
      fs.mkdirSync(helperDir, { recursive: true });
      fs.writeFileSync(path.join(helperDir, 'docker-credential-testhelper'), `#!/bin/sh\nread -r server\n[ "$server" = "${reg.host}" ] && echo '{"Username":"alice","Secret":"s3cret"}' && exit 0\necho "credentials not found in native keychain"; exit 1\n`, { mode: 0o755 });
      const helperCfg = path.join(dir, 'docker-helper');
      fs.mkdirSync(helperCfg, { recursive: true });
      fs.writeFileSync(path.join(helperCfg, 'config.json'), JSON.stringify({ auths: { [reg.host]: {} }, credHelpers: { [reg.host]: 'testhelper' } }));
      const viaHelper = await runCli('nydusify', ['convert', '--plain-http', '--source', `${reg.host}/src/app:1`, '--target', `${reg.host}/nydus/app:2`, '--work-dir', path.join(dir, 'conv')], { env: { ...process.env, DOCKER_CONFIG: helperCfg, PATH: `${helperDir}:${process.env['PATH'] ?? ''}` }, timeoutMs: 120_000 });
      assert.equal(viaHelper.code, 0, viaHelper.stderr);
    } finally {
      await reg?.stop();
    }
  });
});
