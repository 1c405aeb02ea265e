/**
 * The snapshotter's --config: nydus-snapshotter's config.toml is read (the settings nydus-ts has
 * are mapped, the others listed), a JSON object of our keys is read strictly, and bad files fail
 * with ERR_BAD_CONFIG naming the file and key. The CLI starts with a config.toml.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSnapshotterConfig } from '../../src/snapshotter/config-file.js';
import { NydusError } from '../../src/util/errors.js';
import { cleanupTempDir, tempDir } from '../helpers/mounts.js';
import { startNydusSnapshotter } from '../helpers/containerd.js';

/** A config.toml as nydus-snapshotter's sample lays it out (version 1). */
function snapshotterToml(root: string, address: string, fsDriver = 'fusedev'): string {
  return `version = 1
root = "${root}"
address = "${address}"
daemon_mode = "dedicated"
cleanup_on_close = false

[system]
enable = true
address = "/run/containerd-nydus/system.sock"

[daemon]
nydusd_config = "/etc/nydus/nydusd-config.fusedev.json"
nydusd_path = "/usr/local/bin/nydusd"
nydusimage_path = "/usr/local/bin/nydus-image"
fs_driver = "${fsDriver}"
recover_policy = "restart"
threads_number = 4

[log]
log_to_stdout = false
level = "debug"

[remote]
convert_vpc_registry = false
skip_ssl_verify = true

[remote.auth]
enable_kubeconfig_keychain = false

[cache_manager]
disable = false
gc_period = "24h"
`;
}

describe('readSnapshotterConfig()', () => {
  let work: string;
  before(async () => { work = await tempDir(undefined, 'snap-config-'); });
  after(async () => { await cleanupTempDir(work); });

  const write = (name: string, text: string): string => {
    const p = path.join(work, name);
    fs.writeFileSync(p, text);
    return p;
  };
  const bad = (re: RegExp) => (e: unknown): boolean => e instanceof NydusError && e.code === 'ERR_BAD_CONFIG' && re.test(e.message);

  test('readSnapshotterConfig() maps nydus-snapshotter\'s config.toml and lists what it leaves out', () => {
    const c = readSnapshotterConfig(write('config.toml', snapshotterToml('/var/lib/nx', '/run/nx.sock')));
    assert.equal(c.root, '/var/lib/nx');
    assert.equal(c.address, '/run/nx.sock');
    assert.equal(c.nydusdConfig, '/etc/nydus/nydusd-config.fusedev.json');
    assert.equal(c.nydusdPath, '/usr/local/bin/nydusd');
    assert.equal(c.fsDriver, 'fusedev');
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.insecure, true);
    assert.equal(c.daemonMode, undefined, 'daemon_mode is noted, not used');
    assert.ok(c.notes.some((n) => n.includes('daemon_mode "dedicated"')), c.notes.join('\n'));
    const left = c.notes.find((n) => n.startsWith('settings nydus-ts does not use:')) ?? '';
    for (const k of ['cleanup_on_close', 'system.enable', 'daemon.threads_number', 'remote.auth.enable_kubeconfig_keychain', 'cache_manager.gc_period']) assert.ok(left.includes(k), `${k} in: ${left}`);
    assert.ok(!left.includes('daemon.fs_driver') && !left.includes('log.level'), left);
    const fscache = readSnapshotterConfig(write('fscache.toml', snapshotterToml('/r', '/a', 'fscache')));
    assert.equal(fscache.fsDriver, 'erofs');
    assert.ok(fscache.notes.some((n) => n.includes('"fscache"')));
  });

  test('readSnapshotterConfig() reads a JSON object of its own keys strictly', () => {
    const c = readSnapshotterConfig(write('c.json', JSON.stringify({ root: '/r', plain_http: true, fs_driver: 'erofs', daemon_mode: 'shared' })));
    assert.deepEqual(c, { root: '/r', plainHttp: true, fsDriver: 'erofs', daemonMode: 'shared', notes: [] });
    assert.throws(() => readSnapshotterConfig(write('k.json', '{"rooot":"/r"}')), bad(/k\.json: unknown key "rooot"/));
    assert.throws(() => readSnapshotterConfig(write('t.json', '{"plain_http":"yes"}')), bad(/plain_http must be a boolean/));
  });

  test('readSnapshotterConfig() names the file and the key of bad input', () => {
    assert.throws(() => readSnapshotterConfig(path.join(work, 'missing.toml')), bad(/missing\.toml/));
    assert.throws(() => readSnapshotterConfig(write('broken.toml', 'root = "/r\n[daemon\n')), bad(/broken\.toml: it is neither JSON nor valid TOML/));
    assert.throws(() => readSnapshotterConfig(write('type.toml', 'root = 5\n')), bad(/type\.toml: root must be a string/));
    assert.throws(() => readSnapshotterConfig(write('drv.toml', '[daemon]\nfs_driver = "blockdev"\n')), bad(/daemon\.fs_driver "blockdev"/));
  });

  test('nydus-snapshotter starts with a config.toml and logs what it does not use', async () => {
    const root = path.join(work, 'root');
    const address = path.join(work, 'snap.sock');
    const cfg = write('run.toml', snapshotterToml(root, address).replace(/nydusd_config = .*\n/, '').replace(/nydusd_path = .*\n/, ''));
    const sn = await startNydusSnapshotter({ root, address, args: ['--config', cfg] });
    try {
      assert.ok(fs.existsSync(address));
      assert.match(sn.log(), /config: daemon_mode "dedicated"/);
      assert.match(sn.log(), /config: settings nydus-ts does not use: .*system\.enable/);
    } finally {
      await sn.stop();
    }
  });
});
