/**
 * `--platform` parsing and matching: lists, variants, containerd's aliases, and errors that name
 * the bad part.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPlatform, parsePlatforms, platformMatches } from '../../src/nydusify/platform.js';
import { NydusError } from '../../src/util/errors.js';

describe('parsePlatforms() and platformMatches()', () => {
  test('parsePlatforms() reads a comma list, normalising aliases and default variants', () => {
    assert.deepEqual(parsePlatforms('linux/amd64'), [{ os: 'linux', architecture: 'amd64' }]);
    assert.deepEqual(parsePlatforms('linux/x86_64, linux/aarch64/v8 ,linux/arm/7'), [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ]);
    assert.deepEqual(parsePlatforms('linux/armhf'), [{ os: 'linux', architecture: 'arm', variant: 'v7' }]);
    assert.deepEqual(parsePlatforms('linux/amd64,linux/x86_64'), [{ os: 'linux', architecture: 'amd64' }], 'duplicates are dropped');
  });

  test('parsePlatforms() names the part that is not a platform', () => {
    for (const bad of ['linux', 'linux/amd64,', 'linux/arm/v7/x', 'linux/am d64', '']) {
      assert.throws(() => parsePlatforms(bad), (e: unknown) => e instanceof NydusError && e.code === 'ERR_USAGE' && e.message.includes('is not os/arch'), bad);
    }
  });

  test('platformMatches() compares variants with containerd\'s defaults (arm is v7, arm64 is v8)', () => {
    const [arm] = parsePlatforms('linux/arm');
    const [v7] = parsePlatforms('linux/arm/v7');
    const [v6] = parsePlatforms('linux/armel');
    const [arm64] = parsePlatforms('linux/arm64');
    const [amd64] = parsePlatforms('linux/amd64');
    assert.ok(arm && v7 && v6 && arm64 && amd64);
    assert.deepEqual(arm, v7);
    assert.deepEqual(v6, { os: 'linux', architecture: 'arm', variant: 'v6' });
    assert.ok(!platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, arm));
    assert.ok(platformMatches({ os: 'linux', architecture: 'arm' }, v7), 'an arm entry without a variant is v7');
    assert.ok(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, v6));
    assert.ok(platformMatches({ os: 'linux', architecture: 'amd64', variant: 'v3' }, amd64), 'no variant asked: any');
    assert.ok(platformMatches({ os: 'linux', architecture: 'arm64', variant: 'v8' }, arm64), 'v8 is arm64\'s default');
    assert.ok(platformMatches({ os: 'Linux', architecture: 'aarch64' }, arm64));
    assert.ok(!platformMatches({ os: 'windows', architecture: 'arm64' }, arm64));
    assert.ok(!platformMatches(undefined, arm64));
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
  });
});
