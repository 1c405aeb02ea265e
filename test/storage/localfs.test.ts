import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackend } from '../../src/storage/create-backend.js';
import { UsageError } from '../../src/util/errors.js';
import { runBackendConformance } from './backend.case.js';

function blobDir(blobs: Map<string, Uint8Array>): string {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-localfs-'));
  for (const [id, data] of blobs) writeFileSync(join(dir, id), data);
  return dir;
}

runBackendConformance('localfs', async (blobs) => {
  const dir = blobDir(blobs);
  return { backend: createBackend({ type: 'localfs', config: { dir } }), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
});

// The same suite with the blobs split between dir and alt_dirs.
runBackendConformance('localfs (alt_dirs)', async (blobs) => {
  const root = mkdtempSync(join(tmpdir(), 'nydus-localfs-alt-'));
  const dirs = [join(root, 'a'), join(root, 'b'), join(root, 'c')];
  for (const d of dirs) mkdirSync(d);
  [...blobs].forEach(([id, data], i) => writeFileSync(join(dirs[i % 3] as string, id), data));
  return { backend: createBackend({ type: 'localfs', config: { dir: dirs[0], alt_dirs: dirs.slice(1) } }), cleanup: async () => rmSync(root, { recursive: true, force: true }) };
});

test('localfs blob_file serves every blob id from one file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-localfs-file-'));
  try {
    writeFileSync(join(dir, 'the-blob'), new Uint8Array([1, 2, 3, 4, 5]));
    const b = createBackend({ type: 'localfs', config: { blob_file: join(dir, 'the-blob') } });
    assert.equal(await b.blobSize('anything'), 5);
    assert.deepEqual([...(await b.read('other', 1, 3))], [2, 3, 4]);
    await b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('localfs: a blob that appears after a failed open is found on the next read', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nydus-localfs-late-'));
  try {
    const b = createBackend({ type: 'localfs', config: { dir } });
    await assert.rejects(b.read('late', 0, 1), { code: 'ERR_BLOB_NOT_FOUND' });
    writeFileSync(join(dir, 'late'), new Uint8Array([9]));
    assert.deepEqual([...(await b.read('late', 0, 1))], [9]);
    await b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('createBackend() rejects bad localfs configs naming the field', () => {
  const bad = (config: Record<string, unknown>, re: RegExp): void => {
    assert.throws(() => createBackend({ type: 'localfs', config }), (e: unknown) => e instanceof UsageError && e.code === 'ERR_BAD_CONFIG' && re.test(e.message));
  };
  bad({}, /device\.backend\.config\.dir or device\.backend\.config\.blob_file/);
  bad({ dir: 5 }, /device\.backend\.config\.dir must be a string/);
  bad({ dir: '/x', alt_dirs: '/y' }, /device\.backend\.config\.alt_dirs must be an array/);
  assert.throws(() => createBackend({ type: 'nope', config: {} }), /unknown device\.backend\.type "nope"/);
  assert.throws(() => createBackend({ type: 'registry', config: {} }), /device\.backend\.config\.host is required/);
  assert.throws(() => createBackend({ type: '', config: {} }), /device\.backend\.type must be a non-empty string/);
  assert.throws(() => createBackend({ type: 'localfs', config: [] as unknown as Record<string, unknown> }), /device\.backend\.config must be an object/);
});

test('createBackend() warns about unknown localfs fields', async () => {
  const warnings: string[] = [];
  const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {}, child() { return logger; } };
  const b = createBackend({ type: 'localfs', config: { dir: '/nonexistent', readahead: true } }, { logger });
  assert.deepEqual(warnings, ['ignoring unknown backend config field device.backend.config.readahead']);
  await b.close();
});
