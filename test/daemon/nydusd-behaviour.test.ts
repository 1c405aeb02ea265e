/**
 * nydusd's behaviour: on-demand fetching, the shared persistent blob cache, concurrency, faults
 * (corrupt chunk, backend gone, daemon killed, bad API requests) and nydusctl.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { prngBytes } from '../helpers/make-tree.js';
import { runCli, tempDir, cleanupTempDir, isMounted, run } from '../helpers/mounts.js';
import { nydusdConfig, startNydusd, apiMount, corruptChunkCopy } from '../helpers/nydusd.js';
import { startBackendProxy } from '../../src/cli/backend-proxy/server.js';
import { RafsImage } from '../../src/image/rafs-image.js';
import { fileSource } from '../../src/image/byte-source.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface Metrics { read_count: number; read_amount_total: number; read_errors: number }

describe('nydusd behaviour', () => {
  let work: string;
  let src: string;
  let boot: string;
  let blobs: string;
  const files = new Map<string, Buffer>();

  before(async () => {
    work = await tempDir(undefined, 'nydusd-beh-');
    src = path.join(work, 'src');
    fs.mkdirSync(`${src}/lib`, { recursive: true });
    // 40 files of 64 KiB..3 MiB, plus many small ones: chunks from many places of the blob.
    for (let k = 0; k < 40; k++) {
      const data = prngBytes(`f${k}`, 65536 + k * 77777);
      files.set(`lib/f${k}.bin`, data);
      fs.writeFileSync(`${src}/lib/f${k}.bin`, data);
    }
    for (let k = 0; k < 200; k++) {
      const data = Buffer.from(`small file ${k}\n`.repeat(k + 1));
      files.set(`s${k}.txt`, data);
      fs.writeFileSync(`${src}/s${k}.txt`, data);
    }
    boot = path.join(work, 'boot');
    blobs = path.join(work, 'blobs');
    const r = await runCli('nydus-image', ['create', '--features', 'blob-toc', '-B', boot, '-D', blobs, src]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => { await cleanupTempDir(work); });

  test('right after mounting, reading one small file fetches only its chunk (plus amplification); nothing else with prefetch off', async () => {
    const dir = await tempDir(undefined, 'nydusd-od-');
    const mnt = path.join(dir, 'mnt');
    const d = await startNydusd({ dir, config: nydusdConfig({ backend: { type: 'localfs', dir: blobs }, workDir: `${dir}/cache`, amplifyIo: 0 }), bootstrap: boot, mountpoint: mnt });
    try {
      const before = (await d.api('GET', '/api/v1/metrics/backend')).body as Metrics;
      assert.equal(before.read_count, 0, 'nothing fetched at mount');
      assert.equal(fs.readFileSync(`${mnt}/s5.txt`, 'utf8'), (files.get('s5.txt') as Buffer).toString());
      const afterOne = (await d.api('GET', '/api/v1/metrics/backend')).body as Metrics;
      assert.equal(afterOne.read_count, 1);
      assert.ok(afterOne.read_amount_total < 4096, `fetched ${afterOne.read_amount_total} bytes for a small file`);
      // Listing and stat'ing everything reads metadata only.
      await run('find', [mnt, '-ls']);
      await new Promise((r) => setTimeout(r, 300));
      const later = (await d.api('GET', '/api/v1/metrics/backend')).body as Metrics;
      assert.equal(later.read_count, 1, 'metadata walk and idle time fetched nothing');
      const fsm = (await d.api('GET', '/api/v1/metrics')).body as { data_read: number; fop_hits: number[] };
      assert.equal(fsm.data_read, (files.get('s5.txt') as Buffer).length);
      assert.ok((fsm.fop_hits[4] ?? 0) >= 1, 'READ counted at index 4');
      const pattern = (await d.api('GET', '/api/v1/metrics/pattern')).body as Array<{ path: string }>;
      assert.deepEqual(pattern.map((p) => p.path), ['/s5.txt']);
    } finally {
      await d.stop();
      await cleanupTempDir(dir);
    }
  });

  test('with amplify_io, one read brings its neighbours in the same request', async () => {
    const dir = await tempDir(undefined, 'nydusd-amp-');
    const mnt = path.join(dir, 'mnt');
    const d = await startNydusd({ dir, config: nydusdConfig({ backend: { type: 'localfs', dir: blobs }, workDir: `${dir}/cache`, amplifyIo: 1 << 20 }), bootstrap: boot, mountpoint: mnt });
    try {
      fs.readFileSync(`${mnt}/s0.txt`);
      const m = (await d.api('GET', '/api/v1/metrics/backend')).body as Metrics;
      assert.equal(m.read_count, 1);
      const c = (await d.api('GET', '/api/v1/metrics/blobcache')).body as { misses: number };
      assert.ok(c.misses >= 1);
    } finally {
      await d.stop();
      await cleanupTempDir(dir);
    }
  });

  test('the cache serves a second mount, another image sharing the blob, and a restarted daemon with zero backend reads', async () => {
    const dir = await tempDir(undefined, 'nydusd-cache-');
    const cache = path.join(dir, 'cache');
    const cfg = nydusdConfig({ backend: { type: 'localfs', dir: blobs }, workDir: cache });
    const m1 = path.join(dir, 'm1');
    let d = await startNydusd({ dir, config: cfg, bootstrap: boot, mountpoint: m1 });
    try {
      for (const [name, data] of files) assert.equal(sha(fs.readFileSync(path.join(m1, name))), sha(data), name);
      const first = (await d.api('GET', '/api/v1/metrics/backend')).body as Metrics;
      assert.ok(first.read_count > 0);
      // Second mount of the same image in the same daemon.
      const m2 = path.join(dir, 'm2');
      assert.equal((await apiMount(d, m2, boot, cfg)).status, 204);
      for (const [name, data] of files) assert.equal(sha(fs.readFileSync(path.join(m2, name))), sha(data), name);
      const second = (await d.api('GET', `/api/v1/metrics/backend?id=${encodeURIComponent(m2)}`)).body as Metrics;
      // The backend object is shared by both mounts: its count must not have grown.
      assert.equal(second.read_count, first.read_count, 'second mount fetched nothing');
      // Another image (built with --blob-inline-meta? no: a merge of this layer) sharing the blob.
      const merged = path.join(dir, 'merged.boot');
      assert.equal((await runCli('nydus-image', ['merge', '-B', merged, boot])).code, 0);
      const m3 = path.join(dir, 'm3');
      assert.equal((await apiMount(d, m3, merged, cfg)).status, 204);
      for (const [name, data] of files) assert.equal(sha(fs.readFileSync(path.join(m3, name))), sha(data), name);
      const third = (await d.api('GET', `/api/v1/metrics/backend?id=${encodeURIComponent(m3)}`)).body as Metrics;
      assert.equal(third.read_count, first.read_count, 'image sharing the blob fetched nothing');
    } finally {
      await d.stop();
    }
    // Restart: a new daemon on the same cache directory.
    d = await startNydusd({ dir, config: cfg, bootstrap: boot, mountpoint: m1, name: 'second' });
    try {
      for (const [name, data] of files) assert.equal(sha(fs.readFileSync(path.join(m1, name))), sha(data), name);
      const m = (await d.api('GET', '/api/v1/metrics/backend')).body as Metrics;
      assert.equal(m.read_count, 0, 'restarted daemon read everything from the cache');
    } finally {
      await d.stop();
      await cleanupTempDir(dir);
    }
  });

  test('prefetch: the bootstrap\'s prefetch table (fs_prefetch) and prefetch_all fill the cache in the background', async () => {
    const dir = await tempDir(undefined, 'nydusd-pf-');
    const pboot = path.join(dir, 'p.boot');
    const pblobs = path.join(dir, 'pblobs');
    const c = await runCli('nydus-image', ['create', '--prefetch-policy', 'fs', '-B', pboot, '-D', pblobs, src], { input: '/lib/f7.bin\n/s9.txt\n' });
    assert.equal(c.code, 0, c.stderr);
    const img = new RafsImage(fileSource(pboot));
    assert.equal(img.prefetchNids().length, 2);
    img.close();
    const mnt = path.join(dir, 'mnt');
    let d = await startNydusd({ dir, config: nydusdConfig({ backend: { type: 'localfs', dir: pblobs }, workDir: `${dir}/cache`, prefetch: true, prefetchAll: false }), bootstrap: pboot, mountpoint: mnt });
    try {
      const f7 = (files.get('lib/f7.bin') as Buffer).length;
      let cache = { prefetch_data_amount: 0, prefetch_end_time_secs: 0 };
      for (let k = 0; k < 200 && cache.prefetch_end_time_secs === 0; k++) {
        await new Promise((r) => setTimeout(r, 50));
        cache = (await d.api('GET', '/api/v1/metrics/blobcache')).body as typeof cache;
      }
      assert.ok(cache.prefetch_data_amount > 0, 'the prefetch table was fetched');
      const before = (await d.api('GET', '/api/v1/metrics/backend')).body as Metrics;
      assert.ok(before.read_amount_total < f7 + 1_000_000, `prefetch fetched ${before.read_amount_total} bytes: only the listed files (+ amplification)`);
      const r = await run('cat', [path.join(mnt, 'lib/f7.bin'), path.join(mnt, 's9.txt')]);
      assert.equal(r.code, 0);
      const after = (await d.api('GET', '/api/v1/metrics/backend')).body as Metrics;
      assert.equal(after.read_count, before.read_count, 'prefetched files read without the backend');
    } finally {
      await d.stop();
    }
    d = await startNydusd({ dir, config: nydusdConfig({ backend: { type: 'localfs', dir: pblobs }, workDir: `${dir}/cache2`, prefetch: true, prefetchAll: true }), bootstrap: pboot, mountpoint: mnt, name: 'all' });
    try {
      const blobSize = fs.statSync(path.join(pblobs, fs.readdirSync(pblobs)[0] as string)).size;
      let cache = { prefetch_data_amount: 0, prefetch_begin_time_secs: 0, prefetch_end_time_secs: 0 };
      for (let k = 0; k < 400 && cache.prefetch_end_time_secs === 0; k++) {
        await new Promise((r) => setTimeout(r, 50));
        cache = (await d.api('GET', '/api/v1/metrics/blobcache')).body as typeof cache;
      }
      assert.ok(cache.prefetch_begin_time_secs > 0 && cache.prefetch_end_time_secs >= cache.prefetch_begin_time_secs, JSON.stringify(cache));
      assert.ok(cache.prefetch_data_amount >= blobSize * 0.9, `prefetch_all fetched ${cache.prefetch_data_amount} of ${blobSize}`);
      const before = (await d.api('GET', '/api/v1/metrics/backend')).body as Metrics;
      const r = await run('tar', ['-cf', '/dev/null', '-C', mnt, '.']);
      assert.equal(r.code, 0);
      const walked = await run('bash', ['-c', `cat $(find ${mnt} -type f) | sha256sum`]);
      assert.equal(walked.code, 0);
      const after = (await d.api('GET', '/api/v1/metrics/backend')).body as Metrics;
      assert.equal(after.read_count, before.read_count, 'everything was prefetched');
    } finally {
      await d.stop();
      await cleanupTempDir(dir);
    }
  });

  test('a mount that fails after its prefetch has started is refused with a message; the daemon stays up and mounts the image next', async () => {
    const dir = await tempDir(undefined, 'nydusd-pffail-');
    const d = await startNydusd({ dir });
    try {
      const notDir = path.join(dir, 'a-file');
      fs.writeFileSync(notDir, 'x');
      // prefetch_all: the prefetch starts as soon as the blobs are open, before the mount fails.
      const config = nydusdConfig({ backend: { type: 'localfs', dir: blobs }, workDir: `${dir}/cache`, prefetch: true, prefetchAll: true });
      const bad = await d.api('POST', `/api/v1/mount?mountpoint=${encodeURIComponent(notDir)}`, { source: boot, fs_type: 'rafs', config });
      assert.ok(bad.status >= 400, `${bad.status} ${JSON.stringify(bad.body)}`);
      assert.match(String((bad.body as { message?: unknown }).message), /a-file/);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(((await d.api('GET', '/api/v1/daemon')).body as { state: string }).state, 'RUNNING');
      const mnt = path.join(dir, 'mnt');
      const ok = await apiMount(d, mnt, boot, config);
      assert.equal(ok.status, 204, JSON.stringify(ok.body));
      assert.equal(sha(fs.readFileSync(path.join(mnt, 'lib/f3.bin'))), sha(files.get('lib/f3.bin') as Buffer));
      assert.doesNotMatch(d.log(), /unhandled|uncaught/i);
    } finally {
      await d.stop();
      await cleanupTempDir(dir);
    }
  });

  test('32 readers at once over the same and different files get the right bytes', async () => {
    const dir = await tempDir(undefined, 'nydusd-conc-');
    const mnt = path.join(dir, 'mnt');
    const d = await startNydusd({ dir, config: nydusdConfig({ backend: { type: 'localfs', dir: blobs }, workDir: `${dir}/cache` }), bootstrap: boot, mountpoint: mnt });
    try {
      const names = [...files.keys()].filter((n) => n.startsWith('lib/'));
      const jobs = Array.from({ length: 32 }, (_, k) => names[k % 8 === 0 ? 0 : k % names.length] as string);
      const results = await Promise.all(jobs.map(async (n) => ({ n, h: sha(await fsp.readFile(path.join(mnt, n))) })));
      for (const r of results) assert.equal(r.h, sha(files.get(r.n) as Buffer), r.n);
      const m = (await d.api('GET', '/api/v1/metrics')).body as { fop_errors: number[] };
      assert.equal(m.fop_errors.reduce((a, b) => a + b, 0) - (m.fop_errors[9] ?? 0), 0, 'no errors except lookups of absent names');
    } finally {
      await d.stop();
      await cleanupTempDir(dir);
    }
  });

  test('a corrupted chunk fails that read with EIO when digest_validate is on; the daemon stays up and other files read', async () => {
    const dir = await tempDir(undefined, 'nydusd-corrupt-');
    const bad = path.join(dir, 'blobs');
    corruptChunkCopy(boot, blobs, bad, '/lib/f3.bin');
    const mnt = path.join(dir, 'mnt');
    const d = await startNydusd({ dir, config: nydusdConfig({ backend: { type: 'localfs', dir: bad }, workDir: `${dir}/cache`, digestValidate: true, amplifyIo: 0 }), bootstrap: boot, mountpoint: mnt });
    try {
      const r = await run('cat', [path.join(mnt, 'lib/f3.bin')]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Input\/output error/);
      assert.equal(sha(fs.readFileSync(path.join(mnt, 'lib/f4.bin'))), sha(files.get('lib/f4.bin') as Buffer));
      const c = (await d.api('GET', '/api/v1/metrics/blobcache')).body as { errors: number };
      assert.ok(c.errors >= 1);
      const fsm = (await d.api('GET', '/api/v1/metrics')).body as { fop_errors: number[] };
      assert.ok((fsm.fop_errors[4] ?? 0) >= 1, 'read error counted');
      assert.match(d.log(), /digest|differs/);
      assert.equal((await d.api('GET', '/api/v1/daemon')).status, 200);
    } finally {
      await d.stop();
      await cleanupTempDir(dir);
    }
  });

  test('backend gone: EIO after bounded retries, not a hang; reads work again when it returns', async () => {
    const dir = await tempDir(undefined, 'nydusd-http-');
    let proxy = await startBackendProxy({ blobsDir: blobs, host: '127.0.0.1', port: 0 });
    const port = proxy.port;
    const mnt = path.join(dir, 'mnt');
    const d = await startNydusd({ dir, config: nydusdConfig({ backend: { type: 'http', addr: proxy.url, retry_limit: 1, timeout: 2 }, workDir: `${dir}/cache`, amplifyIo: 0 }), bootstrap: boot, mountpoint: mnt });
    try {
      // The proxy runs in this process: read through a child so its event loop stays free.
      const first = await run('cat', [path.join(mnt, 'lib/f1.bin')], { timeoutMs: 60_000 });
      assert.equal(first.code, 0, first.stderr);
      assert.equal(sha(first.stdout), sha(files.get('lib/f1.bin') as Buffer));
      await proxy.close();
      const t0 = Date.now();
      const r = await run('cat', [path.join(mnt, 'lib/f2.bin')], { timeoutMs: 60_000 });
      assert.notEqual(r.code, 0, 'read with the backend gone must fail');
      assert.match(r.stderr, /Input\/output error/);
      assert.ok(Date.now() - t0 < 60_000);
      const m = (await d.api('GET', '/api/v1/metrics/backend')).body as Metrics;
      assert.ok(m.read_errors >= 1);
      proxy = await startBackendProxy({ blobsDir: blobs, host: '127.0.0.1', port });
      const again = await run('cat', [path.join(mnt, 'lib/f2.bin')], { timeoutMs: 60_000 });
      assert.equal(again.code, 0, `read after the backend returned: ${again.stderr}`);
      assert.equal(sha(again.stdout), sha(files.get('lib/f2.bin') as Buffer));
    } finally {
      await d.stop();
      await proxy.close().catch(() => undefined);
      await cleanupTempDir(dir);
    }
  });

  test('malformed API requests get 4xx with a message and the daemon is unaffected; nydusctl works', async () => {
    const dir = await tempDir(undefined, 'nydusd-api-');
    const mnt = path.join(dir, 'mnt');
    const d = await startNydusd({ dir, config: nydusdConfig({ backend: { type: 'localfs', dir: blobs }, workDir: `${dir}/cache` }), bootstrap: boot, mountpoint: mnt });
    try {
      const bads: Array<[string, string, unknown]> = [
        ['GET', '/api/v1/nope', undefined],
        ['PUT', '/api/v1/daemon', { log_level: 'loud' }],
        ['POST', '/api/v1/mount', { source: boot }],
        ['POST', `/api/v1/mount?mountpoint=${encodeURIComponent(`${dir}/m2`)}`, { source: boot, config: '{not json' }],
        ['POST', `/api/v1/mount?mountpoint=${encodeURIComponent(`${dir}/m2`)}`, { source: '/nonexistent/boot', config: '{"device":{"backend":{"type":"localfs","config":{"dir":"/"}}}}' }],
        ['DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent('/not/mounted')}`, undefined],
        ['GET', '/api/v1/metrics?id=/nope', undefined],
      ];
      for (const [m, u, b] of bads) {
        const r = await d.api(m, u, b);
        assert.ok(r.status >= 400 && r.status < 500, `${m} ${u} → ${r.status} ${JSON.stringify(r.body)}`);
        assert.equal(typeof (r.body as { message?: unknown }).message, 'string');
      }
      const info = (await d.api('GET', '/api/v1/daemon')).body as { state: string; id: string };
      assert.equal(info.state, 'RUNNING');
      const st = fs.statSync(d.sock);
      assert.equal(st.mode & 0o777, 0o600);
      const ctl = async (args: string[]): Promise<string> => {
        const r = await runCli('nydusctl', ['--sock', d.sock, ...args]);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.toString();
      };
      assert.match(await ctl(['info']), /RUNNING/);
      fs.readFileSync(path.join(mnt, 's1.txt'));
      assert.match(await ctl(['metrics', 'backend']), /read_count/);
      assert.match(await ctl(['--raw', 'metrics', 'fs']), /"data_read"/);
      assert.match(await ctl(['metrics', 'pattern']), /s1\.txt/);
      assert.match(await ctl(['set', 'log-level', 'warn']), /warn/);
      const cfgFile = path.join(dir, 'c.json');
      fs.writeFileSync(cfgFile, nydusdConfig({ backend: { type: 'localfs', dir: blobs }, workDir: `${dir}/cache` }));
      const m2 = path.join(dir, 'm2');
      fs.mkdirSync(m2);
      d.mounts.add(m2);
      await ctl(['mount', '--source', boot, '--config', cfgFile, '--mountpoint', m2]);
      assert.ok(isMounted(m2));
      assert.equal(fs.readFileSync(path.join(m2, 's7.txt'), 'utf8'), (files.get('s7.txt') as Buffer).toString());
      await ctl(['umount', '--mountpoint', m2]);
      assert.equal(isMounted(m2), false);
      const bad = await runCli('nydusctl', ['--sock', d.sock, 'umount', '--mountpoint', m2]);
      assert.notEqual(bad.code, 0);
      assert.equal(bad.stderr.trim().split('\n').length, 1);
    } finally {
      await d.stop();
      await cleanupTempDir(dir);
    }
  });

  test('a killed daemon leaves a dead mount that the test still unmounts; SIGTERM unmounts cleanly', async () => {
    const dir = await tempDir(undefined, 'nydusd-kill-');
    const mnt = path.join(dir, 'mnt');
    const cfg = nydusdConfig({ backend: { type: 'localfs', dir: blobs }, workDir: `${dir}/cache` });
    const d = await startNydusd({ dir, config: cfg, bootstrap: boot, mountpoint: mnt });
    await d.kill();
    assert.equal(isMounted(mnt), false, 'kill() unmounted the dead mount');
    const d2 = await startNydusd({ dir, config: cfg, bootstrap: boot, mountpoint: mnt, name: 'again' });
    assert.equal(fs.readFileSync(path.join(mnt, 's3.txt'), 'utf8'), (files.get('s3.txt') as Buffer).toString());
    const exited = new Promise<number | null>((r) => d2.child.once('exit', (code) => r(code)));
    d2.child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(isMounted(mnt), false, 'SIGTERM unmounted');
    await d2.stop();
    await cleanupTempDir(dir);
  });

  test('a bad config is refused before anything is mounted', async () => {
    const dir = await tempDir(undefined, 'nydusd-badcfg-');
    const cfg = path.join(dir, 'bad.json');
    fs.writeFileSync(cfg, JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: blobs } }, cache: { type: 'blobcache', config: {} } } }));
    const mnt = path.join(dir, 'mnt');
    fs.mkdirSync(mnt);
    const r = await runCli('nydusd', ['--config', cfg, '--bootstrap', boot, '--mountpoint', mnt], { timeoutMs: 30_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /work_dir/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(isMounted(mnt), false);
    await cleanupTempDir(dir);
  });
});
