/**
 * The per-image nydusd config the snapshotter writes: the registry location and the shared cache
 * are filled in, and the default template prefetches an image's start-up list but never a whole
 * image through a prefetch table that only names "/".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_NYDUSD_TEMPLATE, nydusdConfigFor, parseNydusdTemplate } from '../../src/snapshotter/nydusd-config.js';
import { parseDaemonConfig } from '../../src/daemon/config.js';

const location = { scheme: 'http' as const, host: '127.0.0.1:5000', repo: 'nydus/app', auth: undefined, skipVerify: false, caFiles: [] };

test('the default template fills in the registry and the cache, and nydusd accepts it', () => {
  const c = parseDaemonConfig(nydusdConfigFor(DEFAULT_NYDUSD_TEMPLATE, location, '/var/cache/nydus'));
  assert.deepEqual(c.backend, { type: 'registry', config: { timeout: 30, connect_timeout: 10, retry_limit: 3, scheme: 'http', host: '127.0.0.1:5000', repo: 'nydus/app' } });
  assert.equal(c.cache.workDir, '/var/cache/nydus');
  assert.equal(c.fsDriver, 'fusedev');
});

test('prefetch of the table: on for an image with a start-up list, off when the table only names "/"', () => {
  const listed = parseDaemonConfig(nydusdConfigFor(DEFAULT_NYDUSD_TEMPLATE, location, '/c', true));
  assert.equal(listed.prefetch.enable, true);
  assert.equal(listed.prefetch.prefetchAll, false);
  assert.equal(listed.prefetch.threads, 8);
  const rootOnly = parseDaemonConfig(nydusdConfigFor(DEFAULT_NYDUSD_TEMPLATE, location, '/c', false));
  assert.equal(rootOnly.prefetch.enable, false, 'a "/" table would mean the whole image');
});

test('a template that asks for prefetch_all keeps it whatever the table says', () => {
  const t = parseNydusdTemplate(JSON.stringify({ ...DEFAULT_NYDUSD_TEMPLATE, fs_prefetch: { enable: true, threads_count: 2, prefetch_all: true } }), 'test');
  const c = parseDaemonConfig(nydusdConfigFor(t, location, '/c', false));
  assert.equal(c.prefetch.enable, true);
  assert.equal(c.prefetch.prefetchAll, true);
});

test('the registry\'s CA files from certs.d become ca_cert_files', () => {
  const c = JSON.parse(nydusdConfigFor(DEFAULT_NYDUSD_TEMPLATE, { ...location, scheme: 'https', caFiles: ['/etc/docker/certs.d/r:5000/ca.crt'] }, '/c')) as { device: { backend: { config: Record<string, unknown> } } };
  assert.deepEqual(c.device.backend.config['ca_cert_files'], ['/etc/docker/certs.d/r:5000/ca.crt']);
  assert.equal(c.device.backend.config['scheme'], 'https');
});
