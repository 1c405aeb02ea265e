/**
 * The snapshot metadata database without containerd: records persist across close/reopen, parent
 * chains, containerd's rules (committed parents, unique keys, only active snapshots commit, no
 * removal with children), label updates by field path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetadataStore } from '../../src/snapshotter/metadata-store.js';
import { SnapshotError, errorClassOf } from '../../src/snapshotter/snapshot-error.js';

function withStore(fn: (path: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'snap-meta-'));
    try {
      await fn(join(dir, 'metadata.db'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SnapshotError, String(e));
    return `${e.code}/${errorClassOf(e)}`;
  }
  return 'no error';
}

test('MetadataStore persists snapshots, ids and parent links across reopen', withStore(async (path) => {
  const s = MetadataStore.open(path);
  const base = s.create({ kind: 'active', name: 'ns/1/extract-a', parent: '', labels: { a: '1', empty: '' } });
  assert.equal(base.id, 1);
  assert.deepEqual(base.labels, { a: '1' }, 'empty label values are dropped');
  const c = s.commit('ns/1/extract-a', 'ns/2/layer-a', { 'containerd.io/snapshot.ref': 'sha256:a' }, { size: 4096, inodes: 1 });
  assert.equal(c.id, 1, 'commit keeps the directory id');
  assert.equal(c.kind, 'committed');
  assert.equal(s.get('ns/1/extract-a'), undefined);
  const top = s.create({ kind: 'active', name: 'ns/3/container', parent: 'ns/2/layer-a', labels: {} });
  assert.equal(top.id, 2);
  await s.close();

  const again = MetadataStore.open(path);
  try {
    assert.deepEqual(again.chain('ns/3/container').map((r) => [r.name, r.kind, r.id]), [['ns/3/container', 'active', 2], ['ns/2/layer-a', 'committed', 1]]);
    assert.deepEqual(again.get('ns/2/layer-a')?.usage, { size: 4096, inodes: 1 });
    assert.deepEqual(again.children('ns/2/layer-a'), ['ns/3/container']);
    assert.equal(again.create({ kind: 'view', name: 'v', parent: 'ns/2/layer-a', labels: {} }).id, 3, 'the id sequence survives');
    assert.deepEqual(again.list().map((r) => r.name).sort(), ['ns/2/layer-a', 'ns/3/container', 'v']);
  } finally {
    await again.close();
  }
}));

test('MetadataStore refuses what containerd refuses', withStore(async (path) => {
  const s = MetadataStore.open(path);
  try {
    s.create({ kind: 'active', name: 'a', parent: '', labels: {} });
    assert.equal(code(() => s.create({ kind: 'active', name: 'a', parent: '', labels: {} })), 'ERR_SNAPSHOT_EXISTS/already-exists');
    assert.equal(code(() => s.create({ kind: 'active', name: 'b', parent: 'nope', labels: {} })), 'ERR_SNAPSHOT_NOT_FOUND/not-found');
    assert.equal(code(() => s.create({ kind: 'active', name: 'b', parent: 'a', labels: {} })), 'ERR_SNAPSHOT_ARGUMENT/invalid-argument', 'an active parent');
    assert.equal(code(() => s.create({ kind: 'active', name: '', parent: '', labels: {} })), 'ERR_SNAPSHOT_ARGUMENT/invalid-argument');
    s.create({ kind: 'view', name: 'v', parent: '', labels: {} });
    assert.equal(code(() => s.commit('v', 'x', {}, { size: 0, inodes: 0 })), 'ERR_SNAPSHOT_KIND/failed-precondition');
    assert.equal(code(() => s.commit('missing', 'x', {}, { size: 0, inodes: 0 })), 'ERR_SNAPSHOT_NOT_FOUND/not-found');
    s.commit('a', 'A', {}, { size: 0, inodes: 0 });
    s.create({ kind: 'active', name: 'c', parent: '', labels: {} });
    assert.equal(code(() => s.commit('c', 'A', {}, { size: 0, inodes: 0 })), 'ERR_SNAPSHOT_EXISTS/already-exists', 'the committed name is taken');
    assert.ok(s.get('c'), 'a refused commit leaves the active snapshot');
    assert.equal(code(() => s.remove('missing')), 'ERR_SNAPSHOT_NOT_FOUND/not-found');
  } finally {
    await s.close();
  }
}));

test('MetadataStore refuses to remove a snapshot with children until they are gone', withStore(async (path) => {
  const s = MetadataStore.open(path);
  try {
    s.create({ kind: 'active', name: 'l1', parent: '', labels: {} });
    s.commit('l1', 'L1', {}, { size: 0, inodes: 0 });
    s.create({ kind: 'active', name: 'l2', parent: 'L1', labels: {} });
    s.commit('l2', 'L2', {}, { size: 0, inodes: 0 });
    s.create({ kind: 'view', name: 'view', parent: 'L2', labels: {} });
    s.create({ kind: 'active', name: 'rw', parent: 'L2', labels: {} });
    assert.deepEqual(s.children('L2').sort(), ['rw', 'view']);
    assert.equal(code(() => s.remove('L1')), 'ERR_SNAPSHOT_HAS_CHILDREN/failed-precondition');
    assert.equal(code(() => s.remove('L2')), 'ERR_SNAPSHOT_HAS_CHILDREN/failed-precondition');
    s.remove('view');
    s.remove('rw');
    assert.deepEqual(s.children('L2'), []);
    s.remove('L2');
    s.remove('L1');
    assert.deepEqual(s.list(), []);
  } finally {
    await s.close();
  }
}));

test('MetadataStore.update() changes labels by field path, like containerd', withStore(async (path) => {
  const s = MetadataStore.open(path);
  try {
    s.create({ kind: 'active', name: 'a', parent: '', labels: { keep: '1', drop: '2' } });
    assert.deepEqual(s.update('a', { new: '3', drop: '' }, ['labels.new', 'labels.drop']).labels, { keep: '1', new: '3' });
    assert.deepEqual(s.update('a', { only: 'x' }, ['labels']).labels, { only: 'x' });
    assert.deepEqual(s.update('a', { all: 'y' }, []).labels, { all: 'y' }, 'no paths: every mutable field');
    assert.equal(code(() => s.update('a', {}, ['parent'])), 'ERR_SNAPSHOT_ARGUMENT/invalid-argument');
    assert.equal(code(() => s.update('missing', {}, [])), 'ERR_SNAPSHOT_NOT_FOUND/not-found');
    const before = s.get('a')?.created;
    assert.equal(s.update('a', { z: '1' }, ['labels.z']).created, before, 'created does not change');
    assert.equal(code(() => s.create({ kind: 'active', name: 'big', parent: '', labels: { k: 'v'.repeat(5000) } })), 'ERR_SNAPSHOT_ARGUMENT/invalid-argument');
  } finally {
    await s.close();
  }
}));
