/** containerd's filter syntax as List receives it (what containerd sends after a remote Prepare, and `ctr snapshots ls` filters). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilters, parseFilterExpression } from '../../src/snapshotter/snapshot-filter.js';
import { SnapshotError } from '../../src/snapshotter/snapshot-error.js';
import type { SnapshotInfo } from '../../src/snapshotter/snapshot-types.js';

const CHAIN = `sha256:${'c'.repeat(64)}`;
const snap = (name: string, parent: string, kind: SnapshotInfo['kind'], labels: Record<string, string> = {}): SnapshotInfo =>
  ({ name, parent, kind, created: 0, updated: 0, labels });

const all = [
  snap('default/remote/x', 'default/1/p', 'committed', { 'containerd.io/snapshot.ref': CHAIN, 'a.b': 'c' }),
  snap('default/remote/y', 'other', 'committed', { 'containerd.io/snapshot.ref': CHAIN }),
  snap('default/5/box', 'default/remote/x', 'active'),
];
const names = (exprs: string[]): string[] => all.filter(compileFilters(exprs)).map((s) => s.name);

test('compileFilters() understands the filter containerd sends after a remote Prepare', () => {
  // metadata/snapshot.go: labels."containerd.io/snapshot.ref"==<target>,parent==<quoted parent>
  assert.deepEqual(names([`labels."containerd.io/snapshot.ref"==${CHAIN},parent=="default/1/p"`]), ['default/remote/x']);
  assert.deepEqual(names([`labels."containerd.io/snapshot.ref"==${CHAIN}`]), ['default/remote/x', 'default/remote/y']);
});

test('compileFilters() ORs expressions and ANDs selectors; empty means everything', () => {
  assert.deepEqual(names([]), all.map((s) => s.name));
  assert.deepEqual(names(['']), all.map((s) => s.name));
  assert.deepEqual(names(['kind==active', 'name==default/remote/y']), ['default/remote/y', 'default/5/box']);
  assert.deepEqual(names(['kind==committed,parent!=other']), ['default/remote/x']);
  assert.deepEqual(names(['labels.a.b']), ['default/remote/x'], 'presence; the rest of the path is the label key');
  assert.deepEqual(names(['labels.a.b==c']), ['default/remote/x']);
  assert.deepEqual(names(['name~=|/remote/[xy]$|']), ['default/remote/x', 'default/remote/y']);
  assert.deepEqual(names(['name~=box']), ['default/5/box']);
  assert.deepEqual(names(['parent=="default/remote/x"', 'parent=="\\x64efault/1/p"']), ['default/remote/x', 'default/5/box'], 'Go escapes in quoted values');
});

test('parseFilterExpression() rejects bad syntax with ERR_SNAPSHOT_ARGUMENT', () => {
  for (const bad of ['name==', '==x', 'name=x', 'name=="open', 'name==/re/', 'name~=/(/', 'name==a b']) {
    assert.throws(() => parseFilterExpression(bad), (e: unknown) => e instanceof SnapshotError && e.code === 'ERR_SNAPSHOT_ARGUMENT', bad);
  }
  assert.deepEqual(parseFilterExpression(' kind == view , name ').map((s) => [s.path, s.op, s.value]), [[['kind'], '==', 'view'], [['name'], 'present', '']]);
});
