/**
 * nydusd's config: the erofs driver's fields take their defaults and refuse bad values with a
 * message naming the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDaemonConfig } from '../../src/daemon/config.js';
import { UsageError } from '../../src/util/errors.js';

const base = { device: { backend: { type: 'localfs', config: { dir: '/blobs' } } } };

test('fs_driver defaults to fusedev and erofs_backing to auto; both take their documented values', () => {
  const c = parseDaemonConfig(JSON.stringify(base));
  assert.equal(c.fsDriver, 'fusedev');
  assert.equal(c.erofsBacking, 'auto');
  for (const b of ['auto', 'file', 'loop'] as const) {
    const e = parseDaemonConfig(JSON.stringify({ ...base, fs_driver: 'erofs', erofs_backing: b }));
    assert.equal(e.fsDriver, 'erofs');
    assert.equal(e.erofsBacking, b);
  }
});

test('a bad fs_driver or erofs_backing is refused, naming the field and the value', () => {
  const bad = (extra: Record<string, unknown>, re: RegExp): void => {
    assert.throws(() => parseDaemonConfig(JSON.stringify({ ...base, ...extra })), (e: unknown) => e instanceof UsageError && e.code === 'ERR_BAD_CONFIG' && re.test(e.message));
  };
  bad({ fs_driver: 'fscache' }, /fs_driver "fscache" is not fusedev or erofs/);
  bad({ fs_driver: 'erofs', erofs_backing: 'nbd' }, /erofs_backing "nbd" is not auto, file or loop/);
  bad({ erofs_backing: 1 }, /erofs_backing "1"/);
});
