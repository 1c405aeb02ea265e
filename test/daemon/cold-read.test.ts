/**
 * Cold reads with no prefetch list: once a mount's reads go quiet, the rest of the image streams
 * in the background (cold_read.background_stream), so a full read afterwards needs no backend
 * request; nydusctl metrics startup shows the mount's first-read latency, backend traffic and
 * prefetch hits.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeMessyTree } from '../helpers/make-tree.js';
import { compareTrees } from '../helpers/compare-tree.js';
import { runCliText } from '../helpers/mounts.js';
import { imageWithDaemon, nydusdConfig, withApiMount } from '../helpers/nydusd.js';
import { prngBytes } from '../helpers/make-tree.js';
import { LinkEstimator } from '../../src/storage/cache/link-estimator.js';

interface Startup {
  backend_requests: number; backend_bytes: number; prefetch_requests: number; prefetch_hits: number; reads: number; bytes_read: number;
  first_read_latency_ms: { count: number; counts: number[] }; background_stream: { begin_unix_ms: number; end_unix_ms: number };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('LinkEstimator', () => {
  test('amplify() is bandwidth × round trip, within [base / 4, base × 4], base until measured', () => {
    const l = new LinkEstimator();
    assert.equal(l.amplify(1 << 20), 1 << 20);
    l.sample(4096, 20);
    assert.equal(l.rttMs, 20);
    assert.equal(l.amplify(1 << 20), 1 << 20, 'no bandwidth yet');
    // 1 MiB in 20 ms + 20 ms: 52429 bytes/ms; × 20 ms ≈ 1 MiB.
    l.sample(1 << 20, 40);
    assert.equal(l.amplify(1 << 20), Math.round((((1 << 20) / 20) * 20) / 65536) * 65536);
    l.sample(1 << 20, 24);
    assert.ok(l.amplify(1 << 20) > 1 << 20, 'a faster link brings more per miss');
    assert.equal(l.amplify(0), 0, 'amplification off stays off');
    const fast = new LinkEstimator();
    fast.sample(4096, 0.3);
    fast.sample(1 << 20, 3.3);
    assert.equal(fast.amplify(1 << 20), 1 << 18, 'a local link keeps a quarter of amplify_io');
  });
});

describe('cold reads: sibling files', () => {
  const f = imageWithDaemon('nydusd-siblings-test-', (src) => {
    fs.mkdirSync(path.join(src, 'a'));
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, 'a', `s${String(i).padStart(2, '0')}`), prngBytes(`s${i}`, 2000 + i * 50));
    fs.mkdirSync(path.join(src, 'b'));
    fs.writeFileSync(path.join(src, 'b/big'), prngBytes('big', 3 << 20));
  });

  for (const on of [true, false]) {
    test(`sibling_files ${on ? 'on: reading the last small file of a directory brings the others in the same request' : 'off: the others are fetched when read'}`, async () => {
      const { work, src, d } = f;
      const cfg = nydusdConfig({
        backend: { type: 'localfs', dir: f.blobs }, workDir: `${work}/cache-${on}`,
        extra: { cold_read: { sibling_files: on, adaptive_amplify: false } },
      });
      const mnt = path.join(work, `mnt-${on}`);
      await withApiMount(d, mnt, f.boot, cfg, async (q) => {
        assert.ok(fs.readFileSync(path.join(mnt, 'a/s19')).equals(fs.readFileSync(path.join(src, 'a/s19'))));
        const one = (await d.api('GET', `/api/v1/metrics/startup${q}`)).body as Startup;
        assert.equal(one.backend_requests, 1);
        for (let i = 0; i < 19; i++) {
          const n = `a/s${String(i).padStart(2, '0')}`;
          assert.ok(fs.readFileSync(path.join(mnt, n)).equals(fs.readFileSync(path.join(src, n))), n);
        }
        const all = (await d.api('GET', `/api/v1/metrics/startup${q}`)).body as Startup;
        if (on) assert.equal(all.backend_requests, 1, 'the siblings came with the first request');
        else assert.ok(all.backend_requests > 1, `without siblings the earlier files need requests of their own (${all.backend_requests})`);
      });
    });
  }
});

describe('cache warming without a mount (PUT /api/v1/daemon/prefetch)', () => {
  const f = imageWithDaemon('nydusd-warm-test-', (src) => {
    fs.mkdirSync(path.join(src, 'a'));
    fs.writeFileSync(path.join(src, 'a/one'), prngBytes('one', 300_000));
    fs.writeFileSync(path.join(src, 'a/two'), prngBytes('two', 2_500_000));
    fs.mkdirSync(path.join(src, 'b'));
    fs.writeFileSync(path.join(src, 'b/other'), prngBytes('other', 3_000_000));
  });

  test('the listed files are fetched into the cache; a later mount reads them with no backend request', async () => {
    const { work, src, d } = f;
    const cfg = nydusdConfig({ backend: { type: 'localfs', dir: f.blobs }, workDir: `${work}/cache`, amplifyIo: 0, extra: { cold_read: { adaptive_amplify: false } } });
    const bad = await d.api('PUT', '/api/v1/daemon/prefetch', { source: f.boot, config: cfg, prefetch_files: 'no' });
    assert.equal(bad.status, 400);
    const missing = await d.api('PUT', '/api/v1/daemon/prefetch', { source: `${work}/none.boot`, config: cfg, prefetch_files: ['/a/one'] });
    assert.ok(missing.status >= 400, 'a missing bootstrap is refused');
    const r = await d.api('PUT', '/api/v1/daemon/prefetch', { source: f.boot, config: cfg, prefetch_files: ['/a/two', '/a/one', '/not/there'] });
    assert.equal(r.status, 204, JSON.stringify(r.body));
    await waitFor('the warming to end', async () => ((await d.api('GET', '/api/v1/daemon')).body as { prefetching: number }).prefetching === 0 ? true : undefined);
    await withApiMount(d, path.join(work, 'mnt'), f.boot, cfg, async (q) => {
      for (const n of ['a/one', 'a/two']) assert.ok(fs.readFileSync(path.join(work, 'mnt', n)).equals(fs.readFileSync(path.join(src, n))), n);
      assert.equal(((await d.api('GET', `/api/v1/metrics/startup${q}`)).body as Startup).backend_requests, 0, 'the warmed files came from the cache');
      assert.ok(fs.readFileSync(path.join(work, 'mnt', 'b/other')).equals(fs.readFileSync(path.join(src, 'b/other'))));
      assert.ok(((await d.api('GET', `/api/v1/metrics/startup${q}`)).body as Startup).backend_requests > 0, 'an unlisted file was not warmed');
    });
  });
});

describe('cold reads: background streaming and start-up metrics', () => {
  const f = imageWithDaemon('nydusd-coldread-test-', (src) => makeMessyTree(src));

  for (const driver of ['fusedev', 'erofs'] as const) {
    test(`${driver}: after the reads go quiet the whole image streams in; a full read afterwards makes no backend request`, async () => {
      const { work, src, d } = f;
      const mnt = path.join(work, `mnt-${driver}`);
      const cfg = nydusdConfig({
        backend: { type: 'localfs', dir: f.blobs }, workDir: `${work}/cache-${driver}`,
        extra: { fs_driver: driver, cold_read: { background_stream: true, quiet_ms: 300 } },
      });
      await withApiMount(d, mnt, f.boot, cfg, async (q) => {
        const first = fs.readdirSync(path.join(mnt)).find((n) => fs.statSync(path.join(mnt, n)).isFile());
        if (first) fs.readFileSync(path.join(mnt, first));
        const s = await waitFor('the background stream to end', async () => {
          const b = (await d.api('GET', `/api/v1/metrics/startup${q}`)).body as Startup;
          return b.background_stream.end_unix_ms > 0 ? b : undefined;
        });
        assert.ok(s.background_stream.begin_unix_ms > 0);
        assert.ok(s.prefetch_requests > 0, 'the stream fetched through prefetch');
        const before = s.backend_requests;
        const diffs = await compareTrees(src, mnt);
        assert.deepEqual(diffs, [], diffs.slice(0, 20).join('\n'));
        const afterRead = (await d.api('GET', `/api/v1/metrics/startup${q}`)).body as Startup;
        assert.equal(afterRead.backend_requests, before, 'the full read needed no backend request');
        if (driver === 'fusedev') assert.ok(afterRead.bytes_read > 0 && afterRead.reads > 0, JSON.stringify(afterRead));
        // (erofs: the daemon pushed the streamed chunks into the page cache, so reads never reach it.)
        if (driver === 'fusedev') assert.ok(afterRead.prefetch_hits > 0, `reads found chunks the stream had brought: ${JSON.stringify(afterRead)}`);
        if (driver === 'fusedev') assert.ok(afterRead.first_read_latency_ms.count > 0);
        assert.equal(afterRead.first_read_latency_ms.counts.reduce((a, b) => a + b, 0), afterRead.first_read_latency_ms.count);
        const ctl = await runCliText('nydusctl', ['--sock', d.sock, 'metrics', 'startup', '--id', mnt]);
        assert.equal(ctl.code, 0, ctl.stderr);
        assert.match(ctl.stdout, /first_read_latency_ms/);
        assert.match(ctl.stdout, /prefetch_hits/);
      });
    });
  }

  test('with background_stream off nothing streams: a later full read fetches from the backend', async () => {
    const { work, src, d } = f;
    const cfg = nydusdConfig({
      backend: { type: 'localfs', dir: f.blobs }, workDir: `${work}/cache-off`,
      extra: { cold_read: { background_stream: false, quiet_ms: 100 } },
    });
    await withApiMount(d, path.join(work, 'mnt-off'), f.boot, cfg, async (q) => {
      await new Promise((r) => setTimeout(r, 600));
      const s = (await d.api('GET', `/api/v1/metrics/startup${q}`)).body as Startup;
      assert.equal(s.background_stream.begin_unix_ms, 0);
      assert.equal(s.backend_requests, 0);
      assert.deepEqual(await compareTrees(src, path.join(work, 'mnt-off')), []);
      const t = (await d.api('GET', `/api/v1/metrics/startup${q}`)).body as Startup;
      assert.ok(t.backend_requests > 0 && t.prefetch_requests === 0);
    });
  });
});
